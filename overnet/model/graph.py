"""The inference graph that is exported: weight norm and constant scalings folded away."""

from __future__ import annotations

import copy

import torch
from torch import nn

from overnet.config import check_scale
from overnet.model import OverNet, fold_weight_norm
from overnet.model.network import RGB_MEAN, ResidualBlock, Scale, resize_bicubic, target_size

# A multiplier this close to 0 is not folded (dividing SE weights by it would blow up).
_MIN_FOLDABLE = 1e-3


class InferenceGraph(nn.Module):
    """OverNet for export: NCHW float32 RGB [0, 1] ``lr`` -> ``sr`` at a fixed scale (or,
    with ``overscale``, the F-channel features at the model's upscale).

    Differences from the training module, each exact up to float rounding:
    - weight norm folded into plain conv weights;
    - MeanShift convs replaced: features see ``lr - mean``, and since bicubic weights
      sum to 1 the skip path is ``resize(lr)`` with the +mean/-mean pair cancelled;
    - residual-block ``res_scale`` folded into the last body conv (and the SE input
      conv divided back); the body-level ``res_scale``/``x_scale`` folded into the
      convs before their ReLU when positive.
    """

    def __init__(
        self, model: OverNet, scale: float | None = None, *, overscale: bool = False
    ) -> None:
        super().__init__()
        #: stop at the overscaled features (N x F x uH x uW): ``--overscale`` graphs
        self.overscale = overscale
        net = fold_weight_norm(copy.deepcopy(model)).eval()
        self.scale = float(model.config.scale if scale is None else check_scale(scale, net.upscale))
        self.net = net
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1))
        with torch.no_grad():
            for block in net.modules():
                if isinstance(block, ResidualBlock):
                    _fold_block_res_scale(block)
            net.res_scale = _fold_into_relu_conv(net.res_scale, net.reduction.conv)
            net.x_scale = _fold_into_relu_conv(net.x_scale, net.Global_skip[1])

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        size = target_size(lr, self.scale)
        body = self.net.body_features(lr - self.mean)
        if self.overscale:
            return self.net.upsample.up.body(body)
        return self.net.reconstruct(body, size) + resize_bicubic(lr, size)


def _fold_block_res_scale(block: ResidualBlock) -> None:
    """res_scale * (y * SE(y)) == (c*y) * SE'(c*y) with SE's first conv divided by c."""
    if not isinstance(block.res_scale, Scale):
        return
    c = float(block.res_scale.scale)
    if abs(c) < _MIN_FOLDABLE:
        return
    last = block.body[3]
    last.weight.mul_(c)
    last.bias.mul_(c)
    block.SE.conv[0].weight.div_(c)
    block.res_scale = nn.Identity()


def _fold_into_relu_conv(scale: nn.Module, conv: nn.Conv2d) -> nn.Module:
    """c * relu(conv(x)) == relu((c*conv)(x)) for c > 0."""
    if not isinstance(scale, Scale):
        return scale
    c = float(scale.scale)
    if c <= 0:
        return scale
    conv.weight.mul_(c)
    conv.bias.mul_(c)
    return nn.Identity()
