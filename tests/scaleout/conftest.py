"""Shared pieces of the scale-out tests: mixed test images, the local command's outputs
for them, and one local Ray (2 CPUs, no dashboard) for a module."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: (mode, extension) of the test images, in turn
KINDS = [
    ("RGB", "png"),
    ("RGBA", "png"),
    ("L", "png"),
    ("LA", "png"),
    ("P", "png"),
    ("I16", "png"),
    ("RGB16", "png"),
    ("RGB", "jpg"),
    ("RGB", "webp"),
    ("RGB", "tif"),
]


def make_images(
    folder: Path, count: int = 20, seed: int = 0, sides: tuple[int, int] = (16, 64)
) -> list[Path]:
    """``count`` images of mixed modes (gray, alpha, palette with a transparent index,
    16-bit gray and RGB, JPEG with EXIF and ICC, WebP, TIFF), sides in ``sides`` px."""
    from overnet.imaging.png16 import write_png16

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        mode, ext = KINDS[index % len(KINDS)]
        width, height = (int(v) for v in rng.integers(sides[0], sides[1] + 1, size=2))
        path = folder / f"img{index:02d}_{mode}.{ext}"
        made.append(path)
        if mode == "RGB16":
            write_png16((rng.random((height, width, 3)) * 65535).astype(np.uint16), path)
            continue
        if mode == "I16":
            pixels = (rng.random((height, width)) * 65535).astype(np.uint16)
            Image.fromarray(pixels).save(path)
            continue
        channels = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "P": 3}[mode]
        pixels = (rng.random((height, width, channels)) * 255).astype(np.uint8)
        image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
        if mode == "P":
            image.quantize(16).save(path, transparency=3)
        elif ext == "jpg":
            exif = Image.Exif()
            exif[0x0112] = 6  # orientation
            image.save(path, exif=exif, icc_profile=b"\0" * 16, quality=90)
        else:
            image.save(path)
    return made


def differences(made: dict[str, bytes], expected: dict[str, bytes]) -> list[str]:
    """What differs between two ``outputs`` (empty when byte-identical), by name: a
    readable failure instead of pages of bytes."""
    found = [f"missing {n}" for n in sorted(set(expected) - set(made))]
    found += [f"extra {n} ({len(made[n])} bytes)" for n in sorted(set(made) - set(expected))]
    found += [
        f"{n}: {len(made[n])} bytes, expected {len(expected[n])}"
        + _video_detail(made[n], expected[n], n)
        for n in sorted(set(made) & set(expected))
        if made[n] != expected[n]
    ]
    return found


def _video_detail(made: bytes, expected: bytes, name: str) -> str:
    """For a video: whether the decoded frames differ too (the model's numbers) or only
    the encoding (encoder settings, muxing)."""
    if not name.endswith((".mp4", ".mkv", ".mov", ".avi")):
        return ""
    import io

    import av

    def frames(data: bytes) -> list[np.ndarray]:
        with av.open(io.BytesIO(data)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]

    a, b = frames(made), frames(expected)
    if len(a) != len(b):
        return f" ({len(a)} frames, expected {len(b)})"
    pairs = zip(a, b, strict=True)
    worst = max((int(np.abs(x.astype(int) - y).max()) for x, y in pairs), default=0)
    return f" (decoded frames differ by at most {worst})"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` but the manifest, by relative name."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "overnet-manifest.jsonl"
    }


def upscale_locally(inputs: Path, out: Path, model: Path, *options: str) -> None:
    """The local `overnet upscale` (the reference every Ray run is compared with)."""
    from click.testing import CliRunner

    from overnet.cli import main

    args = ["upscale", str(inputs), "-o", str(out), "--model", str(model), "--no-progress"]
    result = CliRunner().invoke(main, [*args, *options])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def ray_local() -> Iterator[object]:
    """For the module, the local Ray a bare --ray starts (overnet.scaleout.job._connect:
    no dashboard), shut down after it."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from overnet.scaleout.job import _connect

    assert _connect(ray, None), "a Ray instance was already connected in this process"
    try:
        yield ray
    finally:
        ray.shutdown()
