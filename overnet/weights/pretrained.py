"""Pretrained weights by name (``x2``, ``x3``): fetched once, verified, kept in the cache.

The upstream authors published their trained x2 and x3 models as ONNX files. ``fetch``
downloads one over HTTPS with its sha256 pinned, converts its initialisers to the
project's ``.safetensors`` (checked by comparing outputs with the ONNX file) and keeps
both under ``cache_dir()/weights``. Names resolve wherever a weights path is accepted
(``load_model("x2")``, ``--weights x2``), fetching on first use.

``$OVERNET_WEIGHTS_URL`` replaces the download base URL (a mirror, or an air-gapped
site's file server); ``fetch(name, source=FILE)`` imports a file downloaded by hand.
Torch-free: the download never imports torch; the conversion does (``overnet[export]``).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from overnet._atomic import atomic_target
from overnet._optional import require
from overnet.cache import cache_dir
from overnet.errors import WeightsError
from overnet.formats.digest import sha256_file

#: the upstream repository and commit the files are pinned to
UPSTREAM_REPO = "pbehjatii/OverNet-to-ONNX"
UPSTREAM_COMMIT = "c05f2b0735d314a101792641919164fa998603af"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"
BASE_URL_ENV = "OVERNET_WEIGHTS_URL"
#: seconds without data before a download is abandoned
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Pretrained:
    """One published model: where it lives upstream and what its bytes hash to."""

    name: str  # "x2"
    remote_path: str  # path under the base URL
    sha256: str
    scale: int

    @property
    def onnx_name(self) -> str:
        return f"OverNet_{self.name}.onnx"


PRETRAINED = {
    "x2": Pretrained(
        "x2",
        "ONNX/x2/OverNet.onnx",
        "a626a2d69c0fe459f7dbe99d80710a1a7dddf4fa5d636a24410e4c2367a260f5",
        2,
    ),
    "x3": Pretrained(
        "x3",
        "ONNX/x3/OverNet.onnx",
        "ca831c1c0e9d9e23cb30acc041090b8fd69e99e16c277c4b972214fb885ea4c4",
        3,
    ),
}
#: other spellings users type for the same models
ALIASES = {"overnet-x2": "x2", "overnet_x2": "x2", "overnet-x3": "x3", "overnet_x3": "x3"}


class FetchError(WeightsError):
    """A pretrained file could not be downloaded or did not verify."""


def canonical_name(name: str) -> str | None:
    """``x2`` for "x2", "X2", "overnet-x2"; None when ``name`` is not a pretrained name."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    return key if key in PRETRAINED else None


def weights_dir() -> Path:
    return cache_dir() / "weights"


def weights_path(name: str) -> Path:
    """Where the converted ``.safetensors`` of ``name`` is kept (it may not exist yet)."""
    return weights_dir() / f"overnet-{_model(name).name}.safetensors"


def onnx_path(name: str) -> Path:
    """Where the verified upstream ONNX of ``name`` is kept."""
    return weights_dir() / "upstream" / _model(name).onnx_name


def base_url() -> str:
    url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def url_for(name: str) -> str:
    return base_url() + _model(name).remote_path


def _model(name: str) -> Pretrained:
    key = canonical_name(name)
    if key is None:
        raise WeightsError(
            f"unknown pretrained weights '{name}'; available: {', '.join(PRETRAINED)}"
        )
    return PRETRAINED[key]


def _download(model: Pretrained, url: str, target: Path, say: Callable[[str], None]) -> None:
    """Stream ``url`` into ``target`` (atomically), checking the sha256 before the rename."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(_offline_message(model, url, target, exc)) from exc
    digest = hashlib.sha256()
    received = 0
    with response, atomic_target(target) as tmp, open(tmp, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        try:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
        except (OSError, urllib.error.URLError) as exc:
            raise FetchError(
                f"the download of {url} broke off after {received} bytes ({exc}); nothing "
                "was kept. Run the command again"
            ) from exc
        if total and received != total:
            raise FetchError(
                f"the download of {url} ended after {received} of {total} bytes; nothing was "
                "kept. Run the command again"
            )
        _check_digest(digest.hexdigest(), model.sha256, url)
        out.flush()
    say(f"downloaded {url} ({received / 1e6:.1f} MB, sha256 verified)")


def _check_digest(actual: str, expected: str, origin: str) -> None:
    if actual != expected:
        raise FetchError(
            f"{origin} has sha256 {actual}, expected {expected}: the file is not the "
            "published one (damaged, replaced or a wrong mirror); nothing was kept"
        )


def _offline_message(model: Pretrained, url: str, target: Path, exc: BaseException) -> str:
    return (
        f"could not download {url} ({getattr(exc, 'reason', exc)}). Without network: download "
        f"that file elsewhere and run `overnet weights fetch {model.name} --from FILE`, or "
        f"save it as {target} and run the command again; a mirror can be set with "
        f"{BASE_URL_ENV}=URL"
    )


def fetch(
    name: str,
    *,
    source: str | Path | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> Path:
    """The ``.safetensors`` of pretrained ``name``: downloaded (or imported from the local
    file ``source``), verified by sha256, converted and checked against the ONNX output.
    Cached: a second call returns at once unless ``force``."""
    model = _model(name)
    target = weights_path(model.name)
    if target.is_file() and not force:
        return target
    upstream = onnx_path(model.name)
    if source is not None:
        _check_digest(sha256_file(source), model.sha256, str(source))
        with atomic_target(upstream) as tmp:
            tmp.write_bytes(Path(source).read_bytes())
    elif force or not upstream.is_file() or sha256_file(upstream) != model.sha256:
        upstream.parent.mkdir(parents=True, exist_ok=True)
        _download(model, url_for(model.name), upstream, say)
    require("torch", f"converting the pretrained {model.name} weights, once", "export")
    require("onnx", f"converting the pretrained {model.name} weights, once", "export")
    from overnet.weights.onnx_import import import_onnx_weights

    result = import_onnx_weights(upstream, target, scale=model.scale)
    say(
        f"converted to {target} (x{model.scale}, upscale {result.upscale}; outputs match the "
        f"ONNX file within {result.max_abs_diff:.1e})"
    )
    return target


def resolve(name_or_path: str | Path, say: Callable[[str], None] = print) -> Path:
    """A weights path: existing files are returned as they are; a pretrained name
    (``x2``) becomes its cached file, fetched on first use with a message."""
    path = Path(name_or_path)
    if path.exists() or canonical_name(str(name_or_path)) is None:
        return path
    name = str(name_or_path)
    if not weights_path(name).is_file():
        say(f"pretrained weights {name} are not cached yet: fetching them once")
    return fetch(name, say=say)
