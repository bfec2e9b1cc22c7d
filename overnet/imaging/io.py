"""Image reading and atomic writing with specific errors (numpy + Pillow only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from overnet._atomic import atomic_target
from overnet.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode ``path``; every failure becomes an InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"image not found: {path}")
    if path.is_dir():
        raise InputError(f"expected an image file, got a directory: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"image file is empty (0 bytes): {path}")
    try:
        img = Image.open(path)
        img.load()
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: refused, too many pixels for a safe decode ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{path} is not an image Pillow can read; expected one of {', '.join(IMAGE_SUFFIXES)}"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path} is corrupt or truncated ({exc})") from exc
    return img


def read_rgb8(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """HWC uint8 RGB of ``path``, with notes on any conversion made (gray, alpha, 16-bit)."""
    img = open_image(path)
    notes: list[str] = []
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(np.floor(arr * 255.0 / peak + 0.5), 0, 255).astype(np.uint8))
        notes.append(f"{mode} image reduced to 8 bits")
        mode = "L"
    if mode in ("L", "1", "LA"):
        notes.append("grayscale image replicated to RGB")
    elif mode in ("RGBA", "PA") or (mode == "P" and "transparency" in img.info):
        notes.append("alpha channel ignored")
    elif mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    elif mode not in ("RGB", "P"):
        notes.append(f"{mode} image converted to RGB")
    return np.asarray(img.convert("RGB")), notes


def write_image_atomic(img: Image.Image, path: str | Path, **save_kwargs) -> Path:
    """Save ``img`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    fmt = save_kwargs.pop("format", None) or Image.registered_extensions().get(path.suffix.lower())
    with atomic_target(path) as tmp:
        img.save(tmp, format=fmt, **save_kwargs)
    return path


def float_to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 with round-half-up and clipping (how SR outputs are saved)."""
    return np.clip(np.floor(img * 255.0 + 0.5), 0, 255).astype(np.uint8)


def rgb8_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> contiguous 1x3xHxW float32 in [0, 1] (the network's input)."""
    return np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
