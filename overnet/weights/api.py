"""Load any OverNet checkpoint form into the network, by path or pretrained name, and
save the project's format."""

from __future__ import annotations

from pathlib import Path

import torch

from overnet.model import OverNet
from overnet.weights.checkpoint import LoadedWeights, read_weights, save_weights
from overnet.weights.pretrained import resolve

__all__ = ["LoadedWeights", "load_model", "load_weights", "save_weights"]


def load_weights(path: str | Path, scale: float | None = None) -> LoadedWeights:
    """Read and identify a checkpoint: upstream dict, bare/prefixed/parametrized state
    dict, folded weights or the project's .safetensors. ``scale`` overrides the default.
    A pretrained name (``"x2"``, ``"x3"``) is fetched once and read from the cache."""
    return read_weights(resolve(path), scale)


def load_model(
    path: str | Path,
    scale: float | None = None,
    *,
    fold: bool = True,
    device: str | torch.device = "cpu",
) -> OverNet:
    """Load ``path`` into an eval-mode OverNet on ``device``; weight norm folded by default."""
    return load_weights(path, scale).build(fold=fold).to(device)
