"""The web export's WebGPU path in Debian's Chromium: with ``--enable-unsafe-webgpu`` the
browser offers SwiftShader's software WebGPU adapter (no GPU here), the page loads
onnxruntime-web's WebGPU build and runs the model on the ``webgpu`` provider, and the
downloaded PNG matches overnet's Python runtime on the same file. This shows the WebGPU
code path is right (shaders, layouts, the provider chosen); SwiftShader's speed says
nothing about a real GPU's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser import DEFAULT_TIMEOUT_MS, chromium
from tests.conftest import shared_file
from tests.export.test_web_browser import _psnr, _python_upscaler, _upscale
from tests.export.web_fixtures import (  # noqa: F401
    ort_tarball,
    served_site,
    site_url,
    x2_site,
)

#: a software adapter runs the whole model on the CPU's SIMD: slow, but bounded
WEBGPU_TIMEOUT_MS = 3 * DEFAULT_TIMEOUT_MS


@pytest.fixture(scope="module")
def webgpu_page() -> Iterator[Any]:
    """A page in a Chromium that offers WebGPU (SwiftShader's adapter)."""
    with chromium("--enable-unsafe-webgpu") as browser:
        context = browser.new_context(accept_downloads=True)
        context.set_default_timeout(WEBGPU_TIMEOUT_MS)
        yield context.new_page()


def _open(page, url: str) -> Any:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#runtime:not([data-state=loading])")
    return page.locator("#runtime")


@pytest.mark.slow
def test_webgpu_only_after_its_self_check(webgpu_page, site_url, x2_site, tmp_path):  # noqa: F811
    page = webgpu_page
    status = _open(page, site_url)  # auto: WebGPU when the browser has an adapter
    assert status.get_attribute("data-state") == "ready", status.inner_text()
    backend, fallback = status.get_attribute("data-backend"), status.get_attribute("data-fallback")
    difference = float(status.get_attribute("data-self-check"))
    if backend == "webgpu":  # the adapter computes the graph right: it is used
        assert difference <= 2e-3 and not fallback
    else:  # SwiftShader's adapter here: its output fails the check, WASM runs instead
        assert backend == "wasm" and difference <= 1e-4
        assert "swiftshader" in fallback.lower() and "self-check" in fallback
        assert "running on WASM instead" in status.inner_text()

    # a 48x40 crop, one whole tile: SwiftShader takes minutes for the full 128x128
    with Image.open(shared_file("data", "Set5", "LR_bicubic", "X2", "butterflyx2.png")) as img:
        img.crop((40, 30, 88, 70)).save(tmp_path / "crop.png")
    web_plan = _upscale(page, tmp_path / "crop.png", tmp_path / "out.png")
    upscaler = _python_upscaler(x2_site)
    with Image.open(tmp_path / "crop.png") as img:
        plan = upscaler.plan(img.height, img.width)
        expected = np.asarray(upscaler.upscale(img))
    assert web_plan["tiles"] == [[t.y0, t.y1, t.x0, t.x1] for t in plan.tiles] == [[0, 40, 0, 48]]
    with Image.open(tmp_path / "out.png") as out:
        got = np.asarray(out)
    assert got.shape == expected.shape == (80, 96, 3)
    assert _psnr(got, expected) >= 50 and np.abs(got.astype(int) - expected).max() <= 2

    # asked for by name, a WebGPU that fails the check refuses to load instead
    status = _open(page, site_url + "?backend=webgpu")
    if backend == "webgpu":
        assert status.get_attribute("data-state") == "ready"
    else:
        assert status.get_attribute("data-state") == "failed"
        assert "self-check" in status.inner_text() and "?backend=wasm" in status.inner_text()
