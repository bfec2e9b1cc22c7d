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
