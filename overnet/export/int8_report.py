"""What INT8 quantisation found: the gate's figures, the metadata keys, the error."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from overnet.export.int8_gate import DropStats
from overnet.export.onnx_export import ExportError


@dataclass
class Int8Report:
    """What the search and the gate found (PSNR-Y in dB, latency in seconds)."""

    validation: str
    fp32_psnr_y: float
    int8_psnr_y: float
    max_drop: float
    precision_hint: str
    quantizers: int
    float_layers: list[str]
    calibration: str
    search_s: float
    seconds: dict[str, float] = field(default_factory=dict)
    runtime: str = "openvino"
    target: float | None = None  # the search's own goal on the search crops (f32)
    searched: bool = True  # False: plain INT8 (search_s is the quantisation's time)
    stats: DropStats | None = None  # per-image drops on the validation set
    sets: str = ""  # how many images each set holds and where they came from
    notes: list[str] = field(default_factory=list)  # overlaps removed, splits made
    hashes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> 16-hex
    image_sets: Any = None  # the ImageSets used (int8_sets), for a second gate on them

    @property
    def drop(self) -> float:
        """Mean PSNR-Y drop on the validation set (dB)."""
        return self.stats.mean if self.stats else self.fp32_psnr_y - self.int8_psnr_y

    @property
    def drop_upper(self) -> float:
        """Upper bound of the mean drop's confidence interval: what the gate compares."""
        return self.stats.high if self.stats else self.drop

    @property
    def passed(self) -> bool:
        return self.quantizers > 0 and self.drop_upper <= self.max_drop

    def props(self) -> dict[str, str]:
        """The ``overnet.int8_*`` metadata keys."""
        props = {
            "overnet.int8_drop_db": f"{self.drop:.4f}",
            "overnet.int8_max_drop_db": f"{self.max_drop:g}",
            "overnet.int8_psnr_y": f"{self.int8_psnr_y:.4f}",
            "overnet.int8_fp32_psnr_y": f"{self.fp32_psnr_y:.4f}",
            "overnet.int8_validation": self.validation,
            "overnet.int8_calibration": self.calibration,
            "overnet.int8_float_layers": ",".join(self.float_layers),
            "overnet.int8_quantizers": str(self.quantizers),
        }
        if self.stats:
            props["overnet.int8_drop_upper_db"] = f"{self.stats.high:.4f}"
            props["overnet.int8_drop_interval_db"] = f"{self.stats.low:.4f},{self.stats.high:.4f}"
            props["overnet.int8_drop_confidence"] = f"{self.stats.confidence:g}"
            props["overnet.int8_worst"] = "{}={:.4f}".format(*self.stats.worst)
        if self.hashes:  # so a later check can tell whether its images were seen here
            props["overnet.int8_image_hashes"] = json.dumps(
                {role: list(keys) for role, keys in self.hashes.items()}, sort_keys=True
            )
        if self.seconds:
            props["overnet.int8_latency_s"] = ",".join(
                f"{k}={v:.4f}" for k, v in self.seconds.items()
            )
        return props

    def format(self) -> str:
        lines = [
            f"INT8 ({self.runtime}, float layers in {self.precision_hint}) on {self.validation}: "
            f"PSNR-Y {self.int8_psnr_y:.3f} dB vs fp32 {self.fp32_psnr_y:.3f} dB, drop "
            f"{self.drop:.3f} dB (gate {self.max_drop:g} dB"
            + (f" on the upper bound {self.drop_upper:.3f} dB): " if self.stats else "): ")
            + ("passed" if self.passed else "FAILED"),
            f"  {self.quantizers} quantizers; {len(self.float_layers)} layers kept in float"
            + (f": {', '.join(self.float_layers)}" if self.float_layers else ""),
            f"  calibration {self.calibration}"
            + (
                f"; {'accuracy-aware search' if self.searched else 'plain INT8'} "
                f"{self.search_s:.0f} s"
                if self.search_s
                else ""
            )
            + (
                f" (to <= {self.target:.3f} dB on the crops in f32)"
                if self.target is not None
                else ""
            ),
        ]
        if self.stats:
            lines.insert(1, f"  {self.stats.format()}")
        if self.sets:
            lines.append(f"  sets: {self.sets}")
        lines += [f"  note: {note}" for note in self.notes]
        if self.stats and self.stats.warning():
            lines.append(f"  warning: {self.stats.warning()}")
        if self.seconds:
            base = self.seconds.get("fp32")
            parts = [
                f"{k} {v:.3f} s" + (f" ({base / v:.2f}x fp32)" if base and k != "fp32" else "")
                for k, v in self.seconds.items()
            ]
            lines.append("  latency: " + ", ".join(parts))
        return "\n".join(lines)


class QualityGateError(ExportError):
    """The INT8 model misses the PSNR-Y gate; nothing was written."""

    def __init__(self, report: Int8Report) -> None:
        if report.quantizers == 0:
            why = "the gate is met only with every layer back in float: no INT8 model is left"
        else:
            bound = "upper bound of the mean drop" if report.stats else "drop"
            why = (
                f"the {bound} {report.drop_upper:.3f} dB exceeds the gate {report.max_drop:g} dB "
                f"by {report.drop_upper - report.max_drop:.3f} dB"
            )
        super().__init__(
            f"INT8 quality gate failed, nothing written: {why}.\n{report.format()}\n"
            "Calibrate on more or more varied images, give a larger --validation set (a "
            "narrower interval), let the accuracy-aware search put layers back in float "
            "(--max-reverts N), or raise --max-drop"
        )
        self.report = report
