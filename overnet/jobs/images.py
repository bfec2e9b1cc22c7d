"""One image item, the same on every path: check, plan, admit, read, upscale, encode.

The local batch, the Ray actor and the service call these steps in this order, on a
file or on bytes in memory; all checks that can refuse an image run before any
inference (header size against ``max_pixels``, output size against the output format's
limits, the tile plan and its memory estimate against ``max_memory``), so a refusal
costs a header read, never an upscale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overnet.errors import InputError
from overnet.imaging.files import (
    OUTPUT_FORMATS,
    ImageHeader,
    Png16Image,
    check_format_fits,
    check_output_fits,
    encode_image,
    load_image,
    output_format,
    probe_image,
)
from overnet.jobs.budget import MemoryBudget
from overnet.runtime.upscaler import TilePlan, Upscaler

#: Pillow format -> the suffix whose output format an input of that format gets
_SUFFIX_OF_FORMAT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
#: an image item: a file, or its bytes in memory (a request body, a Ray row)
Source = Path | bytes


@dataclass(frozen=True)
class ImageOptions:
    """What a run asks of every image: output format (None: the input's), JPEG/WebP
    quality and the decompression-bomb guard."""

    fmt: str | None = None
    quality: int = 95
    max_pixels: int = 100_000_000


@dataclass(frozen=True)
class PlannedImage:
    """An image checked and planned from its header alone."""

    name: str
    fmt: str  # output format name (--format)
    width: int
    height: int
    out_width: int
    out_height: int
    plan: TilePlan
    estimate: int  # bytes upscaling it holds at its peak, encoded input included (the
    # same figure whether it came as a file or as bytes)

    @property
    def tiles(self) -> int:
        return len(self.plan.tiles)


def check_fits_budget(planned: PlannedImage, upscaler: Upscaler, budget: MemoryBudget) -> None:
    """Refuse an image whose estimate exceeds the budget (MemoryLimitError), unless the
    user asked for whole images whatever the budget (``--tile 0``)."""
    if upscaler.tile == 0:
        return
    refusal = budget.too_large(planned.estimate, planned.name)
    if refusal is not None:
        raise refusal


def output_format_of(source: Source, header_format: str, requested: str | None) -> str:
    """The output format: the requested one, else the input's (by name for a file, by
    content for bytes), PNG when the input's cannot be written."""
    if isinstance(source, Path):
        return output_format(source, requested)
    return output_format(Path("image" + _SUFFIX_OF_FORMAT.get(header_format, ".png")), requested)


def plan_image(
    source: Source, upscaler: Upscaler, options: ImageOptions, *, name: str | None = None
) -> PlannedImage:
    """Read the header and refuse, before any decode or inference, what cannot be done:
    too many pixels, an output too large for its format, no tile plan within
    ``max_memory``. InputError names ``name`` (default: the path, or "the image")."""
    shown = name or (str(source) if isinstance(source, Path) else "the image")
    return plan_header(probe_image(source, options.max_pixels, name=shown), source, upscaler,
                       options, name=shown)  # fmt: skip


def plan_header(
    header: ImageHeader, source: Source, upscaler: Upscaler, options: ImageOptions, *, name: str
) -> PlannedImage:
    """``plan_image`` from a header already read (``probe_image``): a caller that must
    tell a header it cannot read from a plan it cannot make (the service: 415 or 400)
    reads it once."""
    fmt = output_format_of(source, header.format, options.fmt)
    out_h, out_w = upscaler.output_size(header.height, header.width)
    check_output_fits(fmt, out_w, out_h, name=name)
    plan = upscaler.plan(header.height, header.width)
    # the encoded input is held while it is decoded, from a file as from a request body
    encoded = len(source) if isinstance(source, bytes) else _file_size(source)
    return PlannedImage(
        name, fmt, header.width, header.height, out_w, out_h, plan, plan.image_bytes + encoded
    )


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def decode_image(source: Source, planned: PlannedImage, options: ImageOptions) -> Any:
    """Decode (PIL image or Png16Image), checked against the planned size."""
    image = load_image(source, options.max_pixels, name=planned.name)
    if (image.width, image.height) != (planned.width, planned.height):
        raise InputError(
            f"{planned.name}: the header says {planned.width}x{planned.height} but the "
            f"image decodes to {image.width}x{image.height}; the file is damaged"
        )
    return image


def check_output_holds(image: Any, planned: PlannedImage) -> None:
    """Refuse, before the upscale, an output format that would lose the image's alpha
    or bit depth (InputError saying which format to use)."""
    if isinstance(image, Png16Image):
        if planned.fmt != "png":
            raise InputError(
                f"{planned.name}: 16-bit RGB images are written as PNG only ({planned.fmt} "
                "would drop to 8 bits); use --format png"
            )
    else:
        check_format_fits(image, planned.fmt)


def read_image(source: Source, planned: PlannedImage, options: ImageOptions) -> Any:
    """``decode_image``, then ``check_output_holds``."""
    image = decode_image(source, planned, options)
    check_output_holds(image, planned)
    return image


def upscale_image(
    image: Any, upscaler: Upscaler, run: Callable[[np.ndarray], np.ndarray] | None = None
) -> Any:
    """The upscaled image, same kind, mode and depth; ``run`` replaces ``session.run``
    for each group of tiles (the service's batcher)."""
    pixels = image.pixels if isinstance(image, Png16Image) else image
    out = upscaler.upscale(pixels) if run is None else upscaler.upscale_with(pixels, run)
    return Png16Image(out, image.chunks) if isinstance(image, Png16Image) else out


def encode_output(image: Any, planned: PlannedImage, options: ImageOptions) -> bytes:
    """The output file's bytes in the planned format."""
    return encode_image(image, planned.fmt, options.quality)


def suffix_of(fmt: str) -> str:
    return OUTPUT_FORMATS[fmt][1]
