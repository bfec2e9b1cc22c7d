"""Split any supported image into RGB + alpha floats, and put the result back the same way.

The network sees RGB float32 [0, 1]. Gray images are replicated to RGB and averaged back,
alpha is upscaled on its own (bicubic: the network was never trained on alpha), and the
result is returned in the input's mode and bit depth:

    numpy HxW / HxWx1 / HxWx3 / HxWx4, uint8, uint16 or float (values in [0, 1])
    PIL   1, L, LA, P (with or without transparency), RGB, RGBA, I;16, I, F
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from overnet.errors import InputError
from overnet.imaging.pixels import from_float, to_float


@dataclass
class SplitImage:
    """An image as the network needs it, plus what it takes to rebuild the original kind."""

    rgb: np.ndarray  # H x W x 3 float32 [0, 1]
    alpha: np.ndarray | None  # H x W float32 [0, 1], or None
    gray: bool
    dtype: np.dtype  # of the numpy form (uint8, uint16, float32, ...)
    channels: int  # 0 for HxW, else the channel count of the numpy form
    pil_mode: str | None = None  # set when the input was a PIL image
    palette: Image.Image | None = None  # the original P image (for its palette)
    transparency: Any = None
    info: dict[str, Any] = field(default_factory=dict)


def split_array(image: np.ndarray) -> SplitImage:
    """HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16 or float [0, 1])."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy array or PIL image, got {type(image).__name__}")
    if image.ndim == 2:
        channels = 0
        data = image[:, :, None]
    elif image.ndim == 3 and image.shape[2] in (1, 2, 3, 4):
        channels = image.shape[2]
        data = image
    else:
        raise InputError(
            f"expected an HxW, HxWx1, HxWx2 (gray+alpha), HxWx3 or HxWx4 image, got shape "
            f"{image.shape}; NCHW batches go to Session.run instead"
        )
    if data.shape[0] < 1 or data.shape[1] < 1:
        raise InputError(f"image has no pixels (shape {image.shape})")
    values = to_float(data)
    color = values[:, :, :1] if data.shape[2] <= 2 else values[:, :, :3]
    gray = data.shape[2] <= 2
    rgb = np.repeat(color, 3, axis=2) if gray else np.ascontiguousarray(color)
    alpha = values[:, :, -1] if data.shape[2] in (2, 4) else None
    return SplitImage(rgb=rgb, alpha=alpha, gray=gray, dtype=image.dtype, channels=channels)


def merge_array(split: SplitImage, rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Rebuild the numpy form of ``split`` from upscaled ``rgb`` (H'xW'x3) and ``alpha``."""
    color = rgb.mean(axis=2, keepdims=True) if split.gray else rgb
    parts = [color] + ([alpha[:, :, None]] if alpha is not None else [])
    merged = from_float(np.concatenate(parts, axis=2), split.dtype)
    return merged[:, :, 0] if split.channels == 0 else merged


#: PIL mode -> (numpy view mode, mode to convert back to)
_PIL_NATIVE = {"L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L"}


def split_pil(image: Image.Image) -> SplitImage:
    """A PIL image in any supported mode; CMYK and other colour spaces are refused."""
    mode = image.mode
    info = {k: image.info[k] for k in ("icc_profile", "exif", "dpi") if k in image.info}
    if mode == "CMYK":
        raise InputError(
            "CMYK images are not supported: converting them without their ICC profile "
            "changes the colours. Convert to RGB with a colour-managed tool first"
        )
    palette, transparency = None, None
    if mode == "P":
        palette, transparency = image, image.info.get("transparency")
        has_alpha = transparency is not None or "A" in (image.palette.mode or "")
        array = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    elif mode == "PA":
        palette = image
        array = np.asarray(image.convert("RGBA"))
    elif mode == "1":
        array = np.asarray(image.convert("L"))
    elif mode in ("I", "I;16", "I;16B", "I;16L"):
        raw = np.asarray(image)
        if raw.min(initial=0) < 0 or raw.max(initial=0) > 65535:
            raise InputError(
                f"32-bit integer image with values outside 0..65535 ({raw.min()}..{raw.max()}); "
                "expected 8- or 16-bit data"
            )
        array = raw.astype(np.uint16)
    elif mode == "F":
        array = np.asarray(image, dtype=np.float32)
    elif mode in _PIL_NATIVE:
        array = np.asarray(image)
    elif mode in ("YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La"):
        array = np.asarray(image.convert("RGBA" if mode in ("RGBa", "La") else "RGB"))
    else:
        raise InputError(f"unsupported PIL image mode {mode!r}; convert to RGB or L first")
    split = split_array(array)
    split.pil_mode = mode
    split.palette = palette
    split.transparency = transparency
    split.info = info
    return split


def merge_pil(split: SplitImage, rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """Rebuild a PIL image in the input's mode (palette images are mapped back to their
    palette, without dithering; alpha below 0.5 becomes the transparent index)."""
    return pil_from_array(split, merge_array(split, rgb, alpha))


def merge_array_in_strips(
    split: SplitImage, rgb: np.ndarray, alpha: np.ndarray | None, rows: int = 256
) -> np.ndarray:
    """``merge_array`` a band of ``rows`` output rows at a time into one result array:
    the float temporaries of the conversion stay a band's size, not the image's (at
    4K x2 the whole-image ones would be several GB)."""
    height = rgb.shape[0]
    first = merge_array(split, rgb[:rows], None if alpha is None else alpha[:rows])
    merged = np.empty((height, *first.shape[1:]), first.dtype)
    merged[:rows] = first
    for top in range(rows, height, rows):
        band = slice(top, top + rows)
        merged[band] = merge_array(split, rgb[band], None if alpha is None else alpha[band])
    return merged


def pil_from_array(split: SplitImage, array: np.ndarray) -> Image.Image:
    """The PIL image of ``split``'s mode from its merged numpy form (``merge_array``)."""
    mode = split.pil_mode
    if mode in ("I", "I;16", "I;16B", "I;16L"):
        out = (
            Image.fromarray(array.astype(np.uint16)).convert(mode)
            if mode == "I"
            else Image.fromarray(array.astype(np.uint16))
        )
    elif mode == "F":
        out = Image.fromarray(array.astype(np.float32), "F")
    else:
        out = Image.fromarray(array)
    if mode == "1":
        out = out.convert("1", dither=Image.Dither.NONE)
    elif mode == "P" and split.palette is not None:
        out = _to_palette(out, split)
    # PA (palette + alpha channel) comes back as RGBA: a P image cannot hold per-pixel alpha.
    elif mode in ("YCbCr", "LAB", "HSV"):
        out = out.convert(mode)
    out.info.update(split.info)
    return out


