"""The Ray Serve application of `overnet serve`: HTTP routes, the tile batcher, metrics.

Two deployments: ``UpscaleService`` (the replicas: one session each, see
``replica.py``) and ``MetricsStore`` (one replica, no CPU: sums what the replicas report
each second and renders ``GET /metrics``). Routes:

- ``POST /v1/upscale``: body = an image file; query ``scale``, ``format``, ``quality``,
  ``timeout``; answers the image, with ``X-OverNet-*`` headers and ``Server-Timing``
- ``GET /v1/models``, ``GET /healthz`` (no token needed), ``GET /metrics``

Every refusal is JSON ``{"error": {"status", "kind", "message"}}`` (``limits.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from overnet.errors import OverNetError
from overnet.serve.auth import OPEN_PATHS, authorized
from overnet.serve.config import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, ServiceConfig
from overnet.serve.limits import ServeError, body_too_large, check_length
from overnet.serve.metrics import Registry
from overnet.serve.replica import Replica
from overnet.serve.webpage import PATHS as PAGE_PATHS
from overnet.serve.webpage import asset as page_asset

APP_NAME = "overnet"
#: seconds between a replica's metric reports
FLUSH_S = 1.0
ROUTES = {
    "/v1/upscale": "POST",
    "/v1/models": "GET",
    "/healthz": "GET",
    "/metrics": "GET",
    **dict.fromkeys(PAGE_PATHS, "GET"),  # the web page at / (webpage.py)
}
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger("ray.serve")


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
class MetricsStore:
    def __init__(self) -> None:
        self.registry = Registry()

    def merge(self, replica: str, state: dict[str, Any]) -> None:
        self.registry.merge(replica, state, time.monotonic())

    def render(self) -> str:
        return self.registry.render(time.monotonic())


@serve.deployment
class UpscaleService:
    def __init__(self, config: ServiceConfig, metrics: Any) -> None:
        self.replica = Replica.open(config)
        self.config = config
        self.metrics = metrics
        self.name = uuid.uuid4().hex[:12]
        self._reporter: asyncio.Task | None = None
        self._run_batch.set_max_batch_size(config.max_batch)
        self._run_batch.set_batch_wait_timeout_s(config.max_wait_ms / 1e3)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_MAX_WAIT_MS / 1e3)
    async def _run_batch(self, tiles: list, owners: list) -> list:
        return await self.replica.run_batch(tiles, owners)

    async def __call__(self, request: Request) -> Response:
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_forever())
        path, started = request.url.path, time.perf_counter()
        kind = None
        try:
            response = await self._route(request, path)
        except ServeError as exc:
            kind, response = exc.kind, error_response(exc)
        except Exception as exc:  # a bug or a runtime failure: this request only
            log.exception("overnet serve: %s %s failed", request.method, path)
            kind = "internal"
            response = error_response(ServeError(kind, f"{type(exc).__name__}: {exc}"))
        seconds = time.perf_counter() - started
        label = path if path in ROUTES else "other"
        upscale = label == "/v1/upscale"
        self.replica.stats.request(label, response.status_code, kind, seconds if upscale else None)
        return response

    async def _route(self, request: Request, path: str) -> Response:
        method = ROUTES.get(path)
        if method is None:
            raise ServeError("not_found", f"no route {path}; routes: {', '.join(ROUTES)}")
        if request.method != method:
            raise ServeError("method_not_allowed", f"{path} takes {method}", {"Allow": method})
        if path not in OPEN_PATHS and not authorized(
            request.headers.get("authorization"), self.config.token_sha256
        ):
            raise ServeError(
                "unauthorized",
                "missing or wrong bearer token (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="overnet"'},
            )
        if path == "/healthz":
            if not self.replica.ready:
                raise ServeError("not_ready", "warming up", {"Retry-After": "1"})
            return JSONResponse({"status": "ok", "model": self.config.model_name})
        page = page_asset(path, request.url.path)
        if page is not None:
            return Response(page.body, page.status, page.headers, page.content_type)
        if path == "/v1/models":
            return JSONResponse({"models": [self.replica.describe()]})
        if path == "/metrics":
            await self._report()
            text = await self.metrics.render.remote()
            return Response(text, media_type=PROMETHEUS_TEXT)
        return await self._upscale(request)

    async def _upscale(self, request: Request) -> Response:
        started = time.perf_counter()
        self.replica.admit()
        try:
            body = await read_body(request, self.config)
            encoded = await self.replica.upscale(body, request.query_params, self._run_batch)
        finally:
            self.replica.release(time.perf_counter() - started)
        headers = self.replica.headers(encoded, time.perf_counter() - started)
        return Response(encoded.data, media_type=encoded.content_type, headers=headers)

    async def _report(self) -> None:
        try:
            await self.metrics.merge.remote(self.name, self.replica.stats.take())
        except Exception:  # metrics must never fail a request
            log.warning("overnet serve: could not report metrics", exc_info=True)

    async def _report_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            await self._report()

    def __del__(self) -> None:
        replica = getattr(self, "replica", None)  # None when the constructor failed
        if replica is not None:
            replica.close()


async def read_body(request: Request, config: ServiceConfig) -> bytes:
    """The body, refused (413) as soon as it passes the limit."""
    limits = config.limits
    check_length(request.headers.get("content-length"), limits)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise body_too_large(limits)
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(error: ServeError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def build_app(config: ServiceConfig) -> Any:
    """The bound application (``serve.run`` it), checked first (InputError)."""
    config.check()
    options = config.deployment_options()
    return UpscaleService.options(name="UpscaleService", **options).bind(
        config, MetricsStore.bind()
    )


def run_service(config: ServiceConfig, host: str, port: int) -> str:
    """Deploy on the connected Ray cluster (``ray.init`` first); returns the base URL once
    every replica has warmed up."""
    app = build_app(config)
    serve.start(http_options={"host": host, "port": port})
    try:
        serve.run(app, name=APP_NAME, route_prefix="/")
    except RuntimeError as exc:  # a replica's constructor failed: say why, in one line
        raise OverNetError(f"the replicas could not start: {_failure(exc)}") from exc
    return f"http://{host}:{port}"


def _failure(exc: Exception) -> str:
    """The last line of the failed deployment's message (its constructor's exception)."""
    status = serve.status().applications.get(APP_NAME)
    messages = [d.message for d in status.deployments.values()] if status else []
    lines = [ln.strip() for m in messages for ln in (m or "").splitlines() if ln.strip()]
    return lines[-1] if lines else str(exc)


def stop_service() -> None:
    """Delete the application (each replica finishes its in-flight requests, up to
    ``drain_s``), then stop Serve (controller and HTTP proxy)."""
    if APP_NAME in serve.status().applications:
        serve.delete(APP_NAME)
    serve.shutdown()
