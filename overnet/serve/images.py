"""Image bytes in, image bytes out, exactly as `overnet upscale` reads and writes files.

The body goes through the same ``load_image`` / ``save_image`` as `overnet upscale`
(16-bit PNGs at full depth, alpha, palette, ICC/EXIF/DPI, format checks), by way of a
private temporary folder; the tiles go through ``Upscaler.upscale_with``. No Ray here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from overnet.errors import InputError
from overnet.imaging.files import (
    OUTPUT_FORMATS,
    Png16Image,
    check_format_fits,
    load_image,
    output_format,
    save_image,
)
from overnet.runtime.upscaler import Upscaler
from overnet.serve.config import Limits
from overnet.serve.limits import ServeError, UpscaleParams, probe_image

#: Pillow format -> a file suffix `overnet upscale` knows (its output format follows it)
_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "tiff": "image/tiff",
}

RunTiles = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Decoded:
    image: Any  # PIL image or Png16Image
    fmt: str  # the output format name (`overnet upscale --format`)
    width: int
    height: int


@dataclass(frozen=True)
class Encoded:
    data: bytes
    fmt: str
    width: int
    height: int
    tiles: int = 0  # tiles the input was cut into

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


def decode(body: bytes, params: UpscaleParams, limits: Limits) -> Decoded:
    """Check, then decode; refuse a format request that would lose alpha or depth (400)."""
    pil_format, width, height = probe_image(body, limits)
    suffix = _SUFFIX[pil_format]
    with tempfile.TemporaryDirectory(prefix="overnet-serve-") as folder:
        path = Path(folder) / f"body{suffix}"
        path.write_bytes(body)
        try:
            image = load_image(path, limits.max_pixels)
        except InputError as exc:
            message = str(exc).replace(str(path), "the image")
            raise ServeError("unsupported_media", message) from None
    fmt = output_format(Path(f"body{suffix}"), params.fmt)
    try:
        if isinstance(image, Png16Image):
            if fmt != "png":
                raise InputError(
                    f"16-bit RGB images are sent back as PNG only ({fmt} would drop to 8 "
                    "bits); ask for format=png"
                )
        else:
            check_format_fits(image, fmt)
    except InputError as exc:
        raise ServeError("bad_request", str(exc).replace("--format", "format=")) from None
    return Decoded(image, fmt, width, height)


def upscale(decoded: Decoded, upscaler: Upscaler, run: RunTiles) -> Any:
    """The upscaled image, same kind, mode and depth (`overnet upscale`'s path)."""
    image = decoded.image
    try:
        if isinstance(image, Png16Image):
            return Png16Image(upscaler.upscale_with(image.pixels, run), image.chunks)
        return upscaler.upscale_with(image, run)
    except InputError as exc:  # a mode the network cannot take (CMYK, odd PIL modes)
        raise ServeError("unsupported_media", str(exc)) from None


def encode(image: Any, fmt: str, quality: int) -> Encoded:
    with tempfile.TemporaryDirectory(prefix="overnet-serve-") as folder:
        path = Path(folder) / f"result{OUTPUT_FORMATS[fmt][1]}"
        try:
            save_image(image, path, fmt, quality)
        except InputError as exc:
            raise ServeError("bad_request", str(exc)) from None
        data = path.read_bytes()
    return Encoded(data, fmt, image.width, image.height)


def process(
    body: bytes, params: UpscaleParams, limits: Limits, upscaler: Upscaler, run: RunTiles
) -> Encoded:
    """Body -> upscaled image file bytes; every refusal is a ServeError."""
    decoded = decode(body, params, limits)
    encoded = encode(upscale(decoded, upscaler, run), decoded.fmt, params.quality)
    tiles = len(upscaler.plan(decoded.height, decoded.width).tiles)
    return replace(encoded, tiles=tiles)
