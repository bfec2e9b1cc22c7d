"""Working memory of one inference, per input pixel, for choosing tile sizes.

Measured on this project's CPU machines as the peak-RSS growth of a single 256x256 run
(`python benchmarks/tile_memory.py`, recorded in `benchmarks/results/tile-memory.txt`): it
grows linearly with the input pixels, and the overscale stage adds a term in upscale**2.
Bytes per input pixel, upscale-3 model (x2 weights) / upscale-4 model (x3 weights):

    openvino     13,093 / 16,878      onnxruntime   8,946 / 8,945
    torch (NCHW)  6,961 (upscale 3)   torch channels_last 6,450 (upscale 3)

The constants below reproduce these within 1% (torch: above them); SAFETY adds 20%.
"""

from __future__ import annotations

#: backend -> (bytes per input pixel, extra bytes per input pixel per upscale**2)
_LINEAR_MODEL = {
    "openvino": (8_200, 545),
    "onnxruntime": (7_900, 115),
    "torch": (6_700, 150),
    "torch-cl": (5_700, 150),
}
#: headroom over the measured growth: allocator slack, shapes not measured
SAFETY = 1.2
DEFAULT_UPSCALE = 4  # for models that do not record it: assume the larger x3/x4 models


def bytes_per_input_pixel(backend: str, upscale: int | None) -> int:
    """Estimated peak working memory of one inference per input pixel (batch included)."""
    base, per_overscale = _LINEAR_MODEL.get(backend, _LINEAR_MODEL["openvino"])
    u = upscale or DEFAULT_UPSCALE
    return int((base + per_overscale * u * u) * SAFETY)


def parse_memory(text: str | int | float) -> int:
    """'1.5GB', '800MB', '2GiB' or a number of bytes -> bytes."""
    if isinstance(text, (int, float)):
        return int(text)
    value = text.strip().upper().replace(" ", "")
    units = {
        "TIB": 2**40,
        "GIB": 2**30,
        "MIB": 2**20,
        "KIB": 2**10,
        "TB": 10**12,
        "GB": 10**9,
        "MB": 10**6,
        "KB": 10**3,
        "B": 1,
    }
    unit = next((u for u in units if value.endswith(u)), "")
    number, factor = value[: len(value) - len(unit)], units.get(unit, 1)
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(
            f"expected a memory size such as 1.5GB, 800MB or 2GiB, got {text!r}"
        ) from None
    if amount <= 0:
        raise ValueError(f"memory size must be positive, got {text!r}")
    return int(amount * factor)
