"""The OverNet network (WACV 2021), module names matching the upstream checkpoints.

Layout: input and output are NCHW float32 RGB in [0, 1]; the output is not clamped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from overnet.config import OverNetConfig, check_scale, output_size

#: DIV2K RGB mean that MeanShift subtracts before and adds after the network.
RGB_MEAN = (0.4488, 0.4371, 0.4040)


def _conv(in_ch: int, out_ch: int, kernel: int, *, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups)


class MeanShift(nn.Module):
    """Frozen 1x1 conv with identity weight and bias -mean (sign -1) or +mean (sign +1)."""

    def __init__(self, sign: int) -> None:
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(RGB_MEAN))
        for p in self.shifter.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


class Scale(nn.Module):
    """One learnable scalar multiplier."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([init]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class SE(nn.Module):
    """Squeeze-and-excitation: global average pool -> 1x1 -> ReLU -> 1x1 -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv(F.adaptive_avg_pool2d(x, 1))


class ResidualBlock(nn.Module):
    """Wide-activation block: 1x1 (6F) -> ReLU -> 1x1 (0.8F) -> 3x3 (F) -> SE, scaled skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        wide, narrow = channels * 6, int(channels * 0.8)
        self.body = nn.Sequential(
            _conv(channels, wide, 1),
            nn.ReLU(inplace=True),
            _conv(wide, narrow, 1),
            _conv(narrow, channels, 3),
        )
        self.SE = SE(channels)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.SE(self.body(x))) + self.x_scale(x)


