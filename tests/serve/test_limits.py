"""Every refusal of a real Ray Serve app has its status code and a JSON body, and the next
good request still succeeds; a body over the limit is refused by the proxy before the
replica sees it; a replica admits requests by memory; a client that goes away stops its
request's work; two services share one cluster and one stops alone; a service whose
replicas cannot be placed fails after its start timeout, naming the resource.

The app here batches slowly on purpose (a batch waits 1.5 s for more tiles), so that a
request is reliably in flight while the queue-full, disconnect and drain cases run.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse

import pytest
from PIL import Image

from overnet.errors import OverNetError
from overnet.serve import Client, Limits, ServiceConfig, ServiceError
from overnet.serve.metrics import parse
from tests.serve.conftest import encoded, free_port, local_ray, noise

pytest.importorskip("ray.serve")
WAIT_MS = 1500
LIMITS = Limits(
    max_body_bytes=20_000, max_pixels=200 * 160, timeout_s=30, max_queue=1, memory_wait_s=0
)
GOOD = encoded(noise(40, 30, seed=1))
PREFIX = "/limits"


@pytest.fixture(scope="module")
def cluster():
    """One local Ray whose proxies refuse bodies over the limit under PREFIX (the
    environment `overnet serve` sets before it starts Ray)."""
    from overnet.serve.proxy_limits import proxy_environment

    with local_ray(proxy_environment({PREFIX: LIMITS.max_body_bytes})):
        yield


@pytest.fixture(scope="module")
def port(cluster):
    return free_port()


@pytest.fixture(scope="module")
def service(cluster, port, x2_onnx):
    pytest.importorskip("onnxruntime")
    from overnet.serve.app import run_service

    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=1, tile=32, overlap=8,
        max_batch=64, max_wait_ms=WAIT_MS, limits=LIMITS, drain_s=20, name="limits",
        route_prefix=PREFIX, max_memory="400MB",
    )  # fmt: skip
    return run_service(config, "127.0.0.1", port)


def smooth(width: int, height: int, seed: int) -> bytes:
    """A PNG of a gradient (small on the wire, under the 20 KB body limit)."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y + seed) % 256], axis=2)
    return encoded(Image.fromarray(pixels.astype(np.uint8)))


