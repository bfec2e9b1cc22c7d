"""Input discovery, output naming, and image files as bytes or paths for upscaling.

Reading: :func:`probe_image` (header only) and :func:`load_image` (decode) take a path
or the file's bytes, so the CLI, the service and the Ray actors read images the same
way, without temp files. Only the accepted formats' parsers see the bytes
(:data:`overnet.imaging.io.ACCEPTED_FORMATS`), the pixel count is checked from the header
before any decode, and every failure is an InputError that names the image.

Writing: :func:`check_output_fits` refuses, before any compute, an output larger than
its format can hold (:data:`OUTPUT_LIMITS`); :func:`encode_image` gives the file's
bytes (metadata kept) and :func:`save_image` writes them atomically.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from overnet._atomic import write_bytes_atomic
from overnet.errors import InputError, PixelLimitError
from overnet.imaging.io import (
    ACCEPTED_FORMATS,
    DECODE_ERRORS,
    FORMAT_ALIASES,
    IMAGE_SUFFIXES,
    allow_pillow_pixels,
    decode_pil,
    is_image_path,
    open_path,
    pil_open,
)
from overnet.imaging.png16 import (
    HEADER_BYTES,
    decode_png16,
    encode_png16,
    is_png16_color,
    read_header,
)

#: --format name -> (Pillow format, file suffix)
OUTPUT_FORMATS = {
    "png": ("PNG", ".png"),
    "jpg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
    "tiff": ("TIFF", ".tif"),
}
_FORMAT_OF_SUFFIX = {
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".webp": "webp",
    ".tif": "tiff",
    ".tiff": "tiff",
}
#: Refuse inputs above this many pixels before decoding them (decompression bombs).
DEFAULT_MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class InputFile:
    path: Path
    relative: Path  # where its output goes below the output folder


def expand_inputs(
    specs: list[str], recursive: bool = False, exclude: Path | None = None
) -> tuple[list[InputFile], list[str]]:
    """Files, folders and glob patterns -> image files (sorted, de-duplicated) and the
    problems found (a pattern that matches nothing, a missing path). Files in ``exclude``
    (the output folder) found by a folder walk or glob rooted above it are left out, so a
    rerun never upscales its own outputs."""
    found: dict[Path, InputFile] = {}
    problems: list[str] = []
    for spec in specs:
        path = Path(spec)
        if any(ch in spec for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            files = [m for m in matches if m.is_file() and is_image_path(m)]
            if not files:
                problems.append(f"{spec}: the pattern matches no image files")
            root = Path(spec.split("*")[0].split("?")[0].split("[")[0] or ".")
            root = root if root.is_dir() else root.parent
            for m in files:
                if not _inside_output(m, root, exclude):
                    found.setdefault(m.resolve(), InputFile(m, Path(m.name)))
        elif path.is_dir():
            walker = path.rglob("*") if recursive else path.iterdir()
            files = sorted(p for p in walker if p.is_file() and is_image_path(p))
            if not files:
                problems.append(
                    f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"
                    + ("" if recursive else "; use --recursive for subfolders")
                )
            for p in files:
                if not _inside_output(p, path, exclude):
                    found.setdefault(p.resolve(), InputFile(p, p.relative_to(path)))
        elif path.is_file():
            found.setdefault(path.resolve(), InputFile(path, Path(path.name)))
        else:
            problems.append(f"{spec}: no such file or folder")
    return list(found.values()), problems


def _inside_output(file: Path, root: Path, out_dir: Path | None) -> bool:
    """True for a file found under ``root`` that lies in an output folder nested strictly
    inside ``root`` (a rerun would otherwise upscale its own earlier outputs)."""
    if out_dir is None:
        return False
    out, base = out_dir.resolve(), root.resolve()
    return out != base and out.is_relative_to(base) and file.resolve().is_relative_to(out)


def output_format(input_path: Path, requested: str | None) -> str:
    """The --format name to write: the requested one, else the input's when writable."""
    if requested:
        if requested not in OUTPUT_FORMATS:
            raise InputError(
                f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {requested}"
            )
        return requested
    return _FORMAT_OF_SUFFIX.get(input_path.suffix.lower(), "png")


