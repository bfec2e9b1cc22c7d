"""Natural images for the INT8 benchmarks, from where anyone can get them again:

- Set5 HR (../shared/data/Set5/HR);
- three photographs installed with the dev extra: matplotlib's grace_hopper.jpg,
  scikit-learn's china.jpg and flower.jpg;
- 18 images of scikit-image 0.26.0's wheel (skimage/data, BSD-3 licensed package; its
  README names each image's source and licence), fetched with
  `pip download scikit-image==0.26.0 --no-deps` into the cache and read from the wheel
  (nothing is installed). Synthetic ones (colour charts, logos, phantoms, chessboards) are
  left out: they are the guard benchmark's "graphics", not natural images.

``pool(folder)`` writes them all as PNG (decoded pixels, so the pixel hash is the image's)
and returns the paths; ``deal`` splits a list by pixel-hash order into named groups.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from overnet.export.int8_sets import content_hash

ROOT = Path(__file__).resolve().parents[1]
SKIMAGE = "scikit-image==0.26.0"
SKIMAGE_NATURAL = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png",
    "clock_motion.png", "coffee.png", "coins.png", "grass.png", "gravel.png",
    "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png", "page.png",
    "retina.jpg", "rocket.jpg", "text.png",
)  # fmt: skip
SKIMAGE_GRAPHICS = ("color.png", "logo.png", "horse.png", "phantom.png", "chessboard_RGB.png")


def skimage_wheel(cache: Path) -> Path:
    """scikit-image's wheel in ``cache`` (downloaded once with pip, not installed)."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("scikit_image-0.26.0-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", SKIMAGE, "--no-deps", "-d", str(cache)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        found = sorted(cache.glob("scikit_image-0.26.0-*.whl"))
    return found[0]


def skimage_images(cache: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """name -> HWC uint8 RGB of the given skimage/data files (gray replicated)."""
    out = {}
    with zipfile.ZipFile(skimage_wheel(cache)) as wheel:
        for name in names:
            with Image.open(io.BytesIO(wheel.read(f"skimage/data/{name}"))) as img:
                out[f"skimage-{Path(name).stem}"] = np.asarray(img.convert("RGB"))
    return out


def installed_images() -> dict[str, np.ndarray]:
    import matplotlib
    import sklearn

    files = {
        "mpl-grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        "sklearn-china": Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
        "sklearn-flower": Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
    }
    out = {}
    for name, path in files.items():
        with Image.open(path) as img:
            out[name] = np.asarray(img.convert("RGB"))
    return out


def set5_images(shared: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted((shared / "data" / "Set5" / "HR").glob("*.png")):
        with Image.open(path) as img:
            out[f"set5-{path.stem}"] = np.asarray(img.convert("RGB"))
    return out


def write_pngs(images: dict[str, np.ndarray], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in images.items():
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(rgb).save(path)
        paths.append(path)
    return paths


def pool(folder: Path, shared: Path, cache: Path) -> list[Path]:
    """All 26 natural images as PNG files in ``folder``."""
    images = {**set5_images(shared), **installed_images()}
    images.update(skimage_images(cache, SKIMAGE_NATURAL))
    return write_pngs(images, folder)


def deal(paths: list[Path], sizes: dict[str, int]) -> dict[str, list[Path]]:
    """Split ``paths`` into groups of the given sizes, in pixel-hash order."""
    ordered = sorted(paths, key=content_hash)
    groups, start = {}, 0
    for name, size in sizes.items():
        groups[name] = ordered[start : start + size]
        start += size
    return groups


def report(run: Callable[[Path], list[str]], prefix: str, out: Path | None) -> None:
    """``run(work)`` in a temporary work folder (removed after); its lines printed and
    written to ``out`` when given."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        lines = run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)
