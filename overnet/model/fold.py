"""Fold weight norm into plain convolution weights (for export and inference)."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from overnet.model.network import OverNet


def fold_weight_norm(model: OverNet) -> OverNet:
    """Replace every weight-norm parametrization by its computed weight, in place.

    weight = g * v / ||v|| (norm over dims 1..3) is evaluated once, so outputs are
    unchanged; the model then holds plain ``weight`` tensors like the ONNX export.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def is_folded(model: OverNet) -> bool:
    """True when no convolution carries a weight-norm parametrization."""
    return not any(parametrize.is_parametrized(m) for m in model.modules())
