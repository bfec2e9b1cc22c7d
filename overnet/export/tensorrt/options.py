"""Engine build options shared by the builder, the sidecar and the trtexec command."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from overnet.errors import InputError

#: --hardware-compat value -> trt.HardwareCompatibilityLevel member
HARDWARE_COMPAT = {
    "none": "NONE",
    "ampere+": "AMPERE_PLUS",
    "same-cc": "SAME_COMPUTE_CAPABILITY",
}
#: --hardware-compat value -> trtexec --hardwareCompatibilityLevel value
TRTEXEC_HARDWARE_COMPAT = {"ampere+": "ampere+", "same-cc": "sameComputeCapability"}

_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str | int | None) -> int | None:
    """``4096`` (MiB), ``512M``, ``4G`` -> bytes; None stays None (TensorRT's default)."""
    if text is None or isinstance(text, int):
        return None if text is None else int(text) << 20
    value = str(text).strip().lower().removesuffix("ib").removesuffix("b")
    unit = _UNITS["m"]
    if value and value[-1] in _UNITS:
        unit, value = _UNITS[value[-1]], value[:-1]
    try:
        size = int(float(value) * unit)
    except ValueError:
        size = 0
    if size <= 0:
        raise InputError(f"--workspace must be a size such as 4096 (MiB), 512M or 4G, got {text!r}")
    return size


@dataclass(frozen=True)
class BuildOptions:
    """How an engine is built (recorded in its sidecar)."""

    workspace: int | None = None  # bytes; None = TensorRT's default (the GPU's memory)
    opt_level: int | None = None  # builder_optimization_level 0..5; None = TensorRT's (3)
    timing_cache: Path | None = None
    version_compatible: bool = False
    hardware_compat: str = "none"  # a HARDWARE_COMPAT key

    def __post_init__(self) -> None:
        if self.opt_level is not None and not 0 <= self.opt_level <= 5:
            raise InputError(f"--opt-level must be 0..5, got {self.opt_level}")
        if self.hardware_compat not in HARDWARE_COMPAT:
            raise InputError(
                f"--hardware-compat must be one of {', '.join(HARDWARE_COMPAT)}, "
                f"got {self.hardware_compat!r}"
            )

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["timing_cache"] = str(self.timing_cache) if self.timing_cache else None
        return data
