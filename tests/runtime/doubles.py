"""Sessions of our own interface with exactly known outputs (no model needed)."""

from __future__ import annotations

import numpy as np

from overnet.runtime.base import Session, SessionInfo


class NearestSession(Session):
    """Nearest-neighbour x``scale`` upscaling: a local operator, so tiling must not change it.

    Records the input shapes it ran, for checks on batching and tile sizes.
    """

    def __init__(self, scale: int = 2, *, min_hw=(1, 1), max_hw=None, max_batch=None) -> None:
        self.info = SessionInfo(
            backend="nearest",
            device="CPU",
            precision="fp32",
            scale=scale,
            upscale=scale,
            min_hw=min_hw,
            max_hw=max_hw,
            max_batch=max_batch,
        )
        self.shapes: list[tuple[int, ...]] = []

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        s = int(self.info.scale)
        return batch.repeat(s, axis=2).repeat(s, axis=3)
