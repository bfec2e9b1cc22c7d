"""Service metrics, summed over replicas, in the Prometheus text format
(``prometheus_client`` renders them; no Ray here).

Each replica counts into a ``Stats`` and hands its deltas (``Stats.take``) to one
``Registry`` (a small Ray Serve deployment), which sums them over replicas and renders
``GET /metrics`` through a ``prometheus_client`` collector. Names start with
``overnet_serve_``:

- ``requests_total{path, status}``: answered requests
- ``errors_total{kind}``: refusals and failures by kind (``limits.STATUS``)
- ``request_seconds``: latency histogram of ``POST /v1/upscale``, server side
- ``batch_tiles``: tiles per inference run (batch fill), histogram
- ``batch_requests``: distinct requests whose tiles shared one run, histogram
- ``tiles_total``: tiles handed to the batcher; ``cancelled_total``: requests whose
  client went away before the answer
- ``queue_tiles``: tiles handed to the batcher and not back yet (waiting or running),
  ``in_flight``: upscale requests whose work has not ended, ``memory_bytes``: the
  replicas' memory budgets held by them (gauges, summed over replicas),
  ``replicas``: replicas that reported lately
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

PREFIX = "overnet_serve_"
#: the text format prometheus_client's generate_latest writes
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
#: a replica silent for longer is left out of the gauges (stopped or scaled down)
STALE_S = 30.0
#: gauges a replica reports: name -> help text
GAUGES = {
    "queue_tiles": "Tiles handed to the batcher and not back yet.",
    "in_flight": "Upscale requests whose work has not ended.",
    "memory_bytes": "Bytes of the replicas' memory budgets held by requests.",
}


@dataclass
class Histogram:
    """Bucket counts that add up over replicas (prometheus_client's own histograms
    only observe; their sums over processes need this)."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, plus +Inf last
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def add(self, other: dict[str, Any]) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other["counts"], strict=True)]
        self.total += other["total"]
        self.count += other["count"]

    def state(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "total": self.total, "count": self.count}

    def family(self, name: str, help_text: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, help_text)
        running, buckets = 0, []
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            buckets.append((_bound(bound), running))
        family.add_metric([], buckets, self.total)
        return family


def _bound(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Stats:
    """One replica's counts since its last ``take``, and its current gauges."""

    def __init__(self) -> None:
        self.queue_tiles = 0
        self.in_flight = 0
        self.memory_bytes = 0
        self._reset()

    def _reset(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[str] = Counter()
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_tiles = Histogram(BATCH_BUCKETS)
        self.batch_requests = Histogram(BATCH_BUCKETS)
        self.tiles = 0
        self.cancelled = 0

    def request(self, path: str, status: int, kind: str | None, seconds: float | None) -> None:
        self.requests[(path, status)] += 1
        if kind is not None:
            self.errors[kind] += 1
        if seconds is not None:
            self.latency.observe(seconds)

    def batch(self, tiles: int, requests: int) -> None:
        self.batch_tiles.observe(tiles)
        self.batch_requests.observe(requests)

    def take(self) -> dict[str, Any]:
        """The deltas since the last call (then zeroed) and the gauges now."""
        state = {
            "requests": [[p, s, n] for (p, s), n in self.requests.items()],
            "errors": dict(self.errors),
            "latency": self.latency.state(),
            "batch_tiles": self.batch_tiles.state(),
            "batch_requests": self.batch_requests.state(),
            "tiles": self.tiles,
            "cancelled": self.cancelled,
            **{name: getattr(self, name) for name in GAUGES},
        }
        self._reset()
        return state


class Registry:
    """The sum over replicas of what they reported; renders the Prometheus text."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.gauges: dict[str, tuple[float, dict[str, float]]] = {}  # replica -> (time, values)
        self._now = 0.0
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)  # type: ignore[arg-type]  # a custom collector

    def merge(self, replica: str, state: dict[str, Any], now: float) -> None:
        for path, status, n in state["requests"]:
            self.stats.requests[(path, int(status))] += n
        self.stats.errors.update(state["errors"])
        for name in ("latency", "batch_tiles", "batch_requests"):
            getattr(self.stats, name).add(state[name])
        self.stats.tiles += state.get("tiles", 0)
        self.stats.cancelled += state.get("cancelled", 0)
        self.gauges[replica] = (now, {name: state.get(name, 0) for name in GAUGES})

    def render(self, now: float) -> str:
        self._now = now
        return generate_latest(self._registry).decode("utf-8")

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: the families as of ``render``."""
        s = self.stats
        requests = CounterMetricFamily(
            f"{PREFIX}requests", "Requests answered, by path and status.", labels=["path", "status"]
        )
        for (path, code), n in sorted(s.requests.items()):
            requests.add_metric([path, str(code)], n)
        yield requests
        errors = CounterMetricFamily(
            f"{PREFIX}errors", "Refused or failed requests, by kind.", labels=["kind"]
        )
        for kind, n in sorted(s.errors.items()):
            errors.add_metric([kind], n)
        yield errors
        yield CounterMetricFamily(f"{PREFIX}tiles", "Tiles handed to the batcher.", s.tiles)
        yield CounterMetricFamily(
            f"{PREFIX}cancelled", "Requests whose client went away first.", s.cancelled
        )
        yield s.latency.family(f"{PREFIX}request_seconds", "Server-side latency of upscales.")
        yield s.batch_tiles.family(f"{PREFIX}batch_tiles", "Tiles per inference run.")
        yield s.batch_requests.family(
            f"{PREFIX}batch_requests", "Distinct requests whose tiles shared an inference run."
        )
        live = [values for when, values in self.gauges.values() if self._now - when <= STALE_S]
        for name, text in GAUGES.items():
            yield GaugeMetricFamily(f"{PREFIX}{name}", text, sum(v[name] for v in live))
        yield GaugeMetricFamily(
            f"{PREFIX}replicas", f"Replicas that reported in the last {STALE_S:g} s.", len(live)
        )


def parse(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (for tests and the load benchmark)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values
