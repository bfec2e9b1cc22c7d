"""Model configuration shared by every layer (no torch, so runtimes can use it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from overnet.errors import InputError

#: Overscaling factors the reconstruction module can be built for.
SUPPORTED_UPSCALES = (2, 3, 4, 5, 8)

#: Input pixels neighbouring tiles share, by default, on every path that tiles (the
#: Upscaler, the fixed-tile edge exports). See docs/figures.md for the measured effect of
#: tile size and overlap on Set5 PSNR.
DEFAULT_OVERLAP = 16

#: Upstream trains each scale s with the reconstruction overscaling to s + 1.
_UPSTREAM_DEFAULT_SCALE = {3: 2, 4: 3, 5: 4}


def default_scale_for(upscale: int) -> int:
    """The scale a checkpoint with this ``upscale`` was trained for.

    Upstream pairs x2/x3/x4 with upscale 3/4/5; upscale 2 and 8 have no
    overscaling partner, so they serve their own factor.
    """
    return _UPSTREAM_DEFAULT_SCALE.get(upscale, upscale)


#: Largest denominator a fractional scale is read with (2.1 is 21/10, 7/3 stays 7/3).
_SCALE_DENOMINATOR = 10**6


def scale_fraction(scale: float) -> Fraction:
    """``scale`` as the fraction it stands for: the nearest one with a denominator up
    to 10**6, so 2.3 is 23/10 and not the binary float just below it."""
    return Fraction(float(scale)).limit_denominator(_SCALE_DENOMINATOR)


def output_size(height: Any, width: Any, scale: float) -> tuple[Any, Any]:
    """Output (H, W) the network produces for a ``height`` x ``width`` input at ``scale``.

    Each side is multiplied by the scale and rounded half up (5 px at x2.5 -> 13 px), in
    integer arithmetic on :func:`scale_fraction`: the network, its ONNX and TensorRT
    graphs (which trace this function with symbolic sizes) and every prediction of an
    output size agree, whatever float precision each would otherwise round in.
    """
    ratio = scale_fraction(scale)
    num, den = ratio.numerator, ratio.denominator
    if den == 1:  # integer scales stay one multiplication in exported graphs
        return height * num, width * num
    return (2 * num * height + den) // (2 * den), (2 * num * width + den) // (2 * den)


@dataclass(frozen=True)
class OverNetConfig:
    """Hyperparameters of one OverNet network.

    upscale: factor the overscaling reconstruction enlarges by (2, 3, 4, 5 or 8).
    scale: default target scale (1 < scale <= upscale; may be fractional).
    channels: feature width F (64 in the paper).
    """

    upscale: int = 3
    scale: float = 2
    channels: int = 64

    def __post_init__(self) -> None:
        if self.upscale not in SUPPORTED_UPSCALES:
            raise InputError(f"upscale must be one of {SUPPORTED_UPSCALES}, got {self.upscale!r}")
        check_scale(self.scale, self.upscale)
        if self.channels < 16 or self.channels % 16:
            # SE reduces by 16 and the reconstruction uses 4 groups.
            raise InputError(f"channels must be a positive multiple of 16, got {self.channels}")

    @classmethod
    def for_scale(cls, scale: int, channels: int = 64) -> OverNetConfig:
        """The upstream pairing: x2 -> upscale 3, x3 -> 4, x4 -> 5, x8 -> 8."""
        upscale = {2: 3, 3: 4, 4: 5, 8: 8}.get(int(scale))
        if upscale is None or scale != int(scale):
            raise InputError(f"no upstream pairing for scale {scale}; choose 2, 3, 4 or 8")
        return cls(upscale=upscale, scale=int(scale), channels=channels)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def check_scale(scale: float, upscale: int) -> float:
    """Validate a target scale for a model of ``upscale``; returns it as float."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise InputError(f"scale must be a number, got {scale!r}") from None
    if not math.isfinite(value) or value < 1 or value > upscale:
        raise InputError(
            f"scale must be between 1 and the model's upscale {upscale}, got {scale!r}; "
            "a model serves any scale up to the factor its reconstruction overscales to"
        )
    return value
