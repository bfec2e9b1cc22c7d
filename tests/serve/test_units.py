"""The service's parts without Ray: the Upscaler hook, bytes in/out, checks, metrics,
auth, config, and a replica driven by a plain asyncio loop."""

from __future__ import annotations

import asyncio
import io

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


def test_run_grouped_runs_each_shape_once_in_order():
    calls = []

    def run(batch):
        calls.append(batch.shape)
        return batch * 2

    tiles = [np.full((3, 4, 4), i, np.float32) for i in range(3)]
    tiles.insert(1, np.ones((3, 2, 4), np.float32))
    out = run_grouped(run, tiles)
    assert sorted(calls) == [(1, 3, 2, 4), (3, 3, 4, 4)]
    assert [float(o.flat[0]) for o in out] == [0.0, 2.0, 2.0, 4.0]


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
        ({"scale": "3"}, "this service upscales x2"),
        ({"scale": "two"}, "scale must be a number"),
        ({"format": "gif"}, "format must be one of png, jpg, webp, tiff"),
        ({"quality": "0"}, "quality must be in 1..100"),
        ({"quality": "9.5"}, "quality must be an integer"),
        ({"timeout": "999"}, "at most the server's 120 s"),
        ({"timeout": "nan"}, "timeout must be finite"),
    ],
)
def test_bad_parameters_are_400(query, message):
    with pytest.raises(ServeError) as caught:
        parse_params(query, 2.0, Limits())
    assert caught.value.status == 400 and message in caught.value.message


def test_good_parameters():
    params = parse_params({"scale": "2", "format": "jpg", "quality": "80"}, 2.0, Limits())
    assert params == UpscaleParams("jpg", 80, 120.0)
    assert parse_params({"timeout": "0.5"}, 2.0, Limits()).timeout_s == 0.5


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
    ],
)
def test_config_checks(changes, message):
    from overnet.errors import InputError

    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        ServiceConfig(model="m.onnx", **changes).check()


def test_deployment_options():
    fixed = ServiceConfig(model="m.onnx", replicas=3, num_gpus=0.5).deployment_options()
    assert fixed["num_replicas"] == 3 and fixed["ray_actor_options"]["num_gpus"] == 0.5
    assert fixed["max_ongoing_requests"] > Limits().max_queue
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
    async def submit(tile, owner):  # what @serve.batch does, one tile at a time
        return (await replica.run_batch([tile], [owner]))[0]

    return submit


def test_replica_upscales_through_its_batcher(replica, session):
    image = noise(52, 40, seed=5)

    async def go():
        return await replica.upscale(encoded(image), {}, _submit(replica))

    out = asyncio.run(go())
    direct = Upscaler(session, tile=TILE, overlap=OVERLAP).upscale(image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out.data))), np.asarray(direct))
    state = replica.stats.take()
    assert state["batch_tiles"]["count"] == out.tiles and state["queue_tiles"] == 0


def test_replica_deadline_is_504(replica):
    async def go():
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
        out = asyncio.run(opened.upscale(encoded(image), {}, _submit(opened)))
        direct = Upscaler(opened.session, tile=TILE, overlap=OVERLAP).upscale(image)
        served = np.asarray(Image.open(io.BytesIO(out.data)))
        assert served.shape == (60, 78, 3) and np.array_equal(served, np.asarray(direct))
        assert out.tiles > 1
    finally:
        opened.close()
