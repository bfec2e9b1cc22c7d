"""Model facts for `overnet info`: config, size, compute, beside the paper's claims."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overnet import paper
from overnet._optional import require
from overnet.config import OverNetConfig, output_size


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


def _conv(in_ch: int, out_ch: int, kernel: int, groups: int = 1) -> tuple[int, int]:
    """(parameters, multiply-adds per output pixel) of a biased convolution."""
    macs = out_ch * (in_ch // groups) * kernel * kernel
    return macs + out_ch, macs


def _network_convs(config: OverNetConfig) -> list[tuple[str | int, int, int]]:
    """Every convolution of :class:`overnet.model.OverNet` as (where, parameters, MACs per
    output pixel). ``where``: "out" (at the output size), "pooled" (on 1x1 maps) or the
    factor its map's area has over the input's (1: input resolution; the reconstruction's
    pixel-shuffle stages grow it). Torch-free, so that `overnet info` runs without torch;
    tests/cli/test_info_counts.py checks these against the torch module."""
    f = config.channels
    block = [_conv(f, 6 * f, 1), _conv(6 * f, int(0.8 * f), 1), _conv(int(0.8 * f), f, 3)]
    squeeze = [_conv(f, f // 16, 1), _conv(f // 16, f, 1)]  # SE, on pooled maps
    dense = [_conv(k * f, f, 1) for k in (2, 3, 4)]  # the 1x1 fusions of a dense group
    group = [(1, *c) for c in block * 3 + dense] + [("pooled", *c) for c in squeeze * 3]
    convs = [(1, *_conv(3, 3, 1)), ("out", *_conv(3, 3, 1))]  # the two MeanShifts
    convs += [(1, *_conv(3, f, 3)), *group * 3]  # entry, three dense groups
    convs += [(1, *c) for c in [*dense, _conv(3 * f, f, 1)]]  # body fusions, reduction
    convs += [("pooled", *_conv(f, f, 1))]  # Global_skip
    power_of_two = config.upscale in (2, 4, 8)
    stages = [2] * (config.upscale.bit_length() - 1) if power_of_two else [config.upscale]
    area = 1
    for r in stages:  # grouped conv, then PixelShuffle(r)
        convs.append((area, *_conv(f, f * r * r, 3, groups=4)))
        area *= r * r
    return [*convs, ("out", *_conv(f, 3, 3))]  # exit1


#: learnable scalars (``Scale``): two per residual block (nine), two in the body
_SCALARS = 2 * 9 + 2


def count_parameters(config: OverNetConfig) -> int:
    """Parameters of the inference (weight-norm folded) network, MeanShift included: the
    figure :func:`overnet.model.count_parameters` measures on the module."""
    return sum(params for _, params, _ in _network_convs(config)) + _SCALARS


def count_macs(config: OverNetConfig, height: int, width: int) -> tuple[int, int]:
    """(spatial, pooled) conv multiply-adds for a ``height`` x ``width`` input at the
    config's scale, split as :func:`overnet.model.count_macs` splits them (pooled: the
    convolutions whose output is 1x1)."""
    out_h, out_w = output_size(height, width, config.scale)
    spatial = pooled = 0
    for where, _, macs in _network_convs(config):
        if where == "pooled":
            pixels = 1
        else:
            pixels = out_h * out_w if where == "out" else height * width * int(where)
        if pixels == 1:
            pooled += macs
        else:
            spatial += macs * pixels
    return spatial, pooled


def describe(weights: str | Path | None = None, scale: float | None = None) -> ModelInfo:
    """Facts about ``weights`` (or the default x2 architecture when None); without torch
    for the default architecture (a checkpoint is read with torch)."""
    if weights is None:
        config = OverNetConfig.for_scale(2) if scale is None else OverNetConfig(3, scale)
        source, sha, container, wn = (
            "built-in default (x2 architecture, no weights)",
            None,
            "-",
            None,
        )
    else:
        require("torch", f"reading the checkpoint {weights}")
        from overnet.weights import load_weights

        loaded = load_weights(weights, scale)
        config, source, sha = loaded.config, str(loaded.path), loaded.sha256
        container, wn = loaded.container, loaded.weight_norm
    params = count_parameters(config)
    # Per input pixel on a small map; the 720p figure for the input that gives 1280x720.
    per_pixel = count_macs(config, 24, 24)[0] / (24 * 24)
    in_h, in_w = round(720 / config.scale), round(1280 / config.scale)
    macs_720p = sum(count_macs(config, in_h, in_w))
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
