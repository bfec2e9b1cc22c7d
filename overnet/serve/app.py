"""The Ray Serve application of `overnet serve`: HTTP routes, the tile batcher, metrics.

Two deployments per service (``--name``): ``UpscaleService`` (the replicas: the models,
see ``replica.py``) and ``MetricsStore`` (one replica, no CPU: sums what the replicas
report each second and renders ``GET /metrics``). Routes, under the service's route
prefix:

- ``POST /v1/upscale``: body = an image file; query ``scale``, ``model``, ``format``,
  ``quality``, ``timeout``; answers the image, with ``X-OverNet-*`` headers and
  ``Server-Timing``
- ``GET /v1/models``, ``GET /healthz`` (no token needed), ``GET /metrics``, the web
  page at ``/`` (no token needed)

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

from overnet.serve.auth import OPEN_PATHS, authorized
from overnet.serve.config import (
    DEFAULT_APP_NAME,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_WAIT_MS,
    ServiceConfig,
)
from overnet.serve.limits import ServeError, body_too_large, check_length
from overnet.serve.metrics import PROMETHEUS_TEXT, Registry
from overnet.serve.replica import Replica
from overnet.serve.webpage import PATHS as PAGE_PATHS
from overnet.serve.webpage import asset as page_asset

#: seconds between a replica's metric reports
FLUSH_S = 1.0
ROUTES = {
    "/v1/upscale": "POST",
    "/v1/models": "GET",
    "/healthz": "GET",
    "/metrics": "GET",
    **dict.fromkeys(PAGE_PATHS, "GET"),  # the web page at / (webpage.py)
}
log = logging.getLogger("ray.serve")


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
class MetricsStore:
    def __init__(self) -> None:
        self.registry = Registry()

    def merge(self, replica: str, state: dict[str, Any]) -> None:
        self.registry.merge(replica, state, time.monotonic())

    def render(self) -> str:
        return self.registry.render(time.monotonic())


def route_path(request: Request) -> str:
    """The request's path below the application's route prefix ("/v1/upscale")."""
    path, root = request.url.path, request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


@serve.deployment
class UpscaleService:
    def __init__(self, config: ServiceConfig, metrics: Any) -> None:
        self.replica = Replica.open(config)
        self.config = config
        self.metrics = metrics
        self.name = uuid.uuid4().hex[:12]
        self._reporter: asyncio.Task | None = None
        # never more tiles per run than every graph takes (an engine's profile)
        self._run_batch.set_max_batch_size(self.replica.max_batch)
        self._run_batch.set_batch_wait_timeout_s(config.max_wait_ms / 1e3)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_MAX_WAIT_MS / 1e3)
    async def _run_batch(self, tiles: list, owners: list, graphs: list) -> list:
        return await self.replica.run_batch(tiles, owners, graphs)

    async def __call__(self, request: Request) -> Response:
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_forever())
        path, started = route_path(request), time.perf_counter()
        kind = None
        try:
            response = await self._route(request, path)
        except ServeError as exc:
            kind, response = exc.kind, error_response(exc)
        except asyncio.CancelledError:  # the client went away: nobody reads an answer
            self.replica.stats.request("/v1/upscale", 499, "cancelled", None)
            raise
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
            routes = ", ".join(r for r in ROUTES if not r.startswith("/page/"))
            raise ServeError("not_found", f"no route {path}; routes: {routes}")
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
            names = [m.name for m in self.replica.models.models]
            return JSONResponse({"status": "ok", "model": names[0], "models": names})
        page = page_asset(path, request.url.path)
        if page is not None:
            return Response(page.body, page.status, page.headers, page.content_type)
        if path == "/v1/models":
            return JSONResponse(self.replica.describe())
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
        except BaseException:
            self.replica.release()
            raise
        route, encoded = await self.replica.upscale(body, request.query_params, self._run_batch)
        headers = self.replica.headers(route, encoded, time.perf_counter() - started)
        return Response(encoded.data, media_type=encoded.content_type, headers=headers)

    async def _report(self) -> None:
        try:
            await self.metrics.merge.remote(self.name, self.replica.take_stats())
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
    """Deploy the service as its own application (``config.name``) on the connected Ray
    cluster (``ray.init`` first) and return its base URL once every replica has warmed
    up. Starts Serve's proxy on ``host``:``port`` unless Serve already runs (the body
    limit is in that proxy when Ray started with ``proxy_limits.proxy_environment``).
    OverNetError when the name or the route is taken, when a
    replica fails to start (its one-line reason), or when the replicas are not running
    within ``config.start_timeout_s`` (naming the resource the cluster lacks)."""
    from overnet.serve.deploy import check_free, deploy, start_proxy, wait_running

    app = build_app(config)
    check_free(config)
    start_proxy(host, port)
    deploy(app, config)
    try:
        wait_running(config)
    except BaseException:  # Ctrl-C, a failed or unplaceable replica: leave nothing behind
        stop_service(config.name, wait=False)
        raise
    prefix = "" if config.route_prefix == "/" else config.route_prefix
    return f"http://{host}:{port}{prefix}"


def stop_service(name: str = DEFAULT_APP_NAME, *, wait: bool = True) -> None:
    """Delete this service's application only (each replica finishes its in-flight
    requests, up to the drain timeout); other applications and Serve's proxy stay."""
    try:
        running = name in serve.status().applications
    except Exception:  # no Serve instance (stopped already, or never started)
        return
    if running:
        serve.delete(name, _blocking=wait)
