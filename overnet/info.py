"""Model facts for `overnet info`: config, size, compute, beside the paper's claims."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overnet import paper
from overnet.config import OverNetConfig


@dataclass(frozen=True)
class ModelInfo:
    source: str
    sha256: str | None
    container: str
    weight_norm: bool | None
    config: OverNetConfig
    parameters: int
    macs_per_input_pixel: float
    macs_720p_output: int
    bytes_fp32: int
    bytes_fp16: int

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "container": self.container,
            "weight_norm": self.weight_norm,
            "config": self.config.to_dict(),
            "parameters": self.parameters,
            "macs_per_input_pixel": self.macs_per_input_pixel,
            "macs_1280x720_output": self.macs_720p_output,
            "bytes_fp32": self.bytes_fp32,
            "bytes_fp16": self.bytes_fp16,
            "paper": {"name": paper.PAPER, "parameters": paper.PARAMETERS},
        }


def describe(weights: str | Path | None = None, scale: float | None = None) -> ModelInfo:
    """Facts about ``weights`` (or the default x2 architecture when None)."""
    from overnet.model import count_macs, count_parameters

    if weights is None:
        config = OverNetConfig.for_scale(2) if scale is None else OverNetConfig(3, scale)
        source, sha, container, wn = (
            "built-in default (x2 architecture, no weights)",
            None,
            "-",
            None,
        )
    else:
        from overnet.weights import load_weights

        loaded = load_weights(weights, scale)
        config, source, sha = loaded.config, str(loaded.path), loaded.sha256
        container, wn = loaded.container, loaded.weight_norm
    params = count_parameters(config)
    # Per input pixel on a small map; the 720p figure for the input that gives 1280x720.
    per_pixel = count_macs(config, 24, 24).per_input_pixel
    in_h, in_w = round(720 / config.scale), round(1280 / config.scale)
    macs_720p = count_macs(config, in_h, in_w).total
    return ModelInfo(
        source, sha, container, wn, config, params, per_pixel, macs_720p, params * 4, params * 2
    )


def format_info(info: ModelInfo) -> str:
    c = info.config
    rows = [
        ("weights", info.source),
        ("sha256", info.sha256 or "-"),
        (
            "container",
            f"{info.container}"
            + (
                ""
                if info.weight_norm is None
                else (", weight norm (g/v)" if info.weight_norm else ", folded weights")
            ),
        ),
        ("config", f"scale x{c.scale:g} (default), upscale {c.upscale}, channels {c.channels}"),
        ("scales served", f"any scale in [1, {c.upscale}] (output round(H*s) x round(W*s))"),
        ("parameters", f"{info.parameters:,}   (paper: {paper.PARAMETERS / 1e6:.1f}M)"),
        ("mult-adds", f"{info.macs_per_input_pixel:,.0f} per input pixel (convolutions)"),
        (
            "  at 1280x720",
            f"{info.macs_720p_output / 1e9:.1f} G for a 1280x720 output at x{c.scale:g}",
        ),
        (
            "weights size",
            f"{info.bytes_fp32 / 1e6:.2f} MB fp32, {info.bytes_fp16 / 1e6:.2f} MB fp16",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
