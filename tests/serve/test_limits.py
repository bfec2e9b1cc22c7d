"""Every refusal of a real Ray Serve app has its status code and a JSON body, and the next
good request still succeeds; stopping the service drains an in-flight request.

The app here batches slowly on purpose (a batch waits 1.5 s for more tiles), so that a
request is reliably in flight while the queue-full and drain cases run.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse

import pytest
from PIL import Image

from overnet.serve import Client, Limits, ServiceConfig, ServiceError
from tests.serve.conftest import encoded, free_port, noise

pytest.importorskip("ray.serve")
WAIT_MS = 1500
LIMITS = Limits(max_body_bytes=20_000, max_pixels=96 * 64, timeout_s=30, max_queue=1)
GOOD = encoded(noise(40, 30, seed=1))


@pytest.fixture(scope="module")
def service(ray_instance, x2_onnx):
    pytest.importorskip("onnxruntime")
    from overnet.serve.app import run_service

    config = ServiceConfig(
        model=str(x2_onnx), backend="onnxruntime", threads=2, tile=32, overlap=8,
        max_batch=64, max_wait_ms=WAIT_MS, limits=LIMITS, drain_s=20,
    )  # fmt: skip
    return run_service(config, "127.0.0.1", free_port())


def send(url: str, method: str, path: str, body=None, headers=None, chunked=False):
    """(status, headers, body) of one request; bounded by a 60 s socket timeout."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def good_request_succeeds(url: str) -> None:
    status, headers, body = send(url, "POST", "/v1/upscale", GOOD)
    assert status == 200 and headers["content-type"] == "image/png" and body[:4] == b"\x89PNG"


def noisy_bytes(n: int) -> bytes:
    return bytes(range(256)) * (n // 256 + 1)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", "/v1/upscale", noisy_bytes(30_000), 413, "body_too_large"),
        ("POST", "/v1/upscale", encoded(Image.new("RGB", (100, 70))), 413, "too_many_pixels"),
        ("POST", "/v1/upscale", b"hello, not an image", 415, "unsupported_media"),
        ("POST", "/v1/upscale", b"", 415, "unsupported_media"),
        ("POST", "/v1/upscale", encoded(noise(20, 20), "GIF"), 415, "unsupported_media"),
        ("POST", "/v1/upscale?quality=0", GOOD, 400, "bad_request"),
        ("POST", "/v1/upscale?scale=3", GOOD, 400, "bad_request"),
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


def test_a_timed_out_request_leaves_nothing_queued(service):
    from overnet.serve.metrics import parse

    status, _, _ = send(service, "POST", "/v1/upscale?timeout=0.2", GOOD)
    assert status == 504
    deadline = time.monotonic() + 20  # its tiles are dropped by the batcher; reports each 1 s
    while True:
        values = parse(Client(service, token="").metrics())
        if values["overnet_serve_queue_tiles"] == values["overnet_serve_in_flight"] == 0:
            break
        assert time.monotonic() < deadline, values
        time.sleep(0.5)


def test_a_chunked_body_is_cut_off_at_the_limit(service):
    chunks = iter([noisy_bytes(8_000)] * 4)  # no Content-Length: counted while read
    status, _, raw = send(service, "POST", "/v1/upscale", chunks, chunked=True)
    assert status == 413 and json.loads(raw)["error"]["kind"] == "body_too_large"
    good_request_succeeds(service)


def _in_background(url: str) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(send(url, "POST", "/v1/upscale", GOOD)))
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
    metrics = Client(service, token="").metrics()
    assert 'overnet_serve_errors_total{kind="queue_full"}' in metrics


def test_stopping_drains_the_request_in_flight(service):
    from overnet.serve.app import stop_service

    thread, outcome = _in_background(service)
    started = time.monotonic()
    stop_service()  # deletes the app (replicas drain), then stops Serve
    thread.join(60)
    assert outcome, "the in-flight request got no answer"
    status, _, body = outcome[0]
    assert status == 200 and body[:4] == b"\x89PNG", body[:200]
    assert time.monotonic() - started < 30
    with pytest.raises(OSError):  # nothing listens any more
        send(service, "GET", "/healthz")
