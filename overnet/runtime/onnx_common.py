"""What the ONNX backends share: reading metadata, scale, and the upstream `scale` input."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from overnet.errors import InputError
from overnet.runtime.onnx_meta import read_onnx_metadata


@dataclass(frozen=True)
class OnnxModelFacts:
    """Scale and precision of an ONNX file, from overnet metadata or the caller."""

    path: Path
    metadata: dict[str, str]
    scale: float | None
    upscale: int | None
    precision: str


def onnx_facts(path: Path, scale: float | None) -> OnnxModelFacts:
    metadata = read_onnx_metadata(path)
    meta_scale = float(metadata["overnet.scale"]) if "overnet.scale" in metadata else None
    if scale is not None and meta_scale is not None and not math.isclose(scale, meta_scale):
        raise InputError(
            f"{path} was exported for x{meta_scale:g}, not x{scale:g}; export the scale you "
            "need (`overnet export --scale`) or leave scale unset"
        )
    upscale = int(metadata["overnet.upscale"]) if "overnet.upscale" in metadata else None
    return OnnxModelFacts(
        path=path,
        metadata=metadata,
        scale=meta_scale if meta_scale is not None else scale,
        upscale=upscale,
        precision=metadata.get("overnet.precision", "fp32"),
    )


def scale_input_value(scale: float | None, path: Path) -> int:
    """Value for the upstream export's scalar `scale` input (it selects the output size)."""
    if scale is None:
        raise InputError(
            f"{path} takes the scale as an input (an upstream export); pass scale=2/3/4 "
            "(--scale on the command line)"
        )
    if not float(scale).is_integer():
        raise InputError(f"the upstream export takes an integer scale, got {scale:g}")
    return int(scale)


def upscale_for(facts: OnnxModelFacts) -> int | None:
    """The model's overscale factor; None when the file does not record it (upstream)."""
    return facts.upscale


def probe_scale(run) -> float:
    """Scale of a model without metadata, from the output size of one small input."""
    import numpy as np

    side = 12
    out = run(np.zeros((1, 3, side, side), np.float32))
    return out.shape[-1] / side
