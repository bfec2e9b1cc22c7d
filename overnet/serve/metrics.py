"""Service metrics in the Prometheus text format (pure Python: no Ray, no client library).

Each replica counts into a ``Stats`` and hands its deltas (``Stats.take``) to one
``Registry`` (a small Ray Serve deployment), which sums them over replicas and renders
``GET /metrics``. Names start with ``overnet_serve_``:

- ``requests_total{path, status}``: answered requests
- ``errors_total{kind}``: refusals and failures by kind (``limits.STATUS``)
- ``request_seconds``: latency histogram of ``POST /v1/upscale``, server side
- ``batch_tiles``: tiles per inference run (batch fill), histogram
- ``batch_requests``: distinct requests whose tiles shared one run, histogram
- ``queue_tiles``: tiles handed to the batcher and not back yet (waiting or running),
  ``in_flight``: upscale requests being served (gauges, summed over replicas),
  ``replicas``: replicas that reported lately
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PREFIX = "overnet_serve_"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
#: a replica silent for longer is left out of the gauges (stopped or scaled down)
STALE_S = 30.0


@dataclass
class Histogram:
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

    def lines(self, name: str, help_text: str) -> list[str]:
        out = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        running = 0
        for bound, n in zip((*self.buckets, "+Inf"), self.counts, strict=True):
            running += n
            out.append(f'{name}_bucket{{le="{_number(bound)}"}} {running}')
        out += [f"{name}_sum {_number(self.total)}", f"{name}_count {self.count}"]
        return out


def _number(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Stats:
    """One replica's counts since its last ``take``, and its current gauges."""

    def __init__(self) -> None:
        self.queue_tiles = 0
        self.in_flight = 0
        self._reset()

    def _reset(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.errors: Counter[str] = Counter()
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_tiles = Histogram(BATCH_BUCKETS)
        self.batch_requests = Histogram(BATCH_BUCKETS)

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
            "queue_tiles": self.queue_tiles,
            "in_flight": self.in_flight,
        }
        self._reset()
        return state


class Registry:
    """The sum over replicas of what they reported; renders the Prometheus text."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.gauges: dict[str, tuple[float, int, int]] = {}  # replica -> (time, queue, flight)

    def merge(self, replica: str, state: dict[str, Any], now: float) -> None:
        for path, status, n in state["requests"]:
            self.stats.requests[(path, int(status))] += n
        self.stats.errors.update(state["errors"])
        for name in ("latency", "batch_tiles", "batch_requests"):
            getattr(self.stats, name).add(state[name])
        self.gauges[replica] = (now, state["queue_tiles"], state["in_flight"])

    def render(self, now: float) -> str:
        live = [g for g in self.gauges.values() if now - g[0] <= STALE_S]
        s = self.stats
        lines = [
            f"# HELP {PREFIX}requests_total Requests answered, by path and status.",
            f"# TYPE {PREFIX}requests_total counter",
        ]
        lines += [
            f'{PREFIX}requests_total{{path="{p}",status="{code}"}} {n}'
            for (p, code), n in sorted(s.requests.items())
        ]
        lines += [
            f"# HELP {PREFIX}errors_total Refused or failed requests, by kind.",
            f"# TYPE {PREFIX}errors_total counter",
        ]
        lines += [f'{PREFIX}errors_total{{kind="{k}"}} {n}' for k, n in sorted(s.errors.items())]
        lines += s.latency.lines(
            f"{PREFIX}request_seconds", "Server-side latency of POST /v1/upscale."
        )
        lines += s.batch_tiles.lines(f"{PREFIX}batch_tiles", "Tiles per inference run.")
        lines += s.batch_requests.lines(
            f"{PREFIX}batch_requests", "Distinct requests whose tiles shared an inference run."
        )
        for name, index, text in (
            ("queue_tiles", 1, "Tiles handed to the batcher and not back yet."),
            ("in_flight", 2, "Upscale requests being served."),
        ):
            lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} gauge"]
            lines.append(f"{PREFIX}{name} {sum(g[index] for g in live)}")
        lines += [
            f"# HELP {PREFIX}replicas Replicas that reported in the last {STALE_S:g} s.",
            f"# TYPE {PREFIX}replicas gauge",
            f"{PREFIX}replicas {len(live)}",
        ]
        return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (for tests and the load benchmark)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values
