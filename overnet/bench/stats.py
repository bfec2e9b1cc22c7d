"""Latency statistics: numpy's percentiles (linear interpolation, Hyndman-Fan 7).

A NaN sample (a timing that failed) makes every statistic NaN rather than being sorted
into some rank and hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def _values(samples: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(samples, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(what)
    return values


def percentile(samples: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples``: ``numpy.percentile(samples, q)``."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    return float(np.percentile(_values(samples, "percentile of an empty sample"), q))


@dataclass(frozen=True)
class LatencyStats:
    """Summary of timed runs, in seconds. ``std`` is the sample standard deviation (n - 1)."""

    n: int
    min: float
    median: float
    p90: float
    p99: float
    mean: float
    std: float
    max: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(samples: Sequence[float] | np.ndarray) -> LatencyStats:
    """min/median/p90/p99/mean/std/max of ``samples`` (at least one value)."""
    values = _values(samples, "no timed runs to summarize")
    median, p90, p99 = (float(v) for v in np.percentile(values, [50, 90, 99]))
    return LatencyStats(
        n=int(values.size),
        min=float(np.min(values)),
        median=median,
        p90=p90,
        p99=p99,
        mean=float(np.mean(values)),
        std=float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
        max=float(np.max(values)),
    )
