"""The network cut after its overscaled features, and the head that finishes it (torch)."""

from __future__ import annotations

import torch
from torch import nn

from overnet.formats.overscale_head import OverscaleHead
from overnet.model.network import OverNet


class OverscaleFeatures(nn.Module):
    """``OverNet`` up to its overscaled features: NCHW RGB [0, 1] -> N x F x uH x uW.

    What ``overnet export --overscale`` exports: one graph serves every target scale of
    its model; ``overscale_head(model)`` holds the rest.
    """

    def __init__(self, model: OverNet) -> None:
        super().__init__()
        self.model = model

    @property
    def config(self):
        return self.model.config

    def forward(self, x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        """``scale`` is ignored (the features serve every scale): TorchSession passes it."""
        return self.model.overscaled_features(x)


def _shift(conv: nn.Conv2d, where: str) -> torch.Tensor:
    eye = torch.eye(3).view(3, 3, 1, 1)
    if not torch.allclose(conv.weight.detach().float().cpu(), eye):
        raise ValueError(f"{where} is not a pure shift (its weight is not the identity)")
    return conv.bias.detach().float().cpu()


def overscale_head(model: OverNet) -> OverscaleHead:
    """exit1 and the mean shifts of ``model`` (weight norm folded if it has it)."""
    exit1 = model.exit1
    with torch.no_grad():
        weight = exit1.weight.detach().float().cpu().numpy().copy()
        bias = exit1.bias.detach().float().cpu().numpy().copy()
    return OverscaleHead(
        upscale=int(model.upscale),
        scale=float(model.scale),
        weight=weight,
        bias=bias,
        input_shift=_shift(model.sub_mean.shifter, "sub_mean").numpy(),
        output_shift=_shift(model.add_mean.shifter, "add_mean").numpy(),
    )
