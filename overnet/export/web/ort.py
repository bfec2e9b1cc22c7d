"""The onnxruntime-web files a web export loads: the pinned release, where they come from
(a CDN by default, or copied from the npm package for offline hosting) and their hashes.

The page loads one of two builds: the plain WASM build, or, when the browser has a WebGPU
adapter, the build with the WebGPU execution provider (which runs WASM too). Every file is
fetched with its Subresource Integrity hash (sha384, computed from the npm tarball of the
pinned release), so a CDN that serves other bytes is refused by the browser.
"""

from __future__ import annotations

import base64
import hashlib
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from overnet._atomic import write_bytes_atomic
from overnet.errors import InputError

#: the onnxruntime-web release the page is written and tested against
ORT_VERSION = "1.31.1"
#: the npm registry's integrity of that release's tarball (``npm view onnxruntime-web@1.31.1
#: dist.integrity``): a download is refused unless it matches
TARBALL_INTEGRITY = (
    "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI1"
    "9VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
)
TARBALL_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_VERSION}.tgz"
#: the default source: jsDelivr serves the npm package's files byte for byte
CDN_BASE = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_VERSION}/dist/"
#: the folder of a web export that holds the copied files (``--ort`` offline)
LOCAL_BASE = "ort/"


@dataclass(frozen=True)
class OrtBuild:
    """One onnxruntime-web build: its entry module, the WASM factory module it imports and
    the WASM binary, each a file name in ``dist/``."""

    entry: str
    factory: str
    wasm: str


#: the page's two builds: plain WASM; WebGPU (with WASM as its fallback provider)
BUILDS = {
    "wasm": OrtBuild(
        "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"
    ),
    "webgpu": OrtBuild(
        "ort.webgpu.min.mjs",
        "ort-wasm-simd-threaded.asyncify.mjs",
        "ort-wasm-simd-threaded.asyncify.wasm",
    ),
}

#: sha384 Subresource Integrity of each file of the pinned release (from its npm tarball;
#: tests/export/test_web_ort.py recomputes them from the downloaded tarball)
INTEGRITY = {
    "ort.wasm.min.mjs": "sha384-Vo83xJ0b4xRW+799QzqOViZ2AdoasAnbfsI9UCyxkEGv/8dtIqcHTZ4EJOlDMcfc",
    "ort-wasm-simd-threaded.mjs": (
        "sha384-L9olMNCg9w3FaNhr+m7EAeeiUpM5zy2Nlh6APnoogtFXjsL4ZZZRXlYhSVJc1r3j"
    ),
    "ort-wasm-simd-threaded.wasm": (
        "sha384-bQJgW/bZhNOlc9KU45Zu0dyd0EFfNpkOZjfHyH/90dkZQSBBGkFTsAJaabSyYA4Z"
    ),
    "ort.webgpu.min.mjs": "sha384-aMG9NGKcj83ZD2AMjPev6sLctK3QhG+MTjMhAxuHlNCjMuYUrTBEHKo9NfA+UqZq",
    "ort-wasm-simd-threaded.asyncify.mjs": (
        "sha384-MZXSqYGZtrCJ8cYZ26C4RYRYYoYtDVV2GnAEL1cLiD+oOr3MrUSe3Hur4S7NidC1"
    ),
    "ort-wasm-simd-threaded.asyncify.wasm": (
        "sha384-Da9/alSN2rEHI5XIgPPOp70/HfJ82/URSSpUwy1h4UmGMPkJtb6PoMwvcBHy5h8P"
    ),
}

#: a download of the tarball stops after this many bytes (it is about 35 MB)
MAX_TARBALL_BYTES = 200_000_000
DOWNLOAD_TIMEOUT_S = 120


def sri(data: bytes, algorithm: str = "sha384") -> str:
    """The Subresource Integrity string of ``data`` (``sha384-<base64>``)."""
    digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode('ascii')}"


def page_files() -> list[str]:
    """Every onnxruntime-web file the page may load (both builds)."""
    return sorted({name for build in BUILDS.values() for name in vars(build).values()})


def fetch_tarball(cache: Path, url: str = TARBALL_URL) -> Path:
    """The pinned release's npm tarball in ``cache`` (downloaded once from the npm registry,
    checked against ``TARBALL_INTEGRITY`` before it is kept)."""
    target = cache / f"onnxruntime-web-{ORT_VERSION}.tgz"
    if target.is_file() and sri(target.read_bytes(), "sha512") == TARBALL_INTEGRITY:
        return target
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data = response.read(MAX_TARBALL_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"cannot download onnxruntime-web {ORT_VERSION} from {url}: {exc}; download it "
            f"elsewhere (npm pack onnxruntime-web@{ORT_VERSION}) and give --ort FILE.tgz"
        ) from None
    if len(data) > MAX_TARBALL_BYTES:
        raise InputError(f"{url} sent more than {MAX_TARBALL_BYTES} bytes; not an npm tarball")
    got = sri(data, "sha512")
    if got != TARBALL_INTEGRITY:
        raise InputError(
            f"{url} does not match the npm registry's integrity of onnxruntime-web "
            f"{ORT_VERSION} (expected {TARBALL_INTEGRITY}, got {got}); nothing kept"
        )
    cache.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(target, data)


def read_package(source: Path) -> dict[str, bytes]:
    """The page's files from an onnxruntime-web npm tarball (``.tgz``) or unpacked package
    folder (``node_modules/onnxruntime-web``), each checked against ``INTEGRITY``."""
    wanted = page_files()
    found: dict[str, bytes] = {}
    if source.is_dir():
        dist = source / "dist"
        for name in wanted:
            if (dist / name).is_file():
                found[name] = (dist / name).read_bytes()
    elif source.is_file():
        try:
            with tarfile.open(source, "r:gz") as tar:
                for name in wanted:
                    try:
                        member = tar.extractfile(f"package/dist/{name}")
                    except KeyError:
                        continue
                    if member is not None:
                        found[name] = member.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(
                f"--ort {source}: not a readable npm tarball ({exc}); give the .tgz of "
                f"`npm pack onnxruntime-web@{ORT_VERSION}` or its unpacked package folder"
            ) from None
    else:
        raise InputError(f"--ort {source}: no such file or folder")
    missing = [name for name in wanted if name not in found]
    if missing:
        raise InputError(
            f"--ort {source}: no dist/{', dist/'.join(missing)}; expected the onnxruntime-web "
            f"{ORT_VERSION} npm package (npm pack onnxruntime-web@{ORT_VERSION})"
        )
    wrong = [name for name, data in found.items() if sri(data) != INTEGRITY[name]]
    if wrong:
        raise InputError(
            f"--ort {source}: {', '.join(wrong)} differ from onnxruntime-web {ORT_VERSION}'s "
            f"(another version?); the page is pinned to {ORT_VERSION}: give its package"
        )
    return found
