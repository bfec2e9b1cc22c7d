"""One replica of the upscale service, without Ray: its models, admission by memory,
deadlines, cancellation and the bridge from request threads to the tile batcher.

A request is decoded, upscaled and encoded in a worker thread (``images.process``), so
the replica's event loop stays free to admit requests and to form batches. Each group of
tiles the Upscaler would run is handed to the event loop, every tile is submitted to the
batcher (``submit``: Ray Serve's ``@serve.batch`` method in ``app.py``) with the graph it
runs on, and the thread waits for the outputs. ``run_batch`` runs the tiles of one
batch, whichever requests and scales they came from, with one run per graph and tile
shape (every tile of an image at least a tile in size has the tile's shape) on a single
inference thread, never more tiles per run than the graph takes.

Admission: a request holds its body's bytes of the replica's memory budget
(``--max-memory``) from the start, then its whole estimate once its header is planned;
what does not fit waits up to ``memory_wait_s`` (503 after). A request given up (its
client went away, its deadline passed, the replica is stopping) stops at its next tile
group, gives its memory back and its thread ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np

from overnet.errors import InputError
from overnet.jobs.budget import MemoryBudget
from overnet.runtime.memory import trim_heap_soon
from overnet.serve.config import ServiceConfig
from overnet.serve.images import Encoded, process
from overnet.serve.limits import Cancelled, Expired, ServeError, parse_params
from overnet.serve.metrics import Stats
from overnet.serve.models import Models, Route
from overnet.units import parse_memory

log = logging.getLogger(__name__)

Submit = Callable[[np.ndarray, str, str], Awaitable[np.ndarray]]
#: side of the warm-up image (whole, untiled: the first real request's shapes vary)
WARM_UP_SIDE = 64


def run_grouped(
    run: Callable[[str, np.ndarray], np.ndarray],
    tiles: list[np.ndarray],
    graphs: list[str] | None = None,
    max_batch: Callable[[str], int | None] = lambda graph: None,
) -> list:
    """Outputs of ``tiles`` in order, with one ``run(graph, batch)`` per graph and tile
    shape, each batch at most ``max_batch(graph)`` tiles."""
    keys = graphs or [""] * len(tiles)
    groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
    for i, (graph, tile) in enumerate(zip(keys, tiles, strict=True)):
        groups.setdefault((graph, tile.shape), []).append(i)
    outputs: list[Any] = [None] * len(tiles)
    for (graph, _), members in groups.items():
        step = max_batch(graph) or len(members)
        for start in range(0, len(members), step):
            chunk = members[start : start + step]
            result = run(graph, np.stack([tiles[i] for i in chunk]))
            for i, out in zip(chunk, result, strict=True):
                outputs[i] = out
    return outputs


class Replica:
    """What one replica serves; ``Replica.open`` loads and warms it up."""

    def __init__(self, config: ServiceConfig, models: Models) -> None:
        self.config = config
        self.models = models
        #: requests are admitted by their memory estimates, summed, within this budget
        self.budget = MemoryBudget(parse_memory(config.max_memory))
        self.stats = Stats()
        self.ready = False
        self.recent_s = 1.0  # smoothed request latency, for Retry-After
        self._cancels: set[threading.Event] = set()
        #: requests in flight per graph key (a graph unused again frees its buffers)
        self._graph_users: dict[str, int] = {}
        self._lock = threading.Lock()
        self._inference = concurrent.futures.ThreadPoolExecutor(1, "overnet-infer")
        self._requests = concurrent.futures.ThreadPoolExecutor(
            config.limits.max_queue, "overnet-request"
        )

    @classmethod
    def open(cls, config: ServiceConfig) -> Replica:
        models = Models(config)
        try:
            replica = cls(config, models)
            replica.warm_up()
        except BaseException:
            models.close()
            raise
        return replica

    @property
    def max_batch(self) -> int:
        """Tiles per batcher call: ``--max-batch``, at most what every graph takes."""
        limit = self.models.max_batch
        return min(self.config.max_batch, limit) if limit else self.config.max_batch

    def warm_up(self) -> None:
        """One small inference on every graph; the replica reports ready only after."""
        for served in self.models.models:
            for graph in served.graphs.values():
                route = served.route(served.scale if graph.key == served.name else 1.5)
                info = route.upscaler.session.info
                side = min(WARM_UP_SIDE, *(info.max_hw or (WARM_UP_SIDE,)))
                side = max(side, *info.min_hw)
                route.upscaler.upscale_array(np.zeros((1, 3, side, side), np.float32))
        self.ready = True

    def close(self, wait_s: float = 30.0) -> None:
        """Stop: requests still running are given up (each stops at its next tile
        group), then the sessions close once no inference runs on them."""
        self.ready = False
        with self._lock:
            for cancel in self._cancels:
                cancel.set()
        self.budget.close()  # wakes requests waiting for memory
        deadline = time.monotonic() + wait_s
        while self.stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        self._requests.shutdown(wait=False, cancel_futures=True)
        self._inference.shutdown(wait=True, cancel_futures=True)
        self.models.close()

    # -- answers ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The body of ``GET /v1/models``."""
        config, limits = self.config, self.config.limits
        return {
            "models": self.models.describe(),
            "max_scale": self.models.max_scale,
            "default_scale": self.models.default_scale,
            "tile": config.tile or "auto",
            "overlap": config.overlap,
            "max_batch": self.max_batch,
            "max_wait_ms": config.max_wait_ms,
            "max_memory_bytes": self.budget.total,
            "limits": {
                "max_body_bytes": limits.max_body_bytes,
                "max_pixels": limits.max_pixels,
                "timeout_s": limits.timeout_s,
                "max_queue": limits.max_queue,
                "memory_wait_s": limits.memory_wait_s,
            },
        }

    def headers(self, route: Route, encoded: Encoded, seconds: float) -> dict[str, str]:
        info = route.upscaler.session.info
        return {
            "X-OverNet-Model": route.model.name,
            "X-OverNet-Backend": info.backend,
            "X-OverNet-Precision": info.precision,
            "X-OverNet-Scale": f"{route.scale:g}",
            "X-OverNet-Size": f"{encoded.width}x{encoded.height}",
            "X-OverNet-Tiles": str(encoded.tiles),
            "X-OverNet-Seconds": f"{seconds:.4f}",
            "Server-Timing": f"upscale;dur={seconds * 1e3:.1f}",
        }

    def take_stats(self) -> dict[str, Any]:
        """The metrics' deltas and gauges (``Stats.take``) with the memory held now."""
        self.stats.memory_bytes = self.budget.held
        return self.stats.take()

    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.recent_s)))

    # -- requests --------------------------------------------------------------------
    def admit(self) -> None:
        """Count one more upscale request, or refuse it (503, Retry-After)."""
        if not self.ready:
            raise ServeError("not_ready", "the replica is not ready", {"Retry-After": "1"})
        with self._lock:
            if self.stats.in_flight >= self.config.limits.max_queue:
                raise ServeError(
                    "queue_full",
                    f"this replica already holds {self.config.limits.max_queue} requests; "
                    f"retry in {self.retry_after()} s",
                    {"Retry-After": self.retry_after()},
                )
            self.stats.in_flight += 1

    def release(self, seconds: float | None = None) -> None:
        """Count a request out (its work ended, or it never started)."""
        with self._lock:
            self.stats.in_flight -= 1
        if seconds is not None:
            self.recent_s = 0.8 * self.recent_s + 0.2 * seconds

    def _graph_in(self, graph: str) -> None:
        with self._lock:
            self._graph_users[graph] = self._graph_users.get(graph, 0) + 1

    def _graph_out(self, graph: str) -> None:
        """The last request of a graph out has that graph give back its kept buffers:
        OpenVINO holds each graph's at the largest image it ran, which the budget
        (counting the requests in flight, each by its own graph) cannot see."""
        with self._lock:
            self._graph_users[graph] -= 1
            unused = self._graph_users[graph] == 0
        if unused:
            # on the inference thread, so never during a run; a tile arriving meanwhile
            # waits for it (milliseconds) and allocates again
            with contextlib.suppress(RuntimeError):  # closing: its sessions close anyway
                self._inference.submit(self._release_memory, graph)

    def _release_memory(self, graph: str) -> None:
        with self._lock:
            if self._graph_users.get(graph):  # a request of this graph came in meanwhile
                return
        try:
            self.models.release_memory(graph)
            trim_heap_soon()
        except Exception:  # a cache the runtime could not free is no reason to fail
            log.warning("overnet serve: could not release %s's memory", graph, exc_info=True)

    async def upscale(
        self, body: bytes, query: Mapping[str, str], submit: Submit
    ) -> tuple[Route, Encoded]:
        """Route, decode, tile, batch, blend, encode; ServeError for every refusal (504
        when the deadline passes). An admitted request (``admit``) is counted out when
        its thread ends, after it gave its memory back; a cancelled caller (the client
        went away) makes that thread stop at its next tile group."""
        try:
            params = parse_params(query, self.config.limits)
            route = self.models.route(params.scale, params.model)
        except BaseException:
            self.release(None)
            raise
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + params.timeout_s
        owner, graph = uuid.uuid4().hex, route.graph.key
        cancel = threading.Event()

        def run(batch: np.ndarray) -> np.ndarray:
            if cancel.is_set():
                raise Cancelled
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Expired
            self.stats.tiles += len(batch)
            future = asyncio.run_coroutine_threadsafe(
                self._gather(batch, owner, graph, submit), loop
            )
            try:
                return future.result(remaining)
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise Expired from None
            except concurrent.futures.CancelledError:
                raise Cancelled from None
            except InputError as exc:  # the model refused these tiles (a profile's limits)
                raise ServeError(
                    "unprocessable", f"the model cannot run this image: {exc}"
                ) from None

        started = time.monotonic()

        def work() -> Encoded:
            if not self.budget.take(len(body), timeout=0):
                raise ServeError(
                    "busy",
                    f"this replica's memory ({self.budget.total / 1e6:.0f} MB) is taken by "
                    f"requests in flight; retry in {self.retry_after()} s",
                    {"Retry-After": self.retry_after()},
                )
            try:
                return process(
                    body, params, self.config.limits, route.upscaler, run, self.budget,
                    min(self.config.limits.memory_wait_s, params.timeout_s), cancel,
                    prepaid=len(body),
                )  # fmt: skip
            finally:
                self.budget.give_back(len(body))

        with self._lock:
            self._cancels.add(cancel)
        self._graph_in(graph)
        try:
            submitted = self._requests.submit(work)
        except RuntimeError:  # shut down: the replica is stopping
            self._forget(cancel)
            self._graph_out(graph)
            self.release(None)
            raise ServeError("not_ready", "the replica is stopping", {"Retry-After": "1"}) from None

        def ended(_: concurrent.futures.Future) -> None:  # ran, failed or never started
            self._forget(cancel)
            self._graph_out(graph)
            self.release(time.monotonic() - started)

        submitted.add_done_callback(ended)
        try:
            return route, await asyncio.wait_for(asyncio.wrap_future(submitted), params.timeout_s)
        except (asyncio.TimeoutError, Expired):
            cancel.set()
            raise ServeError(
                "timeout", f"not done within the request's {params.timeout_s:g} s timeout"
            ) from None
        except Cancelled:
            raise ServeError("not_ready", "the replica is stopping", {"Retry-After": "1"}) from None
        except asyncio.CancelledError:  # the client went away: stop computing for it
            cancel.set()
            self.stats.cancelled += 1
            raise

    def _forget(self, cancel: threading.Event) -> None:
        with self._lock:
            self._cancels.discard(cancel)

    async def _gather(
        self, batch: np.ndarray, owner: str, graph: str, submit: Submit
    ) -> np.ndarray:
        self.stats.queue_tiles += len(batch)
        try:
            outputs = await asyncio.gather(*(submit(tile, owner, graph) for tile in batch))
        finally:  # back, failed, or cancelled at the deadline (the batcher then drops them)
            self.stats.queue_tiles -= len(batch)
        return np.stack(outputs)

    async def run_batch(
        self, tiles: list[np.ndarray], owners: list[str], graphs: list[str]
    ) -> list[np.ndarray]:
        """One batch of the batcher: tiles of any requests and graphs, run on the
        inference thread."""
        self.stats.batch(len(tiles), len(set(owners)))
        loop = asyncio.get_running_loop()
        table = self.models.graphs
        return await loop.run_in_executor(
            self._inference,
            run_grouped,
            lambda key, batch: table[key].run(batch),
            tiles,
            graphs,
            lambda key: table[key].max_batch,
        )