def output_path(item: InputFile, out_dir: Path, fmt: str, suffix: str = "") -> Path:
    rel = item.relative
    return out_dir / rel.parent / f"{rel.stem}{suffix}{OUTPUT_FORMATS[fmt][1]}"


def check_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it is writable before any work starts."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".overnet-write-test.", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(
            f"cannot write to the output folder {out_dir} ({exc.strerror or exc}); choose "
            "another -o or fix its permissions"
        ) from exc


#: What a source of load_image / probe_image may be: a path, or the file's bytes.
Source = str | os.PathLike | bytes | bytearray | memoryview


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read before any pixel is decoded."""

    format: str  # Pillow format name, one of ACCEPTED_FORMATS
    width: int
    height: int
    mode: str  # Pillow mode ("RGB", "RGBA", "P", ...); a 16-bit PNG's is RGB or RGBA
    png16: bool = False  # a 16-bit RGB/RGBA PNG: load_image returns a Png16Image
    frames: int = 1  # 1, or 2 for "more than one" (pages, animation frames); the first is read

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass
class Png16Image:
    """A 16-bit RGB/RGBA PNG (HxWx3/4 uint16) with its metadata chunks (Pillow would
    read it as 8-bit)."""

    pixels: np.ndarray
    chunks: dict[bytes, bytes]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


def _is_bytes(source: object) -> bool:
    return isinstance(source, (bytes, bytearray, memoryview))


def _name_of(source: Source, name: str | None) -> str:
    if name:
        return name
    return "the image" if _is_bytes(source) else str(source)


@contextlib.contextmanager
def _opened(source: Source, name: str) -> Iterator[BinaryIO]:
    """A binary file object of ``source`` (a path, or the file's bytes)."""
    if _is_bytes(source):
        if len(source) == 0:
            raise InputError(f"{name} is empty (0 bytes); send an image file")
        yield io.BytesIO(source)
    else:
        with open_path(source, name) as fh:
            yield fh


def _limit_error(name: str, width: int, height: int, max_pixels: int) -> PixelLimitError:
    return PixelLimitError(
        f"{name} is {width}x{height} ({width * height / 1e6:.0f} MP), above the "
        f"{max_pixels / 1e6:.0f} MP limit that guards against decompression bombs; "
        "raise --max-pixels if the file is trusted"
    )


def _header(fh: BinaryIO, name: str, max_pixels: int) -> tuple[ImageHeader, Image.Image | None]:
    """The header of the open file ``fh`` and, unless it is a 16-bit PNG, the PIL image
    opened on it (header parsed, pixels not decoded)."""
    head = fh.read(HEADER_BYTES)
    fh.seek(0)
    if is_png16_color(head):
        png = read_header(head, name)  # strict: an IHDR libspng would refuse is refused here
        if png.width * png.height > max_pixels:
            raise _limit_error(name, png.width, png.height, max_pixels)
        mode = "RGB" if png.channels == 3 else "RGBA"
        return ImageHeader("PNG", png.width, png.height, mode, png16=True), None
    allow_pillow_pixels(max_pixels)
    image = pil_open(fh, name)
    width, height = _decoded_size(image)
    if width * height > max_pixels:
        raise _limit_error(name, width, height, max_pixels)
    if width < 1 or height < 1:
        raise InputError(f"{name} is corrupt: its header states a size of {width}x{height}")
    fmt = FORMAT_ALIASES.get(image.format, image.format)
    if fmt not in ACCEPTED_FORMATS:  # a plugin that reports another name
        raise InputError(f"{name} is a {image.format} image, not a PNG, JPEG, WebP, TIFF or BMP")
    bits = image.tag_v2.get(258) if fmt == "TIFF" else None
    if image.mode in ("RGB", "RGBA") and bits and max(bits) > 8:
        raise InputError(
            f"{name} is a {max(bits)}-bit RGB TIFF, which Pillow decodes to 8 bits; convert "
            "it to a 16-bit PNG (kept at full depth) or to 8-bit first"
        )
    # Whether there is more than one picture, not how many: counting a TIFF's pages
    # walks every IFD in Python (tests/jobs/test_admission.py probes 20,000 pages).
    try:
        animated = bool(getattr(image, "is_animated", False))
    except (*DECODE_ERRORS, Image.DecompressionBombError):
        animated = False  # a damaged later page or frame: the first is what is read
    return ImageHeader(fmt, width, height, image.mode, frames=2 if animated else 1), image


def _decoded_size(image: Image.Image) -> tuple[int, int]:
    """The size ``image.load()`` will give: a TIFF whose orientation turns it by 90
    degrees is transposed as Pillow reads it, and Pillow releases before 11 report the
    stored size until then."""
    width, height = image.size
    if image.format == "TIFF" and image.tag_v2.get(274) in (5, 6, 7, 8):
        stored = (image.tag_v2.get(256), image.tag_v2.get(257))
        if (width, height) == stored and width != height:
            return height, width
    return width, height


def probe_image(
    source: Source, max_pixels: int = DEFAULT_MAX_PIXELS, *, name: str | None = None
) -> ImageHeader:
    """The header of ``source`` (a path, or the file's bytes), read without decoding any
    pixel and only by the parsers of ACCEPTED_FORMATS.

    InputError (naming ``name``, default: the path, or "the image" for bytes) for a
    missing, empty or unreadable file, a format that is not accepted, a damaged header,
    more than ``max_pixels`` pixels, and a 16-bit RGB TIFF (Pillow would read 8 bits).
    """
    name = _name_of(source, name)
    with _opened(source, name) as fh:
        header, image = _header(fh, name, max_pixels)
        if image is not None:
            image.close()
    return header


def load_image(
    source: Source, max_pixels: int = DEFAULT_MAX_PIXELS, *, name: str | None = None
) -> Image.Image | Png16Image:
    """Decode ``source`` (a path, or the file's bytes) after checking its header
    (:func:`probe_image`, so a refusal costs a header read).

    16-bit RGB/RGBA PNGs come back as Png16Image (full depth); everything else as a
    decoded PIL image (the first picture of a multi-page or animated file). Every
    problem is an InputError naming ``name`` (default: the path, or "the image").
    """
    name = _name_of(source, name)
    with _opened(source, name) as fh:
        header, image = _header(fh, name, max_pixels)
        if image is None:
            data = bytes(source) if _is_bytes(source) else _read_all(fh, name)
            return Png16Image(*decode_png16(data, name=name, max_pixels=max_pixels))
        decode_pil(image, name)
    if image.size != (header.width, header.height):
        raise InputError(
            f"{name}: the header says {header.width}x{header.height} but the image decodes "
            f"to {image.width}x{image.height}; the file is damaged"
        )
    return image


def _read_all(fh: BinaryIO, name: str) -> bytes:
    try:
        return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {name} ({exc.strerror or exc})") from exc


@dataclass(frozen=True)
class OutputLimit:
    """The largest image an output format can hold, as Pillow writes it."""

    max_side: int  # pixels per side
    max_bytes: int | None  # uncompressed pixel bytes (None: no limit besides max_side)
    why: str


#: --format name -> the largest output it can hold (checked by check_output_fits)
OUTPUT_LIMITS = {
    "png": OutputLimit(2**31 - 1, None, "PNG stores at most 2^31-1 pixels per side"),
    "jpg": OutputLimit(
        65500,
        None,
        "JPEG stores at most 65535 pixels per side, and libjpeg (Pillow's encoder) 65500",
    ),
    "webp": OutputLimit(16383, None, "WebP stores at most 16383 pixels per side"),
    "tiff": OutputLimit(
        2**32 - 1,
        2**32,
        "Pillow writes classic TIFF, whose 32-bit offsets end at 4 GiB; estimated from "
        "the uncompressed pixels (width x height x bytes per pixel)",
    ),
}
# Bytes per pixel as written to TIFF, by PIL mode; an unknown mode counts as the most.
_TIFF_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 2, "I;16": 2, "RGB": 3, "RGBA": 4}
_FORMAT_NAMES = {"png": "PNG", "jpg": "JPEG", "webp": "WebP", "tiff": "TIFF"}


