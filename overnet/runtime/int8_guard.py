"""Run-time guard for INT8 models: tiles unlike the calibration images run in float.

An INT8 model's activation ranges are fitted to its calibration images; content far
outside them (noise, synthetic graphics, extreme contrast) clips inside the network and
the output drifts far from fp32. The export records, for one input statistic measured on
each ``tile`` x ``tile`` LR tile, what the calibration crops showed and a threshold
(``overnet.int8_guard``, JSON). At run time every tile of the input is measured; the
image runs in INT8, and each tile above the threshold is run again by the float model
with a ``halo`` of context around it and pasted over the INT8 result (when most of an
image is flagged, the whole image runs in float instead). ``GuardedSession.counts`` says
how many tiles ran in which precision.

Statistics (NCHW float32 RGB [0, 1] input, per tile): ``laplacian`` mean |4-neighbour
Laplacian| (high-frequency energy: noise, dithering), ``gradient`` mean |dx| + |dy|,
``std`` standard deviation, ``saturated`` share of values at 0 or 1. Which one predicts
the INT8 loss best was measured (benchmarks/int8_guard.py, results/int8-guard.txt).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from overnet.errors import InputError
from overnet.runtime.base import Session, as_numpy

METADATA_KEY = "overnet.int8_guard"
DEFAULT_TILE = 64
DEFAULT_HALO = 16
#: when more than this share of an image's tiles is flagged, all of it runs in float
WHOLE_FLOAT_SHARE = 0.5


def _laplacian(x: np.ndarray) -> np.ndarray:
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    lap = 4 * x - p[:, :, :-2, 1:-1] - p[:, :, 2:, 1:-1] - p[:, :, 1:-1, :-2] - p[:, :, 1:-1, 2:]
    return np.abs(lap).mean(axis=1)


def _gradient(x: np.ndarray) -> np.ndarray:
    dx = np.abs(np.diff(x, axis=3, append=x[:, :, :, -1:]))
    dy = np.abs(np.diff(x, axis=2, append=x[:, :, -1:, :]))
    return (dx + dy).mean(axis=1)


def _saturated(x: np.ndarray) -> np.ndarray:
    return ((x <= 1.0 / 255) | (x >= 254.0 / 255)).mean(axis=1).astype(np.float32)


#: statistic name -> per-pixel map (N x H x W) whose tile mean is the statistic
PIXEL_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "laplacian": _laplacian,
    "gradient": _gradient,
    "saturated": _saturated,
}
STATISTICS = (*PIXEL_MAPS, "std")


def tile_grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the tiles covering an image; edge tiles are smaller."""
    return [
        (y, min(y + tile, height), x, min(x + tile, width))
        for y in range(0, height, tile)
        for x in range(0, width, tile)
    ]


def tile_statistics(batch: np.ndarray, statistic: str, tile: int) -> np.ndarray:
    """``statistic`` of each tile: N x tiles, in ``tile_grid`` order (batch NCHW [0, 1])."""
    x = np.asarray(batch, dtype=np.float32)
    return grid_statistics(x, statistic, tile_grid(x.shape[2], x.shape[3], tile))


def grid_statistics(
    x: np.ndarray, statistic: str, grid: list[tuple[int, int, int, int]]
) -> np.ndarray:
    """``statistic`` of each box of ``grid`` (``tile_grid``'s): N x boxes."""
    if statistic not in STATISTICS:
        raise InputError(
            f"guard statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}"
        )
    if statistic == "std":
        return np.array([[x[n, :, a:b, c:d].std() for a, b, c, d in grid] for n in range(len(x))])
    pixel = PIXEL_MAPS[statistic](x)
    return np.array([[pixel[n, a:b, c:d].mean() for a, b, c, d in grid] for n in range(len(x))])


@dataclass(frozen=True)
class GuardSpec:
    """What the export measured on its calibration crops, and the run-time threshold."""

    statistic: str
    threshold: float  # tiles above it run in float
    tile: int = DEFAULT_TILE
    halo: int = DEFAULT_HALO
    #: the calibration crops' quantiles of the statistic: {"p50": .., "p99": .., "max": ..}
    calibrated: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> GuardSpec | None:
        raw = metadata.get(METADATA_KEY)
        if not raw:
            return None
        try:
            spec = cls(**json.loads(raw))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{METADATA_KEY} in the model's metadata is not valid: {exc}") from exc
        if spec.statistic not in STATISTICS or spec.tile < 8 or spec.halo < 0:
            raise InputError(f"{METADATA_KEY} in the model's metadata is not valid: {raw}")
        return spec


