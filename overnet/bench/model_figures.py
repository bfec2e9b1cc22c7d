"""Model-side figures beside the paper and published lightweight SR models (with sources).

Parameter and multiply-add counts need torch (meta tensors, no compute); Set5 PSNR needs
real weights and the dataset, and is measured with ``overnet.eval`` through a runtime session.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from overnet import paper
from overnet.config import OverNetConfig


@dataclass(frozen=True)
class PublishedModel:
    """Figures a model's authors published, quoted as stated (units as in the source)."""

    name: str
    parameters: int
    macs: float | None  # multiply-adds ("FLOPs" where the source says so), for ``macs_input``
    macs_input: str  # the input size the count is for
    set5_psnr: float | None
    set5_scale: int | None
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Only figures checked against the authors' own paper or repository are listed; models
#: whose figures could not be checked were left out rather than quoted second-hand.
PUBLISHED: tuple[PublishedModel, ...] = (
    PublishedModel(
        name="IMDN+ (NTIRE 2022 efficient SR)",
        parameters=275_844,
        macs=17.9848e9,
        macs_input="3x256x256 input, x4",
        set5_psnr=32.11,
        set5_scale=4,
        source="https://github.com/Zheng222/IMDN (README, 'Model complexity' table)",
        note="the README states 'FLOPs'; NTIRE's counter reports multiply-adds under that name",
    ),
)


@dataclass
class ScaleFigures:
    scale: float
    upscale: int
    parameters: int
    macs_per_input_pixel: float
    macs_720p_output: int
    bytes_fp32: int
    bytes_fp16: int
    architecture_only: bool  # True: counted for the upstream pairing, not the given weights


def config_for(base: OverNetConfig | None, scale: float) -> tuple[OverNetConfig, bool]:
    """The config that serves ``scale``: the given model's when it can, else the upstream
    pairing for that scale (flagged as architecture only)."""
    if base is not None and scale <= base.upscale:
        return OverNetConfig(base.upscale, scale, base.channels), False
    return OverNetConfig.for_scale(int(scale)), base is not None


def scale_figures(base: OverNetConfig | None, scales: list[float]) -> list[ScaleFigures]:
    """Parameters, multiply-adds per input pixel and per 1280x720 output, weight bytes."""
    from overnet.model import count_macs, count_parameters

    figures = []
    for s in scales:
        config, arch_only = config_for(base, s)
        params = count_parameters(config)
        per_pixel = count_macs(config, 24, 24, s).per_input_pixel
        macs_720p = count_macs(config, round(720 / s), round(1280 / s), s).total
        figures.append(
            ScaleFigures(
                float(s),
                config.upscale,
                params,
                per_pixel,
                macs_720p,
                params * 4,
                params * 2,
                arch_only,
            )
        )
    return figures


def measure_set5(weights: Path, scale: int, set5: Path, backend: str = "auto") -> dict[str, Any]:
    """Mean Set5 PSNR-Y (paper protocol) of ``weights`` at ``scale`` through ``backend``."""
    from overnet.eval import discover, evaluate
    from overnet.runtime import open_session

    start = time.perf_counter()
    dataset = discover(set5, scale)
    with open_session(weights, backend, scale=scale) as session:
        result = evaluate(dataset, session.run, "paper", progress=False)
        used = session.info.describe()
    published = paper.BENCHMARK.get(("Set5", scale))
    return {
        "dataset": str(set5),
        "scale": scale,
        "protocol": "paper",
        "psnr_y": result.mean("psnr_y"),
        "ssim_y": result.mean("ssim_y"),
        "images": len(result.ok),
        "failed": len(result.failed),
        "backend": used,
        "seconds": time.perf_counter() - start,
        "paper_psnr_y": published[0] if published else None,
    }


def model_section(
    base: OverNetConfig | None,
    scales: list[float],
    weights_label: str,
    real_weights: bool,
    set5: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``model`` object of the JSON report."""
    return {
        "weights": weights_label,
        "real_weights": real_weights,
        "per_scale": [asdict(f) for f in scale_figures(base, scales)],
        "paper": {
            "name": paper.PAPER,
            "parameters": paper.PARAMETERS,
            "set5_psnr_y": {f"x{k[1]}": v[0] for k, v in paper.BENCHMARK.items() if k[0] == "Set5"},
        },
        "set5_measured": set5,
        "published_models": [m.to_dict() for m in PUBLISHED],
    }
