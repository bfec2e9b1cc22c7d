"""Training errors: each says what was expected, what arrived and what to do."""

from __future__ import annotations

from overnet.errors import InputError, OverNetError, WeightsError


class TrainError(OverNetError):
    """Base class of every problem ``overnet train`` reports to the user."""


class TrainDataError(TrainError, InputError):
    """The training or validation images cannot be used (empty, too small, mismatched)."""


class InitWeightsError(TrainError, WeightsError):
    """``--init`` is not a checkpoint or does not fit the network this run trains."""


class CheckpointError(TrainError):
    """A run folder or training checkpoint cannot be written, read or resumed."""
