"""Latency statistics: percentiles with linear interpolation (numpy's default, Hyndman-Fan 7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples``, interpolating linearly between ranks.

    Matches ``numpy.percentile(samples, q)``: rank ``(n - 1) * q / 100`` in the sorted data.
    """
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    data = sorted(float(s) for s in samples)
    rank = (len(data) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


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


def summarize(samples: Sequence[float]) -> LatencyStats:
    """min/median/p90/p99/mean/std/max of ``samples`` (at least one value)."""
    if not samples:
        raise ValueError("no timed runs to summarize")
    values = [float(s) for s in samples]
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return LatencyStats(
        n=n,
        min=min(values),
        median=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        mean=mean,
        std=math.sqrt(var),
        max=max(values),
    )