def send(url: str, method: str, path: str, body=None, headers=None, chunked=False):
    """(status, headers, body) of one request to ``path`` under ``url``'s prefix;
    bounded by a 60 s socket timeout."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(
            method, parts.path + path, body=body, headers=headers or {}, encode_chunked=chunked
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def good_request_succeeds(url: str) -> None:
    status, headers, body = send(url, "POST", "/v1/upscale", GOOD)
    assert status == 200 and headers["content-type"] == "image/png" and body[:4] == b"\x89PNG"


def noisy_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256 + 1)


def metrics(url: str) -> dict[str, float]:
    return parse(Client(url).metrics())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", "/v1/upscale", encoded(Image.new("RGB", (250, 170))), 413, "too_many_pixels"),
        ("POST", "/v1/upscale", b"hello, not an image", 415, "unsupported_media"),
        ("POST", "/v1/upscale", b"", 415, "unsupported_media"),
        ("POST", "/v1/upscale", encoded(noise(20, 20), "GIF"), 415, "unsupported_media"),
        ("POST", "/v1/upscale?quality=0", GOOD, 400, "bad_request"),
        ("POST", "/v1/upscale?scale=3", GOOD, 400, "bad_request"),  # an ONNX file: x2 only
        ("POST", "/v1/upscale?size=2", GOOD, 400, "bad_request"),
        ("POST", "/v1/upscale?format=jpg", encoded(noise(20, 20, "RGBA")), 400, "bad_request"),
        ("POST", "/v1/upscale?timeout=0.2", GOOD, 504, "timeout"),
        ("GET", "/v1/upscale", None, 405, "method_not_allowed"),
        ("POST", "/v2/anything", GOOD, 404, "not_found"),
    ],
)
def test_each_refusal_then_a_good_request(service, method, path, body, status, kind):
    got, headers, raw = send(service, method, path, body)
    assert got == status, raw
    assert headers["content-type"] == "application/json"
    error = json.loads(raw)["error"]
    assert (error["status"], error["kind"]) == (status, kind) and error["message"]
    good_request_succeeds(service)


def test_a_large_body_is_refused_by_the_proxy_before_the_replica(service):
    before = metrics(service).get('overnet_serve_errors_total{kind="body_too_large"}', 0)
    for chunked in (False, True):
        body = iter([noisy_bytes(8_000)] * 4) if chunked else noisy_bytes(30_000)
        status, _, raw = send(service, "POST", "/v1/upscale", body, chunked=chunked)
        assert status == 413 and json.loads(raw)["error"]["kind"] == "body_too_large"
    good_request_succeeds(service)
    time.sleep(1.5)  # a replica's report would have come
    after = metrics(service).get('overnet_serve_errors_total{kind="body_too_large"}', 0)
    assert after == before  # no replica saw them: the proxy answered


def _in_background(url: str, body: bytes = GOOD) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(send(url, "POST", "/v1/upscale", body)))
    thread.start()
    time.sleep(0.5)  # well inside the 1.5 s the request's tiles wait for a batch
    return thread, outcome


def test_queue_full_is_503_with_retry_after(service):
    thread, outcome = _in_background(service)
    try:
        with pytest.raises(ServiceError) as caught:
            Client(service, token="").upscale(GOOD)
        assert (caught.value.status, caught.value.kind) == (503, "queue_full")
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    finally:
        thread.join(60)
    assert outcome and outcome[0][0] == 200  # the request that held the queue finished
    good_request_succeeds(service)


def _wait_idle(url: str, seconds: float) -> dict[str, float]:
    deadline = time.monotonic() + seconds
    while True:
        values = metrics(url)
        idle = values["overnet_serve_in_flight"] == values["overnet_serve_memory_bytes"] == 0
        if idle and values["overnet_serve_queue_tiles"] == 0:
            return values
        assert time.monotonic() < deadline, values
        time.sleep(0.25)


def test_a_disconnected_clients_work_stops_within_a_tile_group(service):
    """A 200x160 image in 32-pixel tiles is 48 tiles, one group per 1.5 s batch wait:
    the client hangs up during the first group; the request's work stops there (no
    tile handed to the batcher after), its memory is back and its thread ended."""
    _wait_idle(service, 20)
    before = metrics(service)
    parts = urllib.parse.urlsplit(service)
    body = smooth(200, 160, seed=3)
    assert len(body) < LIMITS.max_body_bytes
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as raw:
        head = (
            f"POST {parts.path}/v1/upscale HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: image/png\r\n\r\n"
        )
        raw.sendall(head.encode() + body)
        time.sleep(1.0)  # its first tile group waits in the batcher
    hung_up = time.monotonic()
    after = _wait_idle(service, WAIT_MS / 1e3 + 8)  # within the group in flight
    stopped = time.monotonic() - hung_up
    tiles = after["overnet_serve_tiles_total"] - before["overnet_serve_tiles_total"]
    assert after["overnet_serve_cancelled_total"] - before["overnet_serve_cancelled_total"] == 1
    assert 0 < tiles < 48, tiles  # one group handed over, not the whole image
    assert stopped < WAIT_MS / 1e3 + 6, stopped
    time.sleep(2 * WAIT_MS / 1e3)
    assert metrics(service)["overnet_serve_tiles_total"] == after["overnet_serve_tiles_total"]
    good_request_succeeds(service)


def test_a_request_over_the_free_memory_is_503_and_others_are_served(service):
    """Two 200x160 requests at once: each image's plan takes most of the replica's 400 MB,
    so the second is refused at once (--memory-wait 0) with Retry-After."""
    big = smooth(200, 160, seed=4)
    thread, outcome = _in_background(service, big)
    try:
        config_queue = send(service, "GET", "/v1/models")
        assert json.loads(config_queue[2])["max_memory_bytes"] == 400_000_000
        status, headers, raw = send(service, "POST", "/v1/upscale", big)
        assert status == 503, raw
        assert json.loads(raw)["error"]["kind"] in ("busy", "queue_full")
        assert int(headers["retry-after"]) >= 1
    finally:
        thread.join(60)
    assert outcome and outcome[0][0] == 200
    _wait_idle(service, 20)


def test_a_second_service_shares_the_cluster_and_stops_alone(service, port, x2_onnx):
    from overnet.serve.app import run_service, stop_service

    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=1, name="second",
        route_prefix="/second", num_cpus=0.5,
    )  # fmt: skip
    taken_name = ServiceConfig(model=str(x2_onnx), name="limits", route_prefix="/x")
    with pytest.raises(OverNetError, match="a service named 'limits' already runs"):
        run_service(taken_name, "127.0.0.1", port)
    taken_route = ServiceConfig(model=str(x2_onnx), name="x", route_prefix=PREFIX)
    with pytest.raises(OverNetError, match=f"Prefix {PREFIX} is being used by application"):
        run_service(taken_route, "127.0.0.1", port)
    second = run_service(config, "127.0.0.1", port)
    try:
        assert second == f"http://127.0.0.1:{port}/second"
        good_request_succeeds(second)
        good_request_succeeds(service)
    finally:
        stop_service("second")
    good_request_succeeds(service)  # the first one keeps serving
    assert send(second, "GET", "/healthz")[0] == 404  # the second one is gone


def test_a_service_whose_replicas_cannot_be_placed_fails_naming_the_resource(cluster, port):
    from ray import serve

    from overnet.serve.app import run_service

    config = ServiceConfig(
        model="m.onnx", num_gpus=1, name="no-gpu", route_prefix="/no-gpu", start_timeout_s=2,
        drain_s=1,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(OverNetError) as caught:
        run_service(config, "127.0.0.1", port)
    assert "each replica needs GPU 1, and the whole cluster has GPU 0" in str(caught.value)
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 20
    while "no-gpu" in serve.status().applications:  # nothing left behind
        assert time.monotonic() < deadline, serve.status().applications["no-gpu"]
        time.sleep(0.5)


def test_stopping_drains_the_request_in_flight(service):
    from overnet.serve.app import stop_service

    thread, outcome = _in_background(service)
    started = time.monotonic()
    stop_service("limits")  # deletes this application; its replica drains first
    thread.join(60)
    assert outcome, "the in-flight request got no answer"
    status, _, body = outcome[0]
    assert status == 200 and body[:4] == b"\x89PNG", body[:200]
    assert time.monotonic() - started < 30
    assert send(service, "GET", "/healthz")[0] == 404  # the proxy stays; the route is gone