def check_output_fits(
    fmt: str, width: int, height: int, *, name: str | None = None, mode: str | None = None
) -> None:
    """Refuse, before any compute, an output of ``width`` x ``height`` that the output
    format ``fmt`` (a --format name) cannot store (:data:`OUTPUT_LIMITS`); the message
    says the size, the limit and what to do. ``mode`` (PIL mode of the output) refines
    the TIFF size estimate; without it a pixel counts as 4 bytes (RGBA, I, F)."""
    if fmt not in OUTPUT_LIMITS:
        raise InputError(f"--format must be one of {', '.join(OUTPUT_LIMITS)}, got {fmt}")
    limit = OUTPUT_LIMITS[fmt]
    label = _FORMAT_NAMES[fmt]
    what = f"{name}: the" if name else "The"
    if max(width, height) > limit.max_side:
        alternatives = [f for f, lim in OUTPUT_LIMITS.items() if max(width, height) <= lim.max_side]
        raise InputError(
            f"{what} {width}x{height} output is too large for {label}, which stores at most "
            f"{limit.max_side} pixels per side ({limit.why}); use --format "
            f"{' or '.join(alternatives)}, or a lower --scale"
        )
    if limit.max_bytes is not None:
        per_pixel = _TIFF_BYTES_PER_PIXEL.get(mode or "", 4)
        size = width * height * per_pixel
        if size > limit.max_bytes:
            raise InputError(
                f"{what} {width}x{height} output is about {size / 2**30:.1f} GiB of pixels, "
                f"above the {limit.max_bytes / 2**30:.0f} GiB a {label} file can hold "
                f"({limit.why}); use --format png, or a lower --scale"
            )