def _to_palette(image: Image.Image, split: SplitImage) -> Image.Image:
    rgb = image.convert("RGB")
    reference = split.palette.convert("P") if split.palette.mode == "PA" else split.palette
    quantized = rgb.quantize(palette=reference, dither=Image.Dither.NONE)
    if isinstance(split.transparency, int) and image.mode == "RGBA":
        indices = np.array(quantized)
        alpha = np.asarray(image)[:, :, 3]
        clear = split.transparency
        # An opaque pixel whose colour equals the transparent entry's must not vanish: give
        # it the nearest other palette colour.
        wrong = (indices == clear) & (alpha >= 128)
        if wrong.any():
            palette = np.array(reference.getpalette()[: 256 * 3], np.int64).reshape(-1, 3)
            indices[wrong] = nearest_entry(np.asarray(rgb)[wrong], palette, exclude=clear)
        indices[alpha < 128] = clear
        quantized = Image.fromarray(indices, "P")
        quantized.putpalette(reference.getpalette())
        quantized.info["transparency"] = split.transparency
    elif split.transparency is not None:
        quantized.info["transparency"] = split.transparency
    return quantized


#: colours compared with the palette at once in nearest_entry (x 256 entries x 8 bytes)
_COLOURS_PER_CHUNK = 4096


def nearest_entry(colours: np.ndarray, palette: np.ndarray, exclude: int) -> np.ndarray:
    """For each of ``colours`` (Nx3 uint8), the index of the nearest ``palette`` entry
    (Px3, squared RGB distance, lowest index on a tie) other than ``exclude``.

    Memory and time follow the number of distinct colours, not of pixels: a photo-sized
    run of pixels of one colour costs one comparison with the palette. Each chunk of
    distinct colours is compared with all entries at once (``_COLOURS_PER_CHUNK`` x P).
    """
    packed = (
        colours[:, 0].astype(np.uint32) << 16
        | colours[:, 1].astype(np.uint32) << 8
        | colours[:, 2].astype(np.uint32)
    )
    unique, inverse = np.unique(packed, return_inverse=True)
    distinct = np.stack([unique >> 16, (unique >> 8) & 0xFF, unique & 0xFF], axis=1)
    distinct = distinct.astype(np.int64)
    palette = palette.astype(np.int64)
    best = np.empty(len(unique), np.intp)
    for start in range(0, len(unique), _COLOURS_PER_CHUNK):
        part = distinct[start : start + _COLOURS_PER_CHUNK]
        dist = np.zeros((len(part), len(palette)), np.int64)
        for channel in range(3):
            dist += (part[:, channel, None] - palette[None, :, channel]) ** 2
        if 0 <= exclude < len(palette):
            dist[:, exclude] = np.iinfo(np.int64).max
        best[start : start + len(part)] = dist.argmin(1)
    return best[inverse.reshape(-1)]