def calibrate_guard(
    crops: list[np.ndarray], statistic: str, margin: float, tile: int = DEFAULT_TILE
) -> GuardSpec:
    """A GuardSpec from calibration crops (1x3xhxw each): threshold = ``margin`` x the
    largest value any crop's tile showed."""
    values = np.concatenate([tile_statistics(c, statistic, tile).ravel() for c in crops])
    quantiles = {
        "p50": float(np.quantile(values, 0.5)),
        "p99": float(np.quantile(values, 0.99)),
        "max": float(values.max()),
    }
    return GuardSpec(statistic, quantiles["max"] * margin, tile, DEFAULT_HALO, quantiles)


@dataclass
class GuardCounts:
    """Tiles seen and how many ran in float (per run of the session, accumulated)."""

    tiles: int = 0
    float_tiles: int = 0
    whole_float_images: int = 0
    images: int = 0

    def format(self) -> str:
        share = self.float_tiles / self.tiles if self.tiles else 0.0
        return (
            f"INT8 guard: {self.float_tiles} of {self.tiles} tiles ran in float ({share:.0%}); "
            f"{self.whole_float_images} of {self.images} images wholly in float"
        )


class GuardedSession(Session):
    """An INT8 session whose out-of-range tiles are recomputed by a float session.

    ``open_float`` opens the float model on first need (the INT8 model's float twin).
    """

    def __init__(self, int8: Session, open_float: Callable[[], Session], spec: GuardSpec) -> None:
        self._int8, self._open_float, self._float = int8, open_float, None
        self.spec = spec
        self.counts = GuardCounts()
        self.info = int8.info
        top = spec.calibrated.get("max", 0.0)
        self.info.notes.append(
            f"INT8 guard: {spec.tile}-px tiles with {spec.statistic} above "
            f"{spec.threshold:.4g} run in float (calibration tiles up to {top:.4g})"
        )

    def _float_session(self) -> Session:
        if self._float is None:
            self._float = self._open_float()
        return self._float

    def _run(self, batch: Any) -> np.ndarray:
        x = np.asarray(as_numpy(batch), dtype=np.float32)
        grid = tile_grid(x.shape[2], x.shape[3], self.spec.tile)
        flags = grid_statistics(x, self.spec.statistic, grid) > self.spec.threshold
        self.counts.tiles += flags.size
        self.counts.float_tiles += int(flags.sum())
        self.counts.images += len(x)
        whole = flags.mean(axis=1) > WHOLE_FLOAT_SHARE
        self.counts.whole_float_images += int(whole.sum())
        if not flags.any():
            return self._int8.run(x)
        if whole.all():
            return self._float_session().run(x)
        # one INT8 run for the images that stay INT8, one float run for the rest
        mostly_int8 = np.flatnonzero(~whole)
        int8_out = self._int8.run(x[mostly_int8])
        out = np.empty((len(x), *int8_out.shape[1:]), np.float32)
        out[mostly_int8] = int8_out
        if whole.any():
            out[whole] = self._float_session().run(x[whole])
        scale = out.shape[2] // x.shape[2]
        for n in mostly_int8:
            for index in np.flatnonzero(flags[n]):
                self._patch(x, out, n, grid[index], scale)
        return out

    def _patch(self, x: np.ndarray, out: np.ndarray, n: int, box: tuple, scale: int) -> None:
        """Recompute one tile in float with ``halo`` pixels of context; paste its centre."""
        y0, y1, x0, x1 = box
        h = self.spec.halo
        a, b = max(0, y0 - h), min(x.shape[2], y1 + h)
        c, d = max(0, x0 - h), min(x.shape[3], x1 + h)
        sr = self._float_session().run(np.ascontiguousarray(x[n : n + 1, :, a:b, c:d]))[0]
        out[n, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = sr[
            :, (y0 - a) * scale : (y1 - a) * scale, (x0 - c) * scale : (x1 - c) * scale
        ]

    def release_memory(self) -> None:
        self._int8.release_memory()
        if self._float is not None:
            self._float.release_memory()

    def close(self) -> None:
        self._int8.close()
        if self._float is not None:
            self._float.close()
        super().close()
