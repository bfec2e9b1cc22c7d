"""The web page of `overnet serve` at `/`: its files (package data, no outside resources),
served without a token by a real `overnet serve` (a subprocess with its own local Ray), and
driven in a real headless Chromium: the token flow shows the API's own messages, an image
uploaded through the page downloads as exactly the API's answer to the same request."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from PIL import Image

from overnet.serve import Client, ServiceError
from overnet.serve.webpage import CONTENT_SECURITY_POLICY, FILES, PATHS, asset
from tests.browser import browser, page  # noqa: F401  (fixtures)
from tests.serve.conftest import encoded, free_port, noise

TOKEN = "page-test-token"
#: the service runs under a route prefix: the page's relative links must stay below it
ROUTE_PREFIX = "/sr"
#: where the upload test also saves its screenshot (docs/images/serve-page.png is made so)
SCREENSHOT_ENV = "OVERNET_PAGE_SCREENSHOT"
PAGE_DIR = resources.files("overnet.serve").joinpath("page")


# ---------------------------------------------------------------- the files alone


def test_every_file_of_the_page_folder_is_served_and_every_served_file_exists():
    shipped = {entry.name for entry in PAGE_DIR.iterdir() if entry.is_file()}
    assert shipped == {name for name, _ in FILES.values()}
    for path in PATHS:
        assert asset(path).body == PAGE_DIR.joinpath(FILES[path][0]).read_bytes()
    assert asset("/page/missing.js") is None and asset("/index.html") is None


def test_the_page_under_a_route_prefix_is_redirected_to_its_folder():
    """At /sr the page's relative links would leave the prefix (sr/page/app.js -> /page/...):
    it is sent to /sr/, where they stay below it; at /sr/ or / it is the page itself."""
    moved = asset("/", "/sr")
    assert (moved.status, moved.headers["Location"], moved.body) == (308, "/sr/", b"")
    for url_path in ("/sr/", "/", None):
        assert asset("/", url_path).status == 200
        assert asset("/", url_path).body.startswith(b"<!doctype html>")
    assert asset("/page/app.js", "/sr/page/app.js").status == 200


def test_the_page_loads_nothing_from_outside_the_service():
    html = asset("/").body.decode()
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    # relative: under a route prefix (/sr/) they stay below it
    assert sorted(set(references)) == ["page/app.css", "page/app.js", "page/icon.svg"]
    for path in PATHS:
        text = asset(path).body.decode()
        assert not re.search(r"(?:https?:)?//[\w.-]+\.\w", _strip_js_comments(text)), path
    # and the browser is told so: scripts, styles and fetches from the service only
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert (
        "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    )


def _strip_js_comments(text: str) -> str:
    """The text without whole-line // comments and XML namespace names (not loaded)."""
    return re.sub(r'^\s*//.*$|xmlns="[^"]*"', "", text, flags=re.MULTILINE)


def test_the_page_calls_only_the_public_api():
    script = asset("/page/app.js").body.decode()
    calls = set(re.findall(r"(?:fetch\(|open\(\"POST\", )[`\"']([^`\"'?]+)", script))
    assert calls == {"v1/models", "v1/upscale"}


# ---------------------------------------------------------------- a real `overnet serve`


