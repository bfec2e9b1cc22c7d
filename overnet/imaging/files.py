"""Input discovery, output naming and metadata-preserving writes for batch upscaling."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from overnet.errors import InputError
from overnet.imaging.io import IMAGE_SUFFIXES, is_image_path, open_image
from overnet.imaging.png16 import is_png16_color, read_png16, write_png16

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


@contextlib.contextmanager
def _pillow_pixel_limit(max_pixels: int):
    """Let Pillow open what our own --max-pixels allows (it refuses > 2x its limit)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(max_pixels, saved or 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


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


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image | Png16Image:
    """Decode ``path`` after checking its header size against ``max_pixels``.

    16-bit RGB/RGBA PNGs come back as Png16Image (full depth); everything else as PIL.
    """
    limit = f"the {max_pixels / 1e6:.0f} MP limit that guards against decompression bombs"
    with _pillow_pixel_limit(max_pixels):
        try:
            with Image.open(path) as probe:
                width, height = probe.size
        except Exception:  # open_image below reports the precise problem
            width = height = 0
        if width * height > max_pixels:
            raise InputError(
                f"{path} is {width}x{height} ({width * height / 1e6:.0f} MP), above {limit}; "
                "raise --max-pixels if the file is trusted"
            )
        if is_png16_color(path):
            return Png16Image(*read_png16(path))
        image = open_image(path)
    bits = getattr(image, "tag_v2", {}).get(258) if image.format == "TIFF" else None
    if image.mode in ("RGB", "RGBA") and bits and max(bits) > 8:
        raise InputError(
            f"{path} is a {max(bits)}-bit RGB TIFF, which Pillow decodes to 8 bits; convert "
            "it to a 16-bit PNG (kept at full depth) or to 8-bit first"
        )
    return image


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


def save_image(image: Image.Image | Png16Image, path: Path, fmt: str, quality: int = 95) -> Path:
    """Write atomically, keeping the ICC profile, EXIF (orientation included) and DPI."""
    from overnet.imaging.io import write_image_atomic

    if isinstance(image, Png16Image):
        if fmt != "png":
            raise InputError(
                f"16-bit RGB images are written as PNG only ({fmt} would drop to 8 bits); "
                "use --format png"
            )
        return write_png16(image.pixels, path, image.chunks)

    check_format_fits(image, fmt)
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
    return write_image_atomic(image, path, format=pil_format, **options)
