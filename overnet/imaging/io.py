"""Image reading and atomic writing with specific errors (numpy + Pillow only).

Pillow opens files with only the plugins of :data:`ACCEPTED_FORMATS` (PNG, JPEG, WebP,
TIFF, BMP: the formats of :data:`IMAGE_SUFFIXES`): a file of any other format, whatever
its name, is refused before a parser of that format reads a byte of it. Everything
Pillow or a codec under it can raise on a bad file becomes an InputError naming it.
"""

from __future__ import annotations

import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from overnet._atomic import atomic_target
from overnet.errors import InputError, PixelLimitError
from overnet.imaging.pixels import from_float, hwc_to_nchw

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: the Pillow formats an input may have (one per kind of IMAGE_SUFFIXES)
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_ACCEPTED_TEXT = "PNG, JPEG, WebP, TIFF or BMP"
#: Pillow format names reported as the accepted format they are a kind of (a JPEG with
#: more pictures after the first, as phone cameras write, opens as MPO)
FORMAT_ALIASES = {"MPO": "JPEG"}

#: What Pillow or a codec may raise on a damaged file, besides DecompressionBombError
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    zlib.error,
)

# File signatures of formats Pillow (or another program) could read but that are not
# accepted, so a refusal can say what the file is.
_OTHER_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"8BPS", "PSD (Photoshop)"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"icns", "ICNS"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\x01\xda", "SGI"),
)
_ACCEPTED_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def sniff_format(head: bytes) -> str | None:
    """What the first bytes of a file say it is, for error messages (None: unknown)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1"):
            return "HEIF"
    if head[:1] == b"\x0a" and head[1:2] in (b"\x00", b"\x02", b"\x03", b"\x04", b"\x05"):
        return "PCX"
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"1234567" and head[2:3].isspace():
        return "PNM (PBM/PGM/PPM)"
    for signature, name in _ACCEPTED_SIGNATURES + _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    return None


_PIXEL_LIMIT_LOCK = threading.Lock()


def allow_pillow_pixels(max_pixels: int) -> None:
    """Let Pillow decode images of up to ``max_pixels`` (it warns above its
    MAX_IMAGE_PIXELS and refuses above twice that, also while decoding TIFF tiles).

    Raised, never lowered: threads that decode with different limits cannot undo each
    other's setting. Our own header check against ``max_pixels``, made before any
    decode, is the guard; Pillow's stays behind it as a second one.
    """
    with _PIXEL_LIMIT_LOCK:
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and max_pixels > limit:
            Image.MAX_IMAGE_PIXELS = max_pixels


def pil_open(fp: BinaryIO, name: str) -> Image.Image:
    """Open (header only) an image file object with the accepted plugins only.

    An image above Pillow's limit (:func:`allow_pillow_pixels`) is an InputError that
    says so; its size warning is not shown (the caller refuses such images itself)."""
    try:
        with _PIXEL_LIMIT_LOCK, warnings.catch_warnings():
            # catch_warnings changes process-wide state: the lock keeps our own opens
            # from interleaving; the header parse it covers takes microseconds
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp, formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as exc:
        fp.seek(0)
        raise unreadable_error(name, fp.read(16)) from exc
    except Image.DecompressionBombError as exc:
        raise bomb_error(name, exc) from exc
    except DECODE_ERRORS as exc:
        raise corrupt_error(name, exc) from exc


def unreadable_error(name: str, head: bytes) -> InputError:
    kind = sniff_format(head)
    if kind in ACCEPTED_FORMATS:
        return InputError(
            f"{name} is corrupt or truncated (it starts like a {kind} file but Pillow cannot "
            "read its header)"
        )
    if kind is not None:
        return InputError(
            f"{name} is a {kind} file, not an accepted image format: expected a "
            f"{_ACCEPTED_TEXT} image; convert it to PNG first"
        )
    return InputError(
        f"{name} is not an image Pillow can read: expected a {_ACCEPTED_TEXT} image "
        f"({', '.join(IMAGE_SUFFIXES)})"
    )


def bomb_error(name: str, exc: Exception) -> PixelLimitError:
    return PixelLimitError(
        f"{name}: refused before decoding, too many pixels for the limit that guards "
        f"against decompression bombs ({exc}); raise --max-pixels if the file is trusted"
    )


def corrupt_error(name: str, exc: BaseException) -> InputError:
    detail = str(exc) or type(exc).__name__
    return InputError(f"{name} is corrupt or truncated ({detail})")


def decode_pil(image: Image.Image, name: str) -> Image.Image:
    """Decode an opened image's pixels (``image.load()``), errors as InputError."""
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise bomb_error(name, exc) from exc
    except DECODE_ERRORS as exc:
        raise corrupt_error(name, exc) from exc
    return image


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@contextmanager
def open_path(path: str | Path, name: str | None = None) -> Iterator[BinaryIO]:
    """The file at ``path`` opened for reading, after checking that it is a non-empty
    file; InputErrors name it ``name`` (default: the path)."""
    path = Path(path)
    name = name or str(path)
    try:
        if not path.exists():
            raise InputError(f"image not found: {name}")
        if path.is_dir():
            raise InputError(f"expected an image file, got a directory: {name}")
        if path.stat().st_size == 0:
            raise InputError(f"image file is empty (0 bytes): {name}")
        fh = open(path, "rb")  # noqa: SIM115 (closed below, after the caller is done)
    except OSError as exc:
        raise InputError(f"cannot read {name} ({exc.strerror or exc})") from exc
    with fh:
        yield fh


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode ``path`` (an accepted format only); every failure becomes an
    InputError naming the file."""
    name = str(path)
    with open_path(path) as fh:
        return decode_pil(pil_open(fh, name), name)


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
    """Float [0, 1] -> uint8 with clipping and round-half-up (how SR outputs are saved;
    :func:`overnet.imaging.pixels.from_float`)."""
    return from_float(img, np.uint8)


def rgb8_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> contiguous 1x3xHxW float32 in [0, 1] (the network's input;
    :func:`overnet.imaging.pixels.hwc_to_nchw`)."""
    return hwc_to_nchw(rgb)