def _wait_ready(url: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or another of Ray's processes answered on the port
        time.sleep(1)
    raise AssertionError(
        f"overnet serve was not ready within {seconds} s: {log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def service(x2_weights, tmp_path_factory) -> Iterator[str]:
    """`overnet serve` of the x2 checkpoint (it serves any scale in (1, 3]) with a token,
    at http://127.0.0.1:PORT/sr, in a subprocess (its own local Ray); SIGTERM after."""
    pytest.importorskip("ray.serve")
    pytest.importorskip("onnxruntime")
    port = free_port()
    command = [
        sys.executable, "-m", "overnet.cli", "serve", str(x2_weights), "--backend", "onnxruntime",
        "--threads", "1", "--port", str(port), "--route-prefix", ROUTE_PREFIX,
    ]  # fmt: skip
    folder = tmp_path_factory.mktemp("serve-page")
    log = folder / "serve.log"
    # a cache of its own: the checkpoint's export is made here, not in the user's cache
    env = {**os.environ, "OVERNET_SERVE_TOKEN": TOKEN, "OVERNET_CACHE": str(folder / "cache")}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}{ROUTE_PREFIX}"
    try:
        _wait_ready(url, process, log, 150)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.mark.slow  # the service's start: about a minute on 2 cores
def test_the_page_is_served_without_a_token(service):
    for path, (_, content_type) in FILES.items():
        status, headers, body = _get(service + path)
        assert (status, headers["content-type"]) == (200, content_type), path
        assert body == asset(path).body
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = _get(service + "/", "POST")
    assert (status, headers["allow"]) == (405, "GET")
    assert json.loads(body)["error"]["kind"] == "method_not_allowed"
    status, _, body = _get(service + "/v1/models")  # the API itself still needs the token
    assert (status, json.loads(body)["error"]["kind"]) == (401, "unauthorized")


# ---------------------------------------------------------------- in Chromium


def _api_message(call) -> str:
    with pytest.raises(ServiceError) as caught:
        call()
    return caught.value.message


def _open_with_token(page, url: str) -> None:  # noqa: F811
    page.goto(url)
    page.locator("#token").fill(TOKEN)
    page.locator("#token-use").click()
    page.locator("#service").filter(has_text="x2 on onnxruntime").wait_for()
    assert page.locator("#error").is_hidden()


@pytest.mark.slow
def test_the_page_asks_for_the_token_and_shows_the_apis_message(page, service):  # noqa: F811
    missing = _api_message(lambda: Client(service, token="").models())
    wrong = _api_message(lambda: Client(service, token="not-it").models())
    page.goto(service)  # .../sr: sent on to .../sr/, where the relative links stay below
    assert page.url == service + "/"
    page.locator("#token").wait_for(state="visible")
    assert page.locator("#error-message").inner_text() == missing
    assert "401 unauthorized" in page.locator("#error-detail").inner_text()
    page.locator("#token").fill("not-it")
    page.locator("#token-use").click()
    page.locator("#token-hint").filter(has_text="refused this token").wait_for()
    assert page.locator("#error-message").inner_text() == wrong
    page.locator("#token").fill(TOKEN)
    page.locator("#token-use").click()
    page.locator("#token-hint").filter(has_text="Token accepted").wait_for()
    assert page.locator("#error").is_hidden()
    # the service's default scale first, up to the largest scale it takes
    default, largest = _scales(service)
    assert page.locator("#scale").input_value() == f"{default:g}"
    assert page.locator("#scale").get_attribute("max") == f"{largest:g}"


def _scales(url: str) -> tuple[float, float]:
    """The default and the largest scale of GET /v1/models, in either of its shapes:
    {"models", "default_scale", "max_scale"}, or one model's {"scale", "upscale"}."""
    request = urllib.request.Request(
        url + "/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    models = body["models"]
    default = body.get("default_scale", models[0].get("scale"))
    largest = body.get("max_scale") or max(m.get("upscale") or m["scale"] for m in models)
    return float(default), float(largest)


def _sample(set5: Path | None) -> Image.Image:
    """A crop of Set5's butterfly (a photo shows what the model does), else noise; sides
    that x2.5 keeps whole."""
    if set5 is None:
        return noise(120, 96, seed=3)
    with Image.open(set5 / "HR" / "butterfly.png") as image:
        return image.convert("RGB").crop((40, 60, 200, 188))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from tests.conftest import SHARED

    set5 = SHARED / "data" / "Set5"
    path = tmp_path_factory.mktemp("page-input") / "butterfly.png"
    _sample(set5 if set5.is_dir() else None).save(path)
    return path


@pytest.mark.slow
# 2.5: any scale the service takes, not only the model's own (the overscale path)
@pytest.mark.parametrize(("scale", "fmt", "quality"), [(2, "png", None), (2.5, "webp", 80)])
def test_an_upload_through_the_page_downloads_the_apis_answer(
    page,  # noqa: F811
    service,
    sample,
    tmp_path,
    scale,
    fmt,
    quality,
):
    width, height = Image.open(sample).size
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    _open_with_token(page, service)
    page.locator("#file").set_input_files(sample)
    page.locator("#file-info").filter(has_text=f"{width}×{height}").wait_for()
    page.locator("#scale").fill(f"{scale:g}")
    page.locator("#format").select_option(fmt)
    if quality is not None:
        assert page.locator("#quality").is_visible()  # a lossy format: its quality asked
        page.locator("#quality").evaluate(
            "(el, q) => { el.value = q; el.dispatchEvent(new Event('input')); }", str(quality)
        )
    else:
        assert page.locator("#quality").is_hidden()
    # every text the progress line shows while the request runs
    page.evaluate(
        """() => {
            window.progressTexts = [];
            new MutationObserver(() => progressTexts.push(
                document.getElementById("progress-text").textContent
            )).observe(document.getElementById("progress-text"), {childList: true});
        }"""
    )
    page.locator("#go").click()
    _wait_for_result(page)
    texts = page.evaluate("progressTexts")
    assert texts[0].startswith("Uploading"), texts
    assert any(t.startswith(f"Upscaling ×{scale:g} on the service") for t in texts), texts
    assert page.locator("#progress").is_hidden()
    with page.expect_download() as download_info:
        page.locator("#download").click()
    download = download_info.value
    assert download.suggested_filename == f"butterfly_x{scale:g}.{fmt}"
    downloaded = Path(download.path()).read_bytes()

    answer = Client(service, token=TOKEN, timeout=60).upscale(
        sample.read_bytes(), scale=scale, format=fmt, quality=quality
    )
    assert downloaded == answer.data  # byte for byte the API's answer to the same request
    out_width, out_height = round(scale * width), round(scale * height)  # whole: see _sample
    assert Image.open(io.BytesIO(downloaded)).size == (out_width, out_height)

    # the viewer: the result decoded at its size, the slider over the input, zoom, side by side
    page.wait_for_function(f"document.getElementById('after').naturalWidth === {out_width}")
    assert page.locator("#divider").is_visible() and page.locator("#viewport-side").is_hidden()
    page.locator("#zoom-4").click()
    assert page.locator("#zoom-value").inner_text() == "400%"
    page.locator("#mode-side").click()
    assert page.locator("#viewport-side").is_visible() and page.locator("#divider").is_hidden()
    assert f"{out_width}×{out_height}" in page.locator("#result-info").inner_text()
    if fmt == "png":
        _screenshot(page, tmp_path)
    origin = service.removesuffix(ROUTE_PREFIX)
    inside = (service + "/", f"blob:{origin}/")  # and .../sr itself, sent on to .../sr/
    outside = [u for u in requested if u != service and not u.startswith(inside)]
    assert not outside and service + "/v1/models" in requested


def _screenshot(page, tmp_path: Path) -> None:  # noqa: F811
    """The slider view, fitted: saved, and kept where asked."""
    page.locator("#mode-slider").click()
    page.locator("#zoom-fit").click()
    path = tmp_path / "serve-page.png"
    page.screenshot(path=path)
    assert Image.open(path).size == (1280, 900)
    if os.environ.get(SCREENSHOT_ENV):
        Path(os.environ[SCREENSHOT_ENV]).write_bytes(path.read_bytes())


@pytest.mark.slow
def test_a_refused_upload_shows_the_apis_message_and_the_next_one_works(
    page,  # noqa: F811
    service,
    tmp_path,
):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"these are notes, not an image")
    expected = _api_message(lambda: Client(service, token=TOKEN).upscale(bad.read_bytes()))
    _open_with_token(page, service)
    _drop(page, bad)  # dropped on the page this time, not picked
    page.locator("#file-info").filter(has_text="notes.png").wait_for()
    page.locator("#go").click()
    page.locator("#error").wait_for(state="visible")
    assert page.locator("#error-message").inner_text() == expected
    assert "415 unsupported_media" in page.locator("#error-detail").inner_text()
    good = tmp_path / "small.png"
    good.write_bytes(encoded(noise(40, 30)))
    page.locator("#file").set_input_files(good)
    page.locator("#go").click()
    _wait_for_result(page)
    assert page.locator("#error").is_hidden()


def _drop(page, path: Path) -> None:  # noqa: F811
    """Drops ``path`` on the drop zone as a browser does (a drop event with the file)."""
    page.locator("#drop").evaluate(
        """(zone, [name, bytes]) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }""",
        [path.name, list(path.read_bytes())],
    )


def _wait_for_result(page) -> None:  # noqa: F811
    """Until the download link or an error shows; an error fails with its message."""
    page.locator("#download:visible, #error:visible").first.wait_for(timeout=120_000)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()


@pytest.mark.slow
def test_cancel_aborts_the_request_and_the_next_one_works(page, service, tmp_path):  # noqa: F811
    large = tmp_path / "large.png"  # a few seconds of work on one thread: time to cancel
    large.write_bytes(encoded(noise(320, 240, seed=5)))
    _open_with_token(page, service)
    page.locator("#file").set_input_files(large)
    page.locator("#go").click()
    page.locator("#progress-text").filter(has_text="on the service").wait_for()
    page.locator("#cancel").click()
    page.locator("#progress-text").filter(has_text="Cancelled.").wait_for()
    assert page.locator("#download").is_hidden() and page.locator("#error").is_hidden()
    assert page.locator("#go").is_enabled() and page.locator("#cancel").is_hidden()
    small = tmp_path / "small.png"
    small.write_bytes(encoded(noise(40, 30)))
    page.locator("#file").set_input_files(small)
    page.locator("#go").click()
    _wait_for_result(page)
