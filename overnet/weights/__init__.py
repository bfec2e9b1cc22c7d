"""Load, identify and save OverNet weights (torch + safetensors), and pretrained weights
by name (``overnet.weights.pretrained``: downloads and the cache, no torch).

The names below import their module, and with it torch, on first use: importing
``overnet.weights.pretrained`` (as the torch-free runtime does for ``--model x2``) must
not need torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overnet.weights.api import LoadedWeights, load_model, load_weights, save_weights
    from overnet.weights.reader import RawCheckpoint, read_checkpoint

__all__ = [
    "LoadedWeights",
    "RawCheckpoint",
    "load_model",
    "load_weights",
    "read_checkpoint",
    "save_weights",
]


def __getattr__(name: str) -> Any:
    if name in ("LoadedWeights", "load_model", "load_weights", "save_weights"):
        from overnet.weights import api as module
    elif name in ("RawCheckpoint", "read_checkpoint"):
        from overnet.weights import reader as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
