"""One replica of the upscale service, without Ray: a session, the Upscaler's tiling,
admission, deadlines and the bridge from request threads to the tile batcher.

A request is decoded, upscaled and encoded in a worker thread (``images.process``), so
the replica's event loop stays free to admit requests and to form batches. Each group of
tiles the Upscaler would run is handed to the event loop, every tile is submitted to the
batcher (``submit``: Ray Serve's ``@serve.batch`` method in ``app.py``), and the thread
waits for the outputs. ``run_batch`` runs the tiles of one batch, whichever requests
they came from, with one ``session.run`` per tile shape (one run: every tile of an
image at least a tile in size has the tile's shape) on a single inference thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np

from overnet.jobs.budget import MemoryBudget
from overnet.runtime import Session, Upscaler, open_session
from overnet.serve.config import ServiceConfig
from overnet.serve.images import Encoded, process
from overnet.serve.limits import Expired, ServeError, parse_params
from overnet.serve.metrics import Stats

Submit = Callable[[np.ndarray, str], Awaitable[np.ndarray]]
#: side of the warm-up image (whole, untiled: the first real request's shapes vary)
WARM_UP_SIDE = 64


def open_replica_session(config: ServiceConfig) -> Session:
    return open_session(
        config.model,
        config.backend,
        device=config.device,
        precision=config.precision,
        scale=config.scale,
        threads=config.threads,
    )


def run_grouped(run: Callable[[np.ndarray], np.ndarray], tiles: list[np.ndarray]) -> list:
    """Outputs of ``tiles`` in order, with one ``run`` per distinct tile shape."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, tile in enumerate(tiles):
        groups.setdefault(tile.shape, []).append(i)
    outputs: list[Any] = [None] * len(tiles)
    for members in groups.values():
        result = run(np.stack([tiles[i] for i in members]))
        for i, out in zip(members, result, strict=True):
            outputs[i] = out
    return outputs


