"""Parameter and multiply-add counts, measured on the module graph (no real compute)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from overnet.config import OverNetConfig
from overnet.model.network import OverNet


def count_parameters(config: OverNetConfig) -> int:
    """Parameters of the inference (weight-norm folded) network, MeanShift included.

    This is the figure the paper reports (923,358 for the upstream x2 model).
    """
    model = OverNet(config, weight_norm=False)
    return sum(p.numel() for p in model.state_dict().values())


@dataclass(frozen=True)
class MacCount:
    """Multiply-adds of the convolutions for one image of ``height`` x ``width``."""

    height: int
    width: int
    scale: float
    per_pixel_maps: int  # convs whose cost grows with the image
    per_image: int  # convs on globally pooled 1x1 maps (SE, global skip)

    @property
    def total(self) -> int:
        return self.per_pixel_maps + self.per_image

    @property
    def per_input_pixel(self) -> float:
        return self.per_pixel_maps / (self.height * self.width)


def count_macs(
    config: OverNetConfig, height: int, width: int, scale: float | None = None
) -> MacCount:
    """Conv multiply-adds for a ``height`` x ``width`` input (meta tensors, no compute)."""
    with torch.device("meta"):
        model = OverNet(config, weight_norm=False)
        x = torch.empty(1, 3, height, width)
    spatial = [0]
    pooled = [0]

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        macs = output.numel() * (module.in_channels // module.groups) * kh * kw
        (pooled if output.shape[-1] * output.shape[-2] == 1 else spatial)[0] += macs

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x, scale)
    finally:
        for h in handles:
            h.remove()
    used = config.scale if scale is None else scale
    return MacCount(height, width, float(used), spatial[0], pooled[0])
