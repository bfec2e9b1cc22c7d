"""What the ONNX backends share: reading metadata, scale, and the upstream `scale` input."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overnet.errors import InputError
from overnet.formats.onnx_metadata import read_onnx_metadata


@dataclass(frozen=True)
class OnnxModelFacts:
    """Scale and precision of an ONNX file, from overnet metadata or the caller."""

    path: Path
    metadata: dict[str, str]
    scale: float | None
    upscale: int | None
    precision: str


def onnx_facts(path: Path, scale: float | None) -> OnnxModelFacts:
    return facts_from_metadata(path, read_onnx_metadata(path), scale)


def facts_from_metadata(
    path: Path, metadata: dict[str, str], scale: float | None, export: str = "overnet export"
) -> OnnxModelFacts:
    """Facts from overnet's ``overnet.*`` keys (ONNX metadata or an IR's rt_info); a
    ``scale`` other than the recorded one is an InputError naming the ``export`` command."""
    meta_scale = float(metadata["overnet.scale"]) if "overnet.scale" in metadata else None
    if scale is not None and meta_scale is not None and not math.isclose(scale, meta_scale):
        raise InputError(
            f"{path} was exported for x{meta_scale:g}, not x{scale:g}; export the scale you "
            f"need (`{export} --scale`), one that serves every scale (`{export} "
            "--overscale`), or leave scale unset"
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


def input_feeds(
    inputs: list[tuple[str, int]], facts: OnnxModelFacts
) -> tuple[str, dict[str, np.ndarray]]:
    """From (name, rank) pairs: the NCHW image input's name, and fixed feeds for the rest
    (the upstream export's scalar ``scale`` input)."""
    image = [name for name, rank in inputs if rank == 4]
    if len(image) != 1:
        raise InputError(f"{facts.path} has no single NCHW image input; is it an OverNet export?")
    value = None
    extra = {}
    for name, _ in inputs:
        if name != image[0]:
            value = value if value is not None else scale_input_value(facts.scale, facts.path)
            extra[name] = np.array(value, np.int64)
    return image[0], extra


def probe_scale(run) -> float:
    """Scale of a model without metadata, from the output size of one small input."""
    side = 12
    out = run(np.zeros((1, 3, side, side), np.float32))
    return out.shape[-1] / side
