"""A real Ray Serve app on a local Ray (2 CPUs) over real HTTP, serving the x2 and x3
checkpoints together: any scale per request goes to the model that covers it and the
answer is `overnet upscale --scale S`'s output byte for byte, concurrent requests of
different sizes and scales share batches, the bearer token is enforced, metrics count
what happened, bad uploads are refused alone."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.serve import AsyncClient, Client, ServiceConfig, ServiceError
from overnet.serve.auth import token_digest
from overnet.serve.metrics import parse
from tests.serve.conftest import encoded, free_port, noise

pytest.importorskip("ray.serve")
TOKEN = "serve-test-token"
#: the command's own tile plan at this budget: the larger images below run in tiles
MAX_MEMORY = "300MB"
#: (scale, width, height) of the concurrent requests: both models, integer and
#: fractional scales, whole and tiled images
#: the models' names: their file names
X2, X3 = "OverNet_x2", "OverNet_x3"
REQUESTS = [(1.3, 90, 70), (2.0, 64, 48), (2.5, 80, 60), (3.0, 72, 56), (1.7, 260, 200)]


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
def service(ray_instance, x2_weights, x3_weights, backend):
    from overnet.serve.app import run_service, stop_service

    config = ServiceConfig(
        models=(str(x2_weights), str(x3_weights)), backend=backend, precision="fp32", threads=1,
        max_memory=MAX_MEMORY, max_batch=16, max_wait_ms=150, token_sha256=token_digest(TOKEN),
        name="overnet-test",
    )  # fmt: skip
    url = run_service(config, "127.0.0.1", free_port())
    yield url
    stop_service(config.name)


@pytest.fixture(scope="module")
def client(service):
    return Client(service, token=TOKEN, timeout=120)


@pytest.fixture(scope="module")
def command_outputs(tmp_path_factory, x2_weights, x3_weights, backend):
    """`overnet upscale --scale S` on each request's image, with the service's options:
    (scale, width, height) -> the output file's bytes."""
    from overnet.cli import main

    folder = tmp_path_factory.mktemp("cmd")
    outputs = {}
    for i, (scale, width, height) in enumerate(REQUESTS):
        source = folder / f"in{i}.png"
        noise(width, height, seed=i).save(source)
        weights = x2_weights if scale <= 2 else x3_weights
        out = folder / f"out{i}"
        args = [
            "upscale", str(source), "-o", str(out), "--weights", str(weights), "--scale",
            str(scale), "--backend", backend, "--precision", "fp32", "--threads", "1",
            "--max-memory", MAX_MEMORY,
        ]  # fmt: skip
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        (made,) = out.iterdir()
        outputs[(scale, width, height)] = (source.read_bytes(), made.read_bytes())
    return outputs


def test_health_and_models(service, client, backend):
    health = Client(service).health()  # no token needed
    assert health["status"] == "ok" and health["models"] == [X2, X3]
    info = client.info()
    assert info["max_scale"] == 4.0 and info["default_scale"] == 2.0
    x2, x3 = info["models"]
    assert (x2["name"], x2["scale"], x2["upscale"], x2["backend"]) == (X2, 2.0, 3, backend)
    assert (x2["scale_min"], x2["scale_max"], x2["any_scale"]) == (1.0, 2.0, True)
    assert (x3["name"], x3["scale_min"], x3["scale_max"]) == (X3, 2.0, 4.0)
    assert client.models() == info["models"]


def test_mixed_scales_and_sizes_at_once_equal_the_command(client, command_outputs):
    """Concurrent requests at 1.3, 1.7, 2, 2.5 and 3 over two models, whole and tiled:
    each answer is `overnet upscale --scale S`'s file, byte for byte."""
    items = list(command_outputs.items())

    async def send_all():
        asynchronous = AsyncClient(client.url, token=TOKEN, timeout=120)
        return await asyncio.gather(
            *(asynchronous.upscale(source, scale=scale) for (scale, _, _), (source, _) in items)
        )

    results = asyncio.run(send_all())
    for ((scale, width, height), (_, expected)), result in zip(items, results, strict=True):
        assert result.headers["x-overnet-model"] == (X2 if scale <= 2 else X3)
        assert result.headers["x-overnet-scale"] == f"{scale:g}"
        assert result.data == expected, (scale, width, height)
    tiled = [r for r in results if int(r.headers["x-overnet-tiles"]) > 1]
    assert tiled  # the large image ran in tiles, as the command cut it


def test_a_scale_no_model_serves_is_400(client):
    for scale, message in (("4.5", "at most 4"), ("1", "above 1"), ("0.5", "above 1")):
        with pytest.raises(ServiceError) as caught:
            client.upscale(encoded(noise(20, 16)), scale=float(scale))
        assert caught.value.status == 400 and message in caught.value.message
    with pytest.raises(ServiceError) as caught:
        client._request("POST", "/v1/upscale", encoded(noise(20, 16)), {"model": "x9"})
    assert (
        caught.value.status == 400 and f"no model 'x9'; served: {X2}, {X3}" in caught.value.message
    )


def test_tiles_of_requests_at_different_scales_share_runs(client):
    """1.3 and 1.7 run on the x2 model's features graph: their tiles share batches."""
    before = parse(client.metrics())

    async def send_pairs():
        asynchronous = AsyncClient(client.url, token=TOKEN, timeout=120)
        jobs = [
            asynchronous.upscale(encoded(noise(40, 32, seed=s)), scale=scale)
            for s, scale in enumerate((1.3, 1.7, 1.5, 1.9))
        ]
        return await asyncio.gather(*jobs)

    results = asyncio.run(send_pairs())
    assert {r.headers["x-overnet-model"] for r in results} == {X2}
    deadline = time.monotonic() + 20  # replicas report every second
    while True:
        after = parse(client.metrics())
        runs = after["overnet_serve_batch_tiles_count"] - before["overnet_serve_batch_tiles_count"]
        single = after['overnet_serve_batch_requests_bucket{le="1"}'] - before.get(
            'overnet_serve_batch_requests_bucket{le="1"}', 0
        )
        if (
            runs >= 1
            and after["overnet_serve_tiles_total"] - before["overnet_serve_tiles_total"] >= 4
        ):
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.5)
    assert runs - single >= 1  # a run held tiles of requests at different scales


def test_the_token_is_enforced(service, client):
    for token in ("", "wrong-token", TOKEN + "x"):
        stranger = Client(service, token=token)
        with pytest.raises(ServiceError) as caught:
            stranger.upscale(encoded(noise(40, 30)))
        assert (caught.value.status, caught.value.kind) == (401, "unauthorized")
        with pytest.raises(ServiceError):
            stranger.metrics()
    assert client.upscale(encoded(noise(40, 30))).content_type == "image/png"
    deadline = time.monotonic() + 10
    while parse(client.metrics()).get('overnet_serve_errors_total{kind="unauthorized"}', 0) < 6:
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
    result = client.upscale(encoded(noise(40, 30)))
    assert Image.open(io.BytesIO(result.data)).size == (80, 60)
    assert np.asarray(Image.open(io.BytesIO(result.data))).std() > 0