def check_format_fits(image: Image.Image, fmt: str) -> None:
    """Refuse writes that would drop alpha or bit depth (what was lost, what to use)."""
    mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    deep = mode in ("I;16", "I;16B", "I;16L", "I", "F")
    if fmt == "jpg" and has_alpha:
        raise InputError("JPEG cannot store the alpha channel; use --format png, webp or tiff")
    if fmt in ("jpg", "webp") and deep:
        raise InputError(f"{fmt} stores 8 bits per channel; this {mode} image needs png or tiff")
    if fmt == "png" and mode == "F":
        raise InputError("PNG cannot store 32-bit float images; use --format tiff")


def encode_image(image: Image.Image | Png16Image, fmt: str, quality: int = 95) -> bytes:
    """The bytes of ``image`` as a ``fmt`` file (a --format name), keeping the ICC
    profile, EXIF (orientation included), DPI and transparency; JPEG with 4:4:4 chroma
    at quality >= 90 (4:2:0 below), WebP in RGB/RGBA, TIFF deflate-compressed, a
    Png16Image as a 16-bit PNG with its metadata chunks."""
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt}")
    if isinstance(image, Png16Image):
        if fmt != "png":
            raise InputError(
                f"16-bit RGB images are written as PNG only ({fmt} would drop to 8 bits); "
                "use --format png"
            )
        check_output_fits(fmt, image.width, image.height)
        return encode_png16(image.pixels, image.chunks)

    check_format_fits(image, fmt)
    check_output_fits(fmt, image.width, image.height, mode=image.mode)
    pil_format = OUTPUT_FORMATS[fmt][0]
    options: dict = {}
    for key in ("icc_profile", "exif", "dpi"):
        if key in image.info:
            options[key] = image.info[key]
    if "transparency" in image.info and pil_format in ("PNG", "WEBP", "TIFF"):
        options["transparency"] = image.info["transparency"]
    if pil_format == "JPEG":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if image.mode == "P":
            image = image.convert("RGB")
    elif pil_format == "WEBP":
        options.update(quality=quality)
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            options.pop("transparency", None)
    elif pil_format == "TIFF":
        options["compression"] = "tiff_deflate"
        options.pop("transparency", None)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=pil_format, **options)
    except (ValueError, OSError, struct.error, TypeError, KeyError) as exc:
        raise InputError(
            f"Pillow could not encode this {image.mode} {image.width}x{image.height} image "
            f"as {_FORMAT_NAMES[fmt]} ({exc}); try another --format"
        ) from exc
    return buffer.getvalue()


def save_image(image: Image.Image | Png16Image, path: Path, fmt: str, quality: int = 95) -> Path:
    """Write :func:`encode_image`'s bytes to ``path`` atomically (a temp file in the same
    folder, then a rename): a failure leaves the old file or none, never a torn one."""
    return write_bytes_atomic(path, encode_image(image, fmt, quality))