class Replica:
    """What one replica serves; ``Replica.open`` loads and warms it up."""

    def __init__(self, config: ServiceConfig, session: Session) -> None:
        self.config = config
        self.session = session
        # The tile plan is `overnet upscale`'s for the same options (tile, overlap,
        # max_memory): it does not depend on the batch, so the answer is the command's
        # output, whatever other requests share a batch.
        self.upscaler = Upscaler(
            session,
            tile=config.tile,
            overlap=config.overlap,
            max_memory=config.max_memory,
            batch=config.max_batch,
        )
        self.upscaler.check_tile()
        self.tile = config.tile
        #: requests are admitted by their memory estimate too, not by count alone
        self.budget = MemoryBudget(self.upscaler.max_memory)
        self.stats = Stats()
        self.ready = False
        self.recent_s = 1.0  # smoothed request latency, for Retry-After
        self._inference = concurrent.futures.ThreadPoolExecutor(1, "overnet-infer")
        self._requests = concurrent.futures.ThreadPoolExecutor(
            config.limits.max_queue, "overnet-request"
        )

    @classmethod
    def open(cls, config: ServiceConfig) -> Replica:
        session = open_replica_session(config)
        replica = cls(config, session)
        replica.warm_up()
        return replica

    def warm_up(self) -> None:
        """One small inference; the replica reports ready only after it."""
        side = min(WARM_UP_SIDE, *(self.session.info.max_hw or (WARM_UP_SIDE,)))
        self.upscaler.upscale_array(np.zeros((1, 3, side, side), np.float32))
        self.ready = True

    def close(self) -> None:
        self.ready = False
        self.budget.close()  # wakes requests waiting for memory
        self._requests.shutdown(wait=False, cancel_futures=True)
        self._inference.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    # -- answers ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The entry of ``GET /v1/models``."""
        info, config = self.session.info, self.config
        limits = config.limits
        return {
            "name": config.model_name,
            "scale": info.scale,
            "upscale": info.upscale,
            "backend": info.backend,
            "device": info.device,
            "precision": info.precision,
            "tile": self.tile or "auto",
            "overlap": config.overlap,
            "max_batch": config.max_batch,
            "max_wait_ms": config.max_wait_ms,
            "limits": {
                "max_body_bytes": limits.max_body_bytes,
                "max_pixels": limits.max_pixels,
                "timeout_s": limits.timeout_s,
                "max_queue": limits.max_queue,
            },
        }

    def headers(self, encoded: Encoded, seconds: float) -> dict[str, str]:
        info = self.session.info
        return {
            "X-OverNet-Model": self.config.model_name,
            "X-OverNet-Backend": info.backend,
            "X-OverNet-Precision": info.precision,
            "X-OverNet-Scale": f"{info.scale:g}",
            "X-OverNet-Size": f"{encoded.width}x{encoded.height}",
            "X-OverNet-Tiles": str(encoded.tiles),
            "X-OverNet-Seconds": f"{seconds:.4f}",
            "Server-Timing": f"upscale;dur={seconds * 1e3:.1f}",
        }

    # -- requests --------------------------------------------------------------------
    def admit(self) -> None:
        """Count one more upscale request in flight, or refuse it (503, Retry-After)."""
        if not self.ready:
            raise ServeError("not_ready", "the replica is not ready", {"Retry-After": "1"})
        if self.stats.in_flight >= self.config.limits.max_queue:
            wait = max(1, math.ceil(self.recent_s))
            raise ServeError(
                "queue_full",
                f"this replica already holds {self.config.limits.max_queue} requests; retry "
                f"in {wait} s",
                {"Retry-After": str(wait)},
            )
        self.stats.in_flight += 1

    def release(self, seconds: float) -> None:
        self.stats.in_flight -= 1
        self.recent_s = 0.8 * self.recent_s + 0.2 * seconds

    async def upscale(self, body: bytes, query: Mapping[str, str], submit: Submit) -> Encoded:
        """Decode, tile, batch, blend, encode; ServeError for every refusal (504 when the
        deadline passes: the worker thread stops at its next tile group)."""
        params = parse_params(query, self.session.info.scale, self.config.limits)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + params.timeout_s
        owner = uuid.uuid4().hex

        def run(batch: np.ndarray) -> np.ndarray:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Expired
            future = asyncio.run_coroutine_threadsafe(self._gather(batch, owner, submit), loop)
            try:
                return future.result(remaining)
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise Expired from None

        limits, upscaler = self.config.limits, self.upscaler
        # a request waits for memory (as for tiles) until its deadline: requests queue
        # behind the ones in flight instead of being turned away
        work = loop.run_in_executor(
            self._requests, process, body, params, limits, upscaler, run, self.budget,
            params.timeout_s,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(work, params.timeout_s)
        except (asyncio.TimeoutError, Expired):
            raise ServeError(
                "timeout", f"not done within the request's {params.timeout_s:g} s timeout"
            ) from None

    async def _gather(self, batch: np.ndarray, owner: str, submit: Submit) -> np.ndarray:
        self.stats.queue_tiles += len(batch)
        try:
            outputs = await asyncio.gather(*(submit(tile, owner) for tile in batch))
        finally:  # back, failed, or cancelled at the deadline (the batcher then drops them)
            self.stats.queue_tiles -= len(batch)
        return np.stack(outputs)

    async def run_batch(self, tiles: list[np.ndarray], owners: list[str]) -> list[np.ndarray]:
        """One batch of the batcher: tiles of any requests, run on the inference thread."""
        self.stats.batch(len(tiles), len(set(owners)))
        loop = asyncio.get_running_loop()
        # an overscale session's tiles run to its features (the Upscaler finishes them)
        run = getattr(self.session, "run_features", self.session.run)
        return await loop.run_in_executor(self._inference, run_grouped, run, tiles)
