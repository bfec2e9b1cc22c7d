"""The service's parts without Ray: the Upscaler hook, bytes in/out, checks, metrics,
auth, config, and a replica driven by a plain asyncio loop."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from overnet.imaging.png16 import encode_png16, read_png16
from overnet.runtime import Upscaler, open_session
from overnet.serve.auth import authorized, token_digest
from overnet.serve.config import Limits, ServiceConfig
from overnet.serve.images import process
from overnet.serve.limits import ServeError, UpscaleParams, check_length, parse_params
from overnet.serve.metrics import Registry, Stats, parse
from overnet.serve.replica import Replica, run_grouped
from tests.serve.conftest import encoded, noise

TILE, OVERLAP = 24, 6
PARAMS = UpscaleParams(fmt=None, quality=95, timeout_s=60)


@pytest.fixture(scope="module")
def session(x2_onnx):
    pytest.importorskip("onnxruntime")
    with open_session(x2_onnx, "onnxruntime", threads=1) as opened:
        yield opened


@pytest.fixture
def upscaler(session):
    return Upscaler(session, tile=TILE, overlap=OVERLAP, batch=4)


class Recorder:
    """A ``run`` for upscale_with that records the batches it was given."""

    def __init__(self, session):
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        return self.session.run(batch)


# -- the Upscaler hook --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_upscale_with_equals_upscale(session, upscaler, mode):
    image = noise(50, 37, mode, seed=1)
    recorder = Recorder(session)
    through = upscaler.upscale_with(image, recorder)
    direct = Upscaler(session, tile=TILE, overlap=OVERLAP).upscale(image)
    assert through.mode == direct.mode == mode
    assert np.array_equal(np.asarray(through), np.asarray(direct))
    plan = upscaler.plan(37, 50)
    assert sum(shape[0] for shape in recorder.shapes) == len(plan.tiles) > 1
    assert all(shape[0] <= 4 for shape in recorder.shapes)  # the plan's batch


def test_upscale_with_keeps_16_bit_arrays_and_the_upscaler_unchanged(session, upscaler):
    pixels = (np.random.default_rng(2).random((30, 41, 3)) * 65535).astype(np.uint16)
    through = upscaler.upscale_with(pixels, Recorder(session))
    assert through.dtype == np.uint16 and through.shape == (60, 82, 3)
    assert np.array_equal(through, Upscaler(session, tile=TILE, overlap=OVERLAP).upscale(pixels))
    assert upscaler.session is session


def test_run_grouped_runs_each_graph_and_shape_once_in_order():
    calls = []

    def run(graph, batch):
        calls.append((graph, batch.shape))
        return batch * (2 if graph == "a" else 3)

    tiles = [np.full((3, 4, 4), i, np.float32) for i in range(3)]
    tiles.insert(1, np.ones((3, 2, 4), np.float32))
    out = run_grouped(run, tiles, ["a", "a", "a", "a"])
    assert sorted(calls) == [("a", (1, 3, 2, 4)), ("a", (3, 3, 4, 4))]
    assert [float(o.flat[0]) for o in out] == [0.0, 2.0, 2.0, 4.0]
    calls.clear()
    out = run_grouped(run, tiles, ["a", "b", "b", "a"])  # same shape, other graph: apart
    assert sorted(calls) == [("a", (2, 3, 4, 4)), ("b", (1, 3, 2, 4)), ("b", (1, 3, 4, 4))]
    assert [float(o.flat[0]) for o in out] == [0.0, 3.0, 3.0, 4.0]


def test_run_grouped_never_exceeds_a_graphs_maximum_batch():
    sizes = []

    def run(graph, batch):
        sizes.append((graph, len(batch)))
        return batch

    tiles = [np.zeros((3, 4, 4), np.float32)] * 7
    run_grouped(run, tiles, ["e"] * 4 + ["o"] * 3, {"e": 1, "o": None}.get)
    assert sorted(sizes) == [("e", 1)] * 4 + [("o", 3)]


# -- bytes in, bytes out ------------------------------------------------------------------
def test_png_in_png_out_equals_the_upscaler(session, upscaler):
    image = noise(45, 33, "RGBA", seed=3)
    out = process(encoded(image), PARAMS, Limits(), upscaler, session.run)
    assert out.content_type == "image/png" and (out.width, out.height) == (90, 66)
    assert out.tiles == len(upscaler.plan(33, 45).tiles)
    direct = Upscaler(session, tile=TILE, overlap=OVERLAP).upscale(image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.data))), np.asarray(direct))


def test_16_bit_png_stays_16_bit(session, upscaler, tmp_path):
    pixels = (np.random.default_rng(4).random((26, 30, 3)) * 65535).astype(np.uint16)
    out = process(encode_png16(pixels), PARAMS, Limits(), upscaler, session.run)
    (tmp_path / "o.png").write_bytes(out.data)
    back, _ = read_png16(tmp_path / "o.png")
    assert back.dtype == np.uint16
    assert np.array_equal(back, Upscaler(session, tile=TILE, overlap=OVERLAP).upscale(pixels))


@pytest.mark.parametrize(
    ("fmt", "query", "content_type"),
    [("JPEG", None, "image/jpeg"), ("BMP", None, "image/png"), ("PNG", "webp", "image/webp")],
)
def test_output_format_follows_the_input_or_the_query(session, upscaler, fmt, query, content_type):
    params = UpscaleParams(fmt=query, quality=90, timeout_s=60)
    out = process(encoded(noise(30, 26), fmt), params, Limits(), upscaler, session.run)
    assert out.content_type == content_type
    assert Image.open(io.BytesIO(out.data)).size == (60, 52)


def _never(batch):
    raise AssertionError("refused inputs must not reach the model")


@pytest.mark.parametrize(
    ("body", "params", "limits", "kind"),
    [
        (b"", PARAMS, Limits(), "unsupported_media"),
        (b"plain text, not an image", PARAMS, Limits(), "unsupported_media"),
        (encoded(noise(20, 20), "GIF"), PARAMS, Limits(), "unsupported_media"),
        (encoded(noise(40, 40))[:60], PARAMS, Limits(), "unsupported_media"),
        (encoded(noise(20, 20).convert("CMYK"), "JPEG"), PARAMS, Limits(), "unsupported_media"),
        (encoded(noise(40, 30)), PARAMS, Limits(max_pixels=1199), "too_many_pixels"),
        (encoded(noise(20, 20, "RGBA")), UpscaleParams("jpg", 90, 60), Limits(), "bad_request"),
        (encode_png16(np.zeros((8, 8, 3), np.uint16)), UpscaleParams("webp", 90, 60), Limits(),
         "bad_request"),
    ],
)  # fmt: skip
def test_refusals_before_inference(upscaler, body, params, limits, kind):
    with pytest.raises(ServeError) as caught:
        process(body, params, limits, upscaler, _never)
    assert caught.value.kind == kind
    assert caught.value.body()["error"]["status"] in (400, 413, 415)
    assert "/tmp" not in caught.value.message  # no server paths in answers


# -- parameters and limits ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"size": "2"}, "unknown query parameter(s) size"),
        ({"scale": "two"}, "scale must be a number"),
        ({"scale": "inf"}, "scale must be finite"),
        ({"format": "gif"}, "format must be one of png, jpg, webp, tiff"),
        ({"quality": "0"}, "quality must be in 1..100"),
        ({"quality": "9.5"}, "quality must be an integer"),
        ({"timeout": "999"}, "at most the server's 120 s"),
        ({"timeout": "nan"}, "timeout must be finite"),
    ],
)
def test_bad_parameters_are_400(query, message):
    with pytest.raises(ServeError) as caught:
        parse_params(query, Limits())
    assert caught.value.status == 400 and message in caught.value.message


def test_good_parameters():
    params = parse_params({"scale": "2.5", "format": "jpg", "quality": "80"}, Limits())
    assert params == UpscaleParams("jpg", 80, 120.0, 2.5)
    assert parse_params({"timeout": "0.5", "model": "x3"}, Limits()).model == "x3"


def test_content_length_is_checked_before_the_body():
    check_length("100", Limits(max_body_bytes=100))
    for header, status in (("101", 413), ("lots", 400)):
        with pytest.raises(ServeError) as caught:
            check_length(header, Limits(max_body_bytes=100))
        assert caught.value.status == status


# -- auth, metrics, config -----------------------------------------------------------------
def test_bearer_token():
    digest = token_digest("s3cret")
    assert authorized(None, None) and authorized("Bearer anything", None)
    assert authorized("Bearer s3cret", digest) and authorized("bearer  s3cret ", digest)
    for header in (None, "", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret"):
        assert not authorized(header, digest), header
    assert "s3cret" not in repr(ServiceConfig(model="m.onnx", token_sha256=digest))


def test_metrics_sum_over_replicas_and_render_prometheus_text():
    registry, first, second = Registry(), Stats(), Stats()
    first.request("/v1/upscale", 200, None, 0.3)
    first.request("/v1/upscale", 413, "too_many_pixels", 0.01)
    first.batch(tiles=6, requests=3)
    second.request("/v1/upscale", 200, None, 2.0)
    second.batch(tiles=1, requests=1)
    second.in_flight, second.queue_tiles = 2, 5
    registry.merge("a", first.take(), now=0.0)
    registry.merge("b", second.take(), now=0.0)
    registry.merge("a", first.take(), now=1.0)  # nothing new: counts unchanged
    values = parse(registry.render(now=1.0))
    assert values['overnet_serve_requests_total{path="/v1/upscale",status="200"}'] == 2
    assert values['overnet_serve_errors_total{kind="too_many_pixels"}'] == 1
    assert values['overnet_serve_request_seconds_bucket{le="0.5"}'] == 2
    assert values['overnet_serve_request_seconds_bucket{le="+Inf"}'] == 3
    assert values["overnet_serve_batch_tiles_sum"] == 7
    assert values['overnet_serve_batch_requests_bucket{le="2"}'] == 1
    assert values["overnet_serve_in_flight"] == 2 and values["overnet_serve_queue_tiles"] == 5
    assert values["overnet_serve_replicas"] == 2
    assert parse(registry.render(now=100.0))["overnet_serve_replicas"] == 0  # stale


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_replicas": 1}, "both --min-replicas and --max-replicas"),
        ({"min_replicas": 3, "max_replicas": 2}, "--min-replicas <= --max-replicas"),
        ({"max_batch": 0}, "--max-batch"),
        ({"tile": 0}, "--tile must be >= 1"),
        ({"limits": Limits(max_queue=0)}, "at least 1 request"),
        ({"token_sha256": token_digest("")}, "the token is empty"),
        ({"name": "a b"}, "--name must be"),
        ({"route_prefix": "x2/"}, "--route-prefix must start with '/'"),
        ({"models": ("a/x2.onnx", "b/x2.pth")}, "the same name: x2, x2"),
    ],
)
def test_config_checks(changes, message):
    from overnet.errors import InputError

    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        base = {} if "models" in changes else {"model": "m.onnx"}
        ServiceConfig(**base, **changes).check()


def test_defaults_of_a_good_citizen():
    config = ServiceConfig(model="m.onnx", num_cpus=1.0)
    assert config.session_threads == 1  # the replica's CPU share, not every core
    assert ServiceConfig(model="m.onnx", num_cpus=2.5).session_threads == 2
    assert config.drain_timeout_s >= config.limits.timeout_s  # drain covers a request
    assert ServiceConfig(model="m.onnx", drain_s=3).drain_timeout_s == 3


def test_deployment_options():
    fixed = ServiceConfig(model="m.onnx", replicas=3, num_gpus=0.5).deployment_options()
    assert fixed["num_replicas"] == 3 and fixed["ray_actor_options"]["num_gpus"] == 0.5
    assert fixed["max_ongoing_requests"] > Limits().max_queue
    assert fixed["max_queued_requests"] == Limits().max_queue  # Ray Serve's queue bounded
    assert fixed["graceful_shutdown_timeout_s"] > Limits().timeout_s
    scaled = ServiceConfig(model="m.onnx", min_replicas=0, max_replicas=4).deployment_options()
    assert "num_replicas" not in scaled
    assert scaled["autoscaling_config"]["max_replicas"] == 4


# -- a replica on a plain event loop (no Ray) ---------------------------------------------
@pytest.fixture(scope="module")
def replica(x2_onnx):
    pytest.importorskip("onnxruntime")
    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=1, tile=TILE, overlap=OVERLAP,
        limits=Limits(max_queue=2),
    )  # fmt: skip
    opened = Replica.open(config)
    yield opened
    opened.close()


def _submit(replica):
    async def submit(tile, owner, graph):  # what @serve.batch does, one tile at a time
        return (await replica.run_batch([tile], [owner], [graph]))[0]

    return submit


def test_replica_upscales_through_its_batcher(replica, session):
    image = noise(52, 40, seed=5)

    async def go():
        replica.admit()
        return await replica.upscale(encoded(image), {}, _submit(replica))

    route, out = asyncio.run(go())
    assert route.model.name == "x2" and route.scale == 2.0
    direct = Upscaler(session, tile=TILE, overlap=OVERLAP).upscale(image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.data))), np.asarray(direct))
    state = replica.stats.take()
    assert state["batch_tiles"]["count"] == out.tiles and state["queue_tiles"] == 0


def test_replica_deadline_is_504(replica):
    async def go():
        replica.admit()
        return await replica.upscale(encoded(noise(52, 40)), {"timeout": "1e-9"}, _submit(replica))

    with pytest.raises(ServeError) as caught:
        asyncio.run(go())
    assert caught.value.status == 504


def test_replica_queue_full_is_503_with_retry_after(replica):
    replica.admit()
    replica.admit()
    try:
        with pytest.raises(ServeError) as caught:
            replica.admit()
        assert caught.value.status == 503 and int(caught.value.headers["Retry-After"]) >= 1
    finally:
        replica.release(0.1)
        replica.release(0.1)
    replica.admit()
    replica.release(0.1)
    assert replica.describe()["tile"] == TILE and replica.ready


def test_a_replica_serves_a_fractional_scale_tile_by_tile(x2_weights):
    """x1.5 on the x2 checkpoint: the batcher runs tiles to their overscaled features and
    the replica's Upscaler finishes them; the result is the Upscaler's own."""
    pytest.importorskip("onnxruntime")
    config = ServiceConfig(
        model=str(x2_weights), backend="onnxruntime", scale=1.5, threads=1, tile=TILE,
        overlap=OVERLAP,
    )  # fmt: skip
    config.check()
    opened = Replica.open(config)
    try:
        image = noise(52, 40, seed=6)
        opened.admit()
        _, out = asyncio.run(opened.upscale(encoded(image), {}, _submit(opened)))
        with open_session(x2_weights, "onnxruntime", scale=1.5, threads=1) as own:
            direct = Upscaler(own, tile=TILE, overlap=OVERLAP).upscale(image)
        served = np.asarray(Image.open(io.BytesIO(out.data)))
        assert served.shape == (60, 78, 3) and np.array_equal(served, np.asarray(direct))
        assert out.tiles > 1
    finally:
        opened.close()


# -- admission by memory, cancellation ------------------------------------------------------
def test_a_request_over_the_free_memory_waits_then_gets_503_and_the_budget_returns(replica):
    image = encoded(noise(52, 40, seed=9))
    held = replica.budget.total - len(image) // 2  # another request holds nearly all of it
    assert replica.budget.take(held, timeout=0)
    try:

        async def go():
            replica.admit()
            return await replica.upscale(image, {"timeout": "5"}, _submit(replica))

        started = time.monotonic()
        with pytest.raises(ServeError) as caught:
            asyncio.run(go())
        assert caught.value.status == 503 and caught.value.kind == "busy"
        assert int(caught.value.headers["Retry-After"]) >= 1
        assert time.monotonic() - started < 3  # at once: not even its body fits
    finally:
        replica.budget.give_back(held)
    deadline = time.monotonic() + 5
    while replica.stats.in_flight or replica.budget.held:
        assert time.monotonic() < deadline, (replica.stats.in_flight, replica.budget.held)
        time.sleep(0.05)


def test_a_request_whose_estimate_does_not_fit_waits_memory_wait_s(x2_onnx):
    pytest.importorskip("onnxruntime")
    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=1, tile=TILE, overlap=OVERLAP,
        limits=Limits(memory_wait_s=0.5),
    )  # fmt: skip
    opened = Replica.open(config)
    try:
        body = encoded(noise(52, 40, seed=10))
        estimate = opened.models.route(2.0, None).upscaler.plan(40, 52)
        held = opened.budget.total - estimate.image_bytes // 2  # the body fits, the rest not
        assert opened.budget.take(held, timeout=0)

        async def go():
            opened.admit()
            return await opened.upscale(body, {}, _submit(opened))

        started = time.monotonic()
        with pytest.raises(ServeError) as caught:
            asyncio.run(go())
        waited = time.monotonic() - started
        assert caught.value.kind == "busy" and "stayed taken" in caught.value.message
        assert 0.4 < waited < 3, waited
        opened.budget.give_back(held)
        opened.admit()  # with the memory back, the same request is served
        _, out = asyncio.run(opened.upscale(body, {}, _submit(opened)))
        assert out.width == 104 and opened.budget.held == 0
    finally:
        opened.close()


def test_a_cancelled_request_stops_at_its_next_tile_group(x2_onnx):
    """The client goes away (Ray Serve cancels the handler): the request's thread runs no
    tile group after the one in flight, gives its memory back and ends."""
    pytest.importorskip("onnxruntime")
    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=1, tile=TILE, overlap=OVERLAP,
        max_batch=4,
    )  # fmt: skip
    opened = Replica.open(config)
    groups: list[float] = []

    async def slow_submit(tile, owner, graph):  # a busy batcher: 0.3 s per tile group
        if not groups or time.monotonic() - groups[-1] > 0.1:
            groups.append(time.monotonic())
        await asyncio.sleep(0.3)
        return (await opened.run_batch([tile], [owner], [graph]))[0]

    async def go():
        opened.admit()
        task = asyncio.create_task(opened.upscale(encoded(noise(160, 120)), {}, slow_submit))
        while len(groups) < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        while opened.stats.in_flight:  # the thread ends
            assert time.monotonic() - cancelled_at < 3
            await asyncio.sleep(0.02)
        return cancelled_at, time.monotonic()

    try:
        plan = opened.models.route(2.0, None).upscaler.plan(120, 160)
        total_groups = -(-len(plan.tiles) // plan.batch)
        cancelled_at, ended_at = asyncio.run(go())
        after = [t for t in groups if t > cancelled_at]
        assert total_groups > 4 and len(groups) <= 3 and not after, (groups, total_groups)
        assert ended_at - cancelled_at < 1.5  # within the group in flight
        assert opened.budget.held == 0 and opened.stats.take()["cancelled"] == 1
    finally:
        opened.close()


# -- the proxy's body limit, the client --------------------------------------------------
def _asgi(limits, headers, chunks):
    """Run BodyLimit over a recording app; (status sent, bytes the app read)."""
    from overnet.serve.proxy_limits import BodyLimit

    read, sent = [], []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            read.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})

    queue = [{"type": "http.request", "body": c, "more_body": i + 1 < len(chunks)}
             for i, c in enumerate(chunks)]  # fmt: skip

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    scope = {"type": "http", "method": "POST", "path": "/a/v1/upscale", "headers": headers}
    asyncio.run(BodyLimit(app, limits)(scope, receive, send))
    return sent, sum(read)


def test_the_proxy_refuses_a_large_body_before_reading_it():
    limits = {"/a": 100, "/": 10}
    sent, read = _asgi(limits, [(b"content-length", b"101")], [b"x" * 101])
    assert sent == [413] and read == 0  # by its length: not a byte read
    sent, read = _asgi(limits, [], [b"x" * 60, b"x" * 60, b"x" * 60])  # chunked
    assert sent == [413] and read == 60  # cut off at the limit: no byte past it
    sent, read = _asgi(limits, [(b"content-length", b"100")], [b"x" * 100])
    assert sent == [200] and read == 100
    sent, _ = _asgi({"/b": 1}, [(b"content-length", b"101")], [b"x" * 101])
    assert sent == [200]  # another service's route: not ours to limit


def test_the_proxy_callback_reads_its_limits_from_the_environment(monkeypatch):
    from overnet.serve import proxy_limits

    for key, value in proxy_limits.proxy_environment({"/": 5}).items():
        monkeypatch.setenv(key, value)
    (middleware,) = proxy_limits.middlewares()
    assert middleware.cls is proxy_limits.BodyLimit and middleware.kwargs == {"limits": {"/": 5}}


def test_the_client_parses_both_forms_of_retry_after():
    from overnet.serve.client import retry_after

    assert retry_after("7") == 7.0 and retry_after(None) is None and retry_after("soon") is None
    now = 1_700_000_000.0
    date = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert retry_after(date, now=now) == pytest.approx(20.0)
    assert retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0  # past: at once


def test_the_client_sends_no_token_to_a_redirect_target():
    """A redirect to another host gets no Authorization header (a real HTTP server)."""
    import http.server
    import threading

    from overnet.serve import Client

    seen: dict[str, str | None] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen[self.path] = self.headers.get("Authorization")
            if self.path == "/v1/models":
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{port}/elsewhere")
                self.end_headers()
                return
            body = b'{"models": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert Client(f"http://127.0.0.1:{port}", token="s3cret", timeout=10).models() == []
    finally:
        server.shutdown()
        server.server_close()
    assert seen == {"/v1/models": "Bearer s3cret", "/elsewhere": None}


# -- engines: the profile's batch limit ------------------------------------------------------
@pytest.fixture
def batch_one_engine(monkeypatch, tmp_path):
    """A TensorRT engine whose profile takes one tile per run (the TensorRT double: no
    GPU here), as `overnet export --format tensorrt` builds by default."""
    from overnet.export.tensorrt import BuildOptions, Profile
    from overnet.export.tensorrt.engine_export import build_with_sidecar
    from tests.fakes.fixtures import fake_env, write_tiny_onnx

    env = fake_env(11, monkeypatch)
    next(env)
    onnx = write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")
    path = tmp_path / "overnet_x2_fp16_b1-1-1_8x8-16x16-32x40.engine"
    profile = Profile.parse("1x3x8x8", "1x3x16x16", "1x3x32x40")
    build_with_sidecar(onnx, path, profile, BuildOptions(), rebuild="-", echo=lambda _: None)
    yield path
    next(env, None)


def test_two_requests_to_a_batch_one_engine_never_exceed_its_batch(batch_one_engine):
    """The batcher takes at most the engine's batch, and a batch of tiles from two
    concurrent requests runs one tile at a time: both are answered (not 415s)."""
    config = ServiceConfig(
        model=str(batch_one_engine), backend="tensorrt", device="cuda", tile=16, overlap=4,
        max_batch=8,
    )  # fmt: skip
    opened = Replica.open(config)
    try:
        assert opened.max_batch == 1 and opened.describe()["max_batch"] == 1
        pending: list = []

        async def flush():
            batch = pending[:]
            pending.clear()
            if batch:
                tiles, owners, graphs, futures = (list(x) for x in zip(*batch, strict=True))
                outs = await opened.run_batch(tiles, owners, graphs)
                for done, out in zip(futures, outs, strict=True):
                    done.set_result(out)

        async def batching_submit(tile, owner, graph):  # a batcher that takes 2 at once
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            pending.append((tile, owner, graph, future))
            if len(pending) >= 2:
                await flush()
            else:  # a lone tile goes after 50 ms, as @serve.batch's wait does
                loop.call_later(0.05, lambda: loop.create_task(flush()))
            return await future

        async def two():
            opened.admit()
            opened.admit()
            return await asyncio.gather(
                opened.upscale(encoded(noise(32, 32, seed=1)), {}, batching_submit),
                opened.upscale(encoded(noise(32, 32, seed=2)), {}, batching_submit),
            )

        answers = asyncio.run(asyncio.wait_for(two(), 60))
        assert [Image.open(io.BytesIO(a.data)).size for _, a in answers] == [(64, 64)] * 2
        tiles = opened.stats.take()["batch_tiles"]
        assert tiles["total"] > tiles["count"]  # some batcher calls held tiles of both
    finally:
        opened.close()


def test_closing_a_replica_stops_its_requests_first_then_closes_the_sessions(x2_onnx):
    """Close during a request: the request stops at its next tile group (503, not a
    crash on a closed session), and the sessions close only after its thread ended."""
    pytest.importorskip("onnxruntime")
    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=1, tile=TILE, overlap=OVERLAP,
        max_batch=4,
    )  # fmt: skip
    opened = Replica.open(config)
    closed_with_in_flight: list[int] = []
    session = opened.models.models[0].native
    original_close = session.close

    def close_and_record():
        closed_with_in_flight.append(opened.stats.in_flight)
        original_close()

    session.close = close_and_record
    groups: list[float] = []

    async def slow_submit(tile, owner, graph):
        groups.append(time.monotonic())
        await asyncio.sleep(0.3)
        return (await opened.run_batch([tile], [owner], [graph]))[0]

    async def go():
        opened.admit()
        task = asyncio.create_task(opened.upscale(encoded(noise(160, 120)), {}, slow_submit))
        while not groups:
            await asyncio.sleep(0.02)
        closing = asyncio.get_running_loop().run_in_executor(None, opened.close)
        with pytest.raises(ServeError) as caught:
            await task
        await closing
        return caught.value

    refusal = asyncio.run(asyncio.wait_for(go(), 60))
    assert refusal.status == 503 and refusal.kind == "not_ready"
    assert closed_with_in_flight == [0]  # no request was running when the session closed


def test_the_last_request_of_a_graph_gives_its_kept_buffers_back(x2_onnx):
    """OpenVINO keeps each graph's buffers at the largest image it ran; once no request
    of that graph is in flight the replica frees them, on its inference thread (never
    during a run)."""
    pytest.importorskip("openvino")
    config = ServiceConfig(model=str(x2_onnx), backend="openvino", threads=1, max_batch=4)
    opened = Replica.open(config)
    released: list[tuple[str, str | None, int]] = []
    original = opened.models.release_memory

    def record(graph=None):
        released.append((threading.current_thread().name, graph, opened._graph_users[graph]))
        original(graph)

    opened.models.release_memory = record
    try:

        async def submit(tile, owner, graph):
            return (await opened.run_batch([tile], [owner], [graph]))[0]

        async def one():
            opened.admit()
            return await opened.upscale(encoded(noise(48, 40)), {}, submit)

        asyncio.run(asyncio.wait_for(one(), 60))
        deadline = time.monotonic() + 10
        while not released and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(released) == 1
        thread, graph, users = released[0]
        assert thread.startswith("overnet-infer") and users == 0
        assert graph == opened.models.route(2.0, None).graph.key
        # the replica still answers after freeing (the next run allocates again)
        _, again = asyncio.run(asyncio.wait_for(one(), 60))
        assert Image.open(io.BytesIO(again.data)).size == (96, 80)
    finally:
        opened.close()