class BasicConv2d(nn.Module):
    """1x1 conv followed by ReLU (the dense-fusion reductions)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = _conv(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


def _dense3(x, blocks, reductions):
    """Dense pattern shared by LDGs and the body: returns the three reduced outputs."""
    concat, outputs, current = x, [], x
    for block, reduce in zip(blocks, reductions, strict=True):
        concat = torch.cat([concat, block(current)], dim=1)
        current = reduce(concat)
        outputs.append(current)
    return outputs


class LocalDenseGroup(nn.Module):
    """Three residual blocks with dense concatenation and 1x1 fusion (upstream `GDG`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.RB1 = ResidualBlock(channels)
        self.RB2 = ResidualBlock(channels)
        self.RB3 = ResidualBlock(channels)
        self.reduction1 = BasicConv2d(channels * 2, channels)
        self.reduction2 = BasicConv2d(channels * 3, channels)
        self.reduction3 = BasicConv2d(channels * 4, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = (self.RB1, self.RB2, self.RB3)
        reductions = (self.reduction1, self.reduction2, self.reduction3)
        return _dense3(x, blocks, reductions)[-1]


def _pixel_shuffle_factors(upscale: int) -> list[int]:
    if upscale in (2, 4, 8):
        return [2] * int(math.log2(upscale))
    return [upscale]  # 3 and 5: one stage


class _ReconstructionBody(nn.Module):
    def __init__(self, channels: int, upscale: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for r in _pixel_shuffle_factors(upscale):
            layers += [
                _conv(channels, channels * r * r, 3, groups=4),
                nn.ReLU(inplace=True),
                nn.PixelShuffle(r),
            ]
        self.body = nn.Sequential(*layers)


class OverscaleUpsampler(nn.Module):
    """Grouped conv + PixelShuffle stages to ``upscale``, then bicubic to the target size."""

    def __init__(self, channels: int, upscale: int) -> None:
        super().__init__()
        self.up = _ReconstructionBody(channels, upscale)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return resize_bicubic(self.up.body(x), size)


def resize_bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PyTorch bicubic (Keys a=-0.75, half-pixel centres, no antialias) to ``size``."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


def target_size(x: torch.Tensor, scale: float) -> tuple[int, int]:
    """Output (H, W) for the NCHW ``x`` at ``scale``: :func:`overnet.config.output_size`."""
    return output_size(x.shape[-2], x.shape[-1], scale)


class OverNet(nn.Module):
    """OverNet: NCHW float32 RGB in [0, 1] -> N x 3 x H' x W' (``output_size``: H*s, W*s
    rounded half up).

    ``weight_norm=True`` wraps the same convolutions as upstream in PyTorch's
    weight-norm parametrization (for training and for loading g/v checkpoints);
    :func:`overnet.model.fold_weight_norm` turns them into plain weights.
    """

    def __init__(self, config: OverNetConfig | None = None, *, weight_norm: bool = True) -> None:
        super().__init__()
        self.config = config or OverNetConfig()
        channels, upscale = self.config.channels, self.config.upscale
        self.sub_mean = MeanShift(-1)
        self.add_mean = MeanShift(+1)
        self.entry_1 = _conv(3, channels, 3)
        self.GDG1 = LocalDenseGroup(channels)
        self.GDG2 = LocalDenseGroup(channels)
        self.GDG3 = LocalDenseGroup(channels)
        self.reduction1 = BasicConv2d(channels * 2, channels)
        self.reduction2 = BasicConv2d(channels * 3, channels)
        self.reduction3 = BasicConv2d(channels * 4, channels)
        self.reduction = BasicConv2d(channels * 3, channels)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)
        self.Global_skip = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True)
        )
        self.upsample = OverscaleUpsampler(channels, upscale)
        self.exit1 = _conv(channels, 3, 3)
        if weight_norm:
            apply_weight_norm(self)

    @property
    def upscale(self) -> int:
        return self.config.upscale

    @property
    def scale(self) -> float:
        """Default target scale (the one the weights were trained for)."""
        return self.config.scale

    def forward(self, x: torch.Tensor, scale: float | None = None) -> torch.Tensor:
        scale = self.config.scale if scale is None else check_scale(scale, self.upscale)
        size = target_size(x, scale)
        skip = self.sub_mean(x)
        out = self.reconstruct(self.body_features(skip), size) + resize_bicubic(skip, size)
        return self.add_mean(out)

    def body_features(self, centered: torch.Tensor) -> torch.Tensor:
        """Mean-subtracted LR (NCHW) -> F-channel body features at LR resolution."""
        features = self.entry_1(centered)
        outputs = _dense3(
            features,
            (self.GDG1, self.GDG2, self.GDG3),
            (self.reduction1, self.reduction2, self.reduction3),
        )
        fused = self.reduction(torch.cat(outputs, dim=1))
        return self.res_scale(fused) + self.x_scale(self.Global_skip(features))

    def overscaled_features(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW RGB [0, 1] -> N x F x (H*upscale) x (W*upscale): the features the network
        resizes to the target size before ``exit1`` (what ``--overscale`` graphs output)."""
        return self.upsample.up.body(self.body_features(self.sub_mean(x)))

    def reconstruct(self, body: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Overscale, resize to ``size`` and project to RGB (before the skip and mean)."""
        return self.exit1(self.upsample(body, size))


def weight_norm_convs(model: OverNet) -> list[nn.Conv2d]:
    """The convolutions upstream wraps in weight norm: all but MeanShift, SE, Global_skip."""
    excluded = {
        id(m)
        for part in (model.sub_mean, model.add_mean, model.Global_skip)
        for m in part.modules()
    }
    for module in model.modules():
        if isinstance(module, SE):
            excluded.update(id(m) for m in module.modules())
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in excluded]


def apply_weight_norm(model: OverNet) -> OverNet:
    """Wrap the upstream set of convs in weight norm (dim 0), in place."""
    from torch.nn.utils.parametrizations import weight_norm

    for conv in weight_norm_convs(model):
        if not _is_weight_normed(conv):
            weight_norm(conv, name="weight", dim=0)
    return model


def _is_weight_normed(conv: nn.Module) -> bool:
    return hasattr(conv, "parametrizations") and "weight" in conv.parametrizations
