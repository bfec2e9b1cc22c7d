"""A real Ray Serve app on a local Ray (2 CPUs) over real HTTP: outputs equal the
Upscaler's with the same tiling, concurrent requests of different sizes share batches,
the bearer token is enforced, metrics count what happened."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from PIL import Image

from overnet.imaging.png16 import encode_png16, read_png16
from overnet.serve import AsyncClient, Client, ServiceConfig, ServiceError
from overnet.serve.auth import token_digest
from overnet.serve.metrics import parse
from tests.serve.conftest import encoded, free_port, noise

pytest.importorskip("ray.serve")
TILE, OVERLAP, TOKEN = 32, 8, "serve-test-token"
#: sizes (width x height) of the concurrent requests: all at least a tile on both sides,
#: so every tile is 32x32 and tiles of different requests can share a run
SIZES = [(96, 64), (64, 96), (80, 72), (72, 80), (96, 96), (64, 64)]


@pytest.fixture(scope="module")
def backend():
    for name in ("openvino", "onnxruntime"):
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    pytest.skip("needs openvino or onnxruntime")


@pytest.fixture(scope="module")
def service(ray_instance, x2_onnx, backend):
    from overnet.serve.app import run_service

    config = ServiceConfig(
        model=str(x2_onnx), backend=backend, threads=2, tile=TILE, overlap=OVERLAP,
        max_batch=16, max_wait_ms=150, token_sha256=token_digest(TOKEN),
    )  # fmt: skip
    return run_service(config, "127.0.0.1", free_port())


@pytest.fixture(scope="module")
def direct(x2_onnx, backend):
    """The same model, backend and tiling in this process: what the service must equal."""
    from overnet.runtime import Upscaler, open_session

    with open_session(x2_onnx, backend, threads=2) as session:
        yield Upscaler(session, tile=TILE, overlap=OVERLAP)


@pytest.fixture(scope="module")
def client(service):
    return Client(service, token=TOKEN, timeout=60)


def test_health_and_models(service, client, backend):
    assert Client(service).health() == {"status": "ok", "model": "x2"}  # no token needed
    (model,) = client.models()
    assert (model["name"], model["backend"], model["scale"]) == ("x2", backend, 2.0)
    assert (model["tile"], model["overlap"], model["max_batch"]) == (TILE, OVERLAP, 16)


@pytest.mark.parametrize(
    ("mode", "size"), [("RGB", (96, 64)), ("RGBA", (64, 96)), ("L", (40, 30)), ("LA", (50, 33))]
)
def test_outputs_equal_the_upscaler(client, direct, mode, size):
    image = noise(*size, mode, seed=sum(size))
    result = client.upscale(encoded(image))
    assert result.content_type == "image/png"
    served = Image.open(io.BytesIO(result.data))
    expected = direct.upscale(image)
    assert served.mode == expected.mode == mode
    assert np.array_equal(np.asarray(served), np.asarray(expected))
    tiles = len(direct.plan(size[1], size[0]).tiles)
    assert result.headers["x-overnet-tiles"] == str(tiles) and tiles > 1
    assert result.headers["x-overnet-model"] == "x2"
    assert result.headers["x-overnet-precision"] == "fp32" and result.seconds > 0
    assert result.headers["server-timing"].startswith("upscale;dur=")


def test_16_bit_png_and_jpeg_equal_the_upscaler(client, direct, tmp_path):
    from overnet.imaging.files import save_image

    pixels = (np.random.default_rng(7).random((40, 48, 3)) * 65535).astype(np.uint16)
    (tmp_path / "o.png").write_bytes(client.upscale(encode_png16(pixels)).data)
    served, _ = read_png16(tmp_path / "o.png")
    assert served.dtype == np.uint16 and np.array_equal(served, direct.upscale(pixels))
    image = noise(64, 48, seed=8)
    result = client.upscale(encoded(image), format="jpg", quality=85)
    save_image(direct.upscale(image), tmp_path / "d.jpg", "jpg", 85)
    assert result.content_type == "image/jpeg"
    assert result.data == (tmp_path / "d.jpg").read_bytes()


def _metric(client: Client, name: str) -> float:
    return parse(client.metrics()).get(name, 0.0)


def test_concurrent_requests_of_different_sizes_share_batches(client, direct):
    images = [noise(w, h, seed=i) for i, (w, h) in enumerate(SIZES)]
    before = parse(client.metrics())

    async def send_all():
        asynchronous = AsyncClient(client.url, token=TOKEN, timeout=60)
        return await asyncio.gather(*(asynchronous.upscale(encoded(im)) for im in images))

    results = asyncio.run(send_all())
    for image, result in zip(images, results, strict=True):
        served = np.asarray(Image.open(io.BytesIO(result.data)))
        assert np.array_equal(served, np.asarray(direct.upscale(image)))
    tiles = sum(len(direct.plan(h, w).tiles) for w, h in SIZES)
    deadline = time.monotonic() + 20  # replicas report every second
    while time.monotonic() < deadline:
        after = parse(client.metrics())
        if (
            after["overnet_serve_batch_tiles_sum"] - before.get("overnet_serve_batch_tiles_sum", 0)
            >= tiles
        ):
            break
        time.sleep(0.5)
    runs = after["overnet_serve_batch_tiles_count"] - before.get(
        "overnet_serve_batch_tiles_count", 0
    )
    assert runs < tiles  # batch fill > 1: fewer runs than tiles
    shared = (
        after["overnet_serve_batch_requests_count"]
        - after['overnet_serve_batch_requests_bucket{le="1"}']
    )
    assert shared >= 1  # at least one run held tiles of several requests


def test_the_token_is_enforced(service, client):
    for token in (None, "wrong-token", TOKEN + "x"):
        stranger = Client(service, token=token or "")
        with pytest.raises(ServiceError) as caught:
            stranger.upscale(encoded(noise(40, 30)))
        assert (caught.value.status, caught.value.kind) == (401, "unauthorized")
        with pytest.raises(ServiceError):
            stranger.metrics()
    assert client.upscale(encoded(noise(40, 30))).content_type == "image/png"
    deadline = time.monotonic() + 10
    while _metric(client, 'overnet_serve_errors_total{kind="unauthorized"}') < 6:
        assert time.monotonic() < deadline, client.metrics()
        time.sleep(0.5)
    text = client.metrics()
    assert 'overnet_serve_requests_total{path="/v1/upscale",status="401"}' in text
    assert "overnet_serve_request_seconds_bucket" in text and "overnet_serve_queue_tiles" in text


def test_bad_uploads_are_refused_alone_and_the_service_keeps_answering(client, tmp_path):
    """The bad-input corpus as uploads: each bad body a 4xx with one line (never a 500
    after the compute), each good one upscaled, and the service answers afterwards."""
    from tests.jobs.corpus import make_corpus

    expected = make_corpus(tmp_path / "corpus")
    for name, outcome in expected.items():
        body = (tmp_path / "corpus" / name).read_bytes()
        if outcome == "done":
            assert client.upscale(body).data, name
            continue
        with pytest.raises(ServiceError) as caught:
            client.upscale(body)
        assert 400 <= caught.value.status < 500, (name, caught.value)
        assert "\n" not in caught.value.message and "/tmp" not in caught.value.message
    assert client.upscale(encoded(noise(40, 30))).content_type == "image/png"
