"""The web export in Debian's Chromium (Playwright): the page served by the product's own
server upscales a Set5 image at x2 on onnxruntime-web's WASM threads, and the downloaded
PNG and the tile plan the page used match overnet's Python runtime on the same file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import browser, page  # noqa: F401
from tests.conftest import shared_file
from tests.export.web_fixtures import OVERLAP, TILE, ort_tarball, site_url, x2_site  # noqa: F401

#: set to a path (docs/images/web-export.png) to keep the page's screenshot there
SCREENSHOT_ENV = "OVERNET_WEB_SCREENSHOT"


def _python_upscaler(site: Path, **options):
    from overnet.runtime import Upscaler, open_session

    session = open_session(site / "model.onnx", backend="onnxruntime")
    return Upscaler(session, **options)


def _open(page, url: str) -> dict:  # noqa: F811
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#runtime:not([data-state=loading])")
    status = page.locator("#runtime")
    assert status.get_attribute("data-state") == "ready", (status.inner_text(), errors)
    return {
        "backend": status.get_attribute("data-backend"),
        "threads": int(status.get_attribute("data-threads")),
        "isolated": status.get_attribute("data-isolated"),
    }


def _upscale(page, image: Path, out: Path) -> dict:  # noqa: F811
    """Pick ``image`` in the page, wait for its result, download it to ``out``; the plan."""
    page.set_input_files("#files", str(image))
    item = page.locator(".item").last
    page.wait_for_selector(".item:last-child:is([data-state=done], [data-state=error])")
    assert item.get_attribute("data-state") == "done", item.locator(".status").inner_text()
    with page.expect_download() as download:
        item.locator(".download").click()
    download.value.save_as(out)
    return json.loads(item.get_attribute("data-plan"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.slow
def test_set5_x2_in_the_browser_matches_python(page, site_url, x2_site, tmp_path):  # noqa: F811
    lr = shared_file("data", "Set5", "LR_bicubic", "X2", "butterflyx2.png")
    runtime = _open(page, site_url)
    # served with COOP/COEP, the page is cross-origin isolated and runs WASM threads;
    # headless Chromium here has no WebGPU adapter
    assert runtime == {"backend": "wasm", "threads": min(os.cpu_count(), 16), "isolated": "true"}
    page.click("#settings summary")
    page.fill("#tile", str(TILE))
    page.fill("#overlap", str(OVERLAP))
    web_plan = _upscale(page, lr, tmp_path / "web.png")

    upscaler = _python_upscaler(x2_site, tile=TILE, overlap=OVERLAP)
    with Image.open(lr) as img:
        plan = upscaler.plan(img.height, img.width)
        expected = np.asarray(upscaler.upscale(img))
    assert len(plan.tiles) == 4 and plan.overlap == OVERLAP  # tiled on both axes, blended
    assert web_plan["tiles"] == [[t.y0, t.y1, t.x0, t.x1] for t in plan.tiles]
    assert (web_plan["tileH"], web_plan["tileW"], web_plan["overlap"]) == (
        plan.tile_h,
        plan.tile_w,
        plan.overlap,
    )
    with Image.open(tmp_path / "web.png") as out:
        assert out.mode == "RGB"
        got = np.asarray(out)
    assert got.shape == expected.shape == (256, 256, 3)
    assert _psnr(got, expected) >= 60
    assert np.abs(got.astype(int) - expected).max() <= 1  # float rounding, never more

    page.locator(".item .slider").fill("35")
    shot = tmp_path / "web-export.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
