"""The dense blocks without concatenations: an exact rewrite of the folded graph.

OverNet's dense pattern feeds each 1x1 reduction the concatenation of every earlier part
(``relu(W_k @ cat(x_0..x_k) + b_k)``). A 1x1 convolution over a concatenation is the sum
of 1x1 convolutions over its parts, ``sum_j W_k[:, part j] @ x_j``; and part ``j`` meets
every later reduction, so its products with all of them are one convolution with their
weights stacked (64 -> 64 x (reductions left)), split afterwards. Same multiply-adds, no
Concat node (OpenVINO's CPU plugin runs the dense Concats with its reference kernel).

``ConcatFreeGraph(InferenceGraph(...))`` computes the same function up to float rounding;
``overnet export --concat-free`` exports it (``export_onnx(concat_free=True)``), validated
against the PyTorch model like every export.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from overnet.model.graph import InferenceGraph
from overnet.model.network import resize_bicubic, target_size


class _SplitReductions(nn.Module):
    """The reductions of one dense pattern, regrouped by input part.

    ``reductions[k]`` reads parts 0..k+1 (part 0 the pattern's input); ``final`` (the
    body's fusion over the three outputs) is optional. ``products[j]`` is part j's stacked
    convolution with every reduction that reads it.
    """

    def __init__(self, reductions: list[nn.Conv2d], channels: int) -> None:
        super().__init__()
        self.channels = channels
        count = len(reductions)
        self.readers: list[list[int]] = []  # per part: which reductions read it
        products = []
        for part in range(count + 1):
            readers = [k for k in range(count) if k + 1 >= part]
            weight = torch.cat(
                [reductions[k].weight[:, part * channels : (part + 1) * channels] for k in readers]
            )
            conv = nn.Conv2d(channels, weight.shape[0], 1, bias=part == 0)
            conv.weight = nn.Parameter(weight.detach().clone())
            if part == 0:  # the biases ride on the first part's products
                conv.bias = nn.Parameter(torch.cat([reductions[k].bias for k in readers]).detach())
            products.append(conv)
            self.readers.append(readers)
        self.products = nn.ModuleList(products)

    def part(self, index: int, x: torch.Tensor) -> list[torch.Tensor]:
        """Part ``index``'s contributions, one per reduction that reads it."""
        return list(torch.split(self.products[index](x), self.channels, dim=1))


def _dense3_split(x: torch.Tensor, blocks, split: _SplitReductions) -> list[torch.Tensor]:
    """``overnet.model.network._dense3`` without concatenation."""
    pending = split.part(0, x)  # reduction k's running sum, k = 0..2
    outputs, current = [], x
    for k, block in enumerate(blocks):
        contributions = split.part(k + 1, block(current))
        # this part feeds reductions k..2: the first contribution completes reduction k
        pending = pending[:k] + [p + c for p, c in zip(pending[k:], contributions, strict=True)]
        current = F.relu(pending[k])
        outputs.append(current)
    return outputs


class _ConcatFreeGroup(nn.Module):
    def __init__(self, group: nn.Module, channels: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([group.RB1, group.RB2, group.RB3])
        convs = [group.reduction1.conv, group.reduction2.conv, group.reduction3.conv]
        self.split = _SplitReductions(convs, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _dense3_split(x, self.blocks, self.split)[-1]


class ConcatFreeGraph(nn.Module):
    """``InferenceGraph`` (RGB output at its scale) with the dense concatenations replaced
    by split 1x1 products: NCHW float32 RGB [0, 1] ``lr`` -> ``sr``."""

    def __init__(self, graph: InferenceGraph) -> None:
        super().__init__()
        if graph.overscale:
            raise ValueError("the concat-free rewrite covers RGB graphs, not --overscale ones")
        net = graph.net
        channels = net.config.channels
        self.scale = graph.scale
        self.register_buffer("mean", graph.mean.clone())
        self.entry = net.entry_1
        self.groups = nn.ModuleList(
            [_ConcatFreeGroup(g, channels) for g in (net.GDG1, net.GDG2, net.GDG3)]
        )
        convs = [net.reduction1.conv, net.reduction2.conv, net.reduction3.conv]
        self.split = _SplitReductions(convs, channels)
        # the fusion over cat(out1, out2, out3): three products summed
        fusion = net.reduction.conv
        self.fusion = nn.ModuleList()
        for part in range(3):
            conv = nn.Conv2d(channels, channels, 1, bias=part == 0)
            conv.weight = nn.Parameter(
                fusion.weight[:, part * channels : (part + 1) * channels].detach().clone()
            )
            if part == 0:
                conv.bias = nn.Parameter(fusion.bias.detach().clone())
            self.fusion.append(conv)
        self.res_scale, self.x_scale, self.global_skip = net.res_scale, net.x_scale, net.Global_skip
        self.upsample, self.exit = net.upsample, net.exit1  # the reconstruction, as it is

    def body_features(self, centered: torch.Tensor) -> torch.Tensor:
        features = self.entry(centered)
        outputs = _dense3_split(features, self.groups, self.split)
        fused = F.relu(sum(conv(o) for conv, o in zip(self.fusion, outputs, strict=True)))
        return self.res_scale(fused) + self.x_scale(self.global_skip(features))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        size = target_size(lr, self.scale)
        body = self.body_features(lr - self.mean)
        return self.exit(self.upsample(body, size)) + resize_bicubic(lr, size)
