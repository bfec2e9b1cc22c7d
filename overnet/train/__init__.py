"""Training: the paper's recipe (L1, AdamP, step decay, clipping), multi-scale, resumable,
data-parallel under torchrun. Imports torch; the CLI imports this lazily."""

from overnet.train.config import FINETUNE_LR, RECIPE_LR, TrainConfig
from overnet.train.errors import CheckpointError, InitWeightsError, TrainDataError, TrainError
from overnet.train.optim import AdamP
from overnet.train.trainer import TrainResult, train

__all__ = [
    "FINETUNE_LR",
    "RECIPE_LR",
    "AdamP",
    "CheckpointError",
    "InitWeightsError",
    "TrainConfig",
    "TrainDataError",
    "TrainError",
    "TrainResult",
    "train",
]
