"""Load, identify and save OverNet weights (torch + safetensors)."""

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
