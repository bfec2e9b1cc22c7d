"""The OverNet network in PyTorch (torch only)."""

from overnet.config import OverNetConfig
from overnet.model.complexity import MacCount, count_macs, count_parameters
from overnet.model.fold import fold_weight_norm, is_folded
from overnet.model.network import OverNet, apply_weight_norm, weight_norm_convs

__all__ = [
    "MacCount",
    "OverNet",
    "OverNetConfig",
    "apply_weight_norm",
    "count_macs",
    "count_parameters",
    "fold_weight_norm",
    "is_folded",
    "weight_norm_convs",
]
