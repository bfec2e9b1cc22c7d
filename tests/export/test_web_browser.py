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
from tests.export.web_fixtures import (  # noqa: F401
    OVERLAP,
    TILE,
    ort_package,
    ort_tarball,
    overscale_site,
    served_site,
    site_url,
    x2_site,
)

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
    # this browser is started without WebGPU (tests/export/test_web_webgpu.py has it)
    assert runtime == {"backend": "wasm", "threads": min(os.cpu_count(), 16), "isolated": "true"}
    # the self-check the page ran on WASM at load: onnxruntime's own output, to float noise
    assert float(page.locator("#runtime").get_attribute("data-self-check")) <= 1e-4
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


#: (height, width, tile, overlap, max_memory): explicit tiles, whole images, and tiles the
#: memory budget picks (balanced sides, thin images, the budget refusing an image)
PLAN_CASES = [
    (128, 128, 80, 16, "2GB"),
    (1080, 1920, 256, 16, "2GB"),
    (37, 301, 64, 16, "2GB"),
    (300, 200, 0, 16, "2GB"),
    (300, 200, None, 16, "2GB"),
    (1080, 1920, None, 16, "2GB"),
    (2160, 3840, None, 32, "1GB"),
    (720, 1280, None, 0, "500MB"),
    (20, 4000, None, 16, "300MB"),
    (640, 640, 33, 40, "2GB"),
    (5000, 5000, None, 16, "200MB"),
]


def test_page_plans_the_tiles_python_plans(page, site_url, x2_site):  # noqa: F811
    from overnet.errors import InputError

    config = json.loads((x2_site / "config.json").read_text())
    expected = []
    for h, w, tile, overlap, memory in PLAN_CASES:
        upscaler = _python_upscaler(x2_site, tile=tile, overlap=overlap, max_memory=memory)
        try:
            plan = upscaler.plan(h, w)
        except InputError:  # MemoryLimitError: the budget holds no tile
            expected.append("refused")
            continue
        tiles = [[t.y0, t.y1, t.x0, t.x1] for t in plan.tiles]
        expected.append([plan.tile_h, plan.tile_w, plan.overlap, tiles])
    assert "refused" in expected and any(len(e[3]) > 20 for e in expected if e != "refused")
    page.goto(site_url)
    got = page.evaluate(
        """async ([cases, config]) => {
          const { planImage } = await import("./tiling.mjs");
          return cases.map(([h, w, tile, overlap, memory]) => {
            try {
              const p = planImage(h, w, { scale: config.scale, tile, overlap, maxMemory: memory,
                bytesPerPixel: config.plan.bytes_per_input_pixel,
                hostIn: config.plan.host_bytes_per_input_pixel,
                hostOut: config.plan.host_bytes_per_output_pixel,
                minAutoTile: config.plan.min_auto_tile });
              return [p.tileH, p.tileW, p.overlap, p.tiles];
            } catch (error) {
              return "refused";
            }
          });
        }""",
        [[[h, w, t, o, _bytes(m)] for h, w, t, o, m in PLAN_CASES], config],
    )
    assert got == expected


def _bytes(memory: str) -> int:
    from overnet.units import parse_memory

    return parse_memory(memory)


def _pattern(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient with texture: HxW float in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.4 * np.sin(x / 5.0 + seed) * np.cos(y / 7.0)
    return np.clip(base + rng.normal(0, 0.05, (height, width)), 0, 1)


def _interlaced_png(rgb: np.ndarray) -> bytes:
    """An Adam7-interlaced 8-bit RGB PNG of ``rgb`` (HxWx3 uint8; Pillow writes none)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    h, w, _ = rgb.shape
    rows = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):  # fmt: skip
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            rows += b"".join(b"\0" + row.tobytes() for row in sub)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.slow
def test_image_modes_keep_their_layout_and_pixels(page, site_url, x2_site, tmp_path):  # noqa: F811
    """PNGs of every layout come back in it (palettes as RGBA), alpha resized as Pillow
    does and 16 bits kept, with overnet's pixels: the page decodes PNGs itself."""
    from overnet.imaging.png16 import write_png16

    h, w = 40, 48
    rgb = np.stack([_pattern(h, w, s) for s in (2, 3, 4)], axis=2)
    ramp = np.linspace(0, 1, w)[None, :].repeat(h, 0)  # fully clear to opaque, every level
    rgb8 = (rgb * 255).round().astype(np.uint8)
    rgba = Image.fromarray(np.dstack([rgb8, (ramp * 255).round().astype(np.uint8)]), "RGBA")
    palette = rgba.quantize(64)  # P with a tRNS chunk of per-entry alpha
    rgb16 = (rgb * 65535).round().astype(np.uint16)
    gray16 = Image.fromarray((_pattern(h, w, 5) * 65535).round().astype(np.uint16))
    cases = {  # name: (file writer, what Python upscales, mode of the page's PNG)
        "gray.png": (Image.fromarray(rgb8[:, :, 0], "L").save, None, "L"),
        "rgba.png": (rgba.save, None, "RGBA"),
        "palette.png": (palette.save, palette.convert("RGBA"), "RGBA"),
        "gray16.png": (gray16.save, None, "I;16"),
        "rgb16.png": (lambda path: write_png16(rgb16, path), rgb16, "RGB"),
        "adam7.png": (lambda path: path.write_bytes(_interlaced_png(rgb8)), rgb8, "RGB"),
    }
    _open(page, site_url)
    upscaler = _python_upscaler(x2_site, tile=TILE, overlap=OVERLAP)
    for name, (write, source, mode) in cases.items():
        write(tmp_path / name)
        _upscale(page, tmp_path / name, tmp_path / f"web-{name}")
        if source is None:
            with Image.open(tmp_path / name) as img:
                source = img.copy()
        expected = np.asarray(upscaler.upscale(source)).astype(int)
        if name == "rgb16.png":
            from overnet.imaging.png16 import read_png16

            got = read_png16(tmp_path / f"web-{name}")[0].astype(int)
        else:
            with Image.open(tmp_path / f"web-{name}") as out:
                assert out.mode == mode, name
                got = np.asarray(out).astype(int)
        assert got.shape == expected.shape, name
        diff = np.abs(got - expected)
        assert diff.max() <= 1, (name, np.unravel_index(diff.argmax(), diff.shape))


def test_dropped_files_queue_and_bad_ones_fail_alone(page, site_url, tmp_path):  # noqa: F811
    """Files dropped on the page are queued like picked ones; a file that is no image fails
    with its own message and the next image still runs; Remove takes an item away."""
    import base64

    _open(page, site_url)
    png = tmp_path / "small.png"
    Image.fromarray((_pattern(12, 16, 7) * 255).astype(np.uint8), "L").save(png)
    files = [("notes.txt", b"not an image", "text/plain"), ("small.png", png.read_bytes(), "")]
    transfer = page.evaluate_handle(
        """(files) => {
          const transfer = new DataTransfer();
          for (const [name, data, type] of files) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type }));
          }
          return transfer;
        }""",
        [[name, base64.b64encode(data).decode(), kind] for name, data, kind in files],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector(".item:first-child:is([data-state=done], [data-state=error])")
    items = page.locator(".item")
    # the text file is not image/*: a drop keeps only images and untyped files
    assert items.count() == 1 and items.first.get_attribute("data-state") == "done"
    page.set_input_files("#files", {"name": "fake.png", "mimeType": "image/png",
                                    "buffer": b"\x89PNG\r\n\x1a\n broken"})  # fmt: skip
    page.wait_for_selector(".item:nth-child(2)[data-state=error]")
    assert "fake.png: " in items.nth(1).locator(".status").inner_text()
    page.set_input_files("#files", str(png))
    page.wait_for_selector(".item:nth-child(3)[data-state=done]")
    items.nth(1).locator(".remove").click()
    assert items.count() == 2


def test_onnxruntime_web_files_with_other_bytes_are_refused(page, ort_package, tmp_path):  # noqa: F811
    """The worker fetches every onnxruntime-web file with its pinned sha384: a host or CDN
    that serves other bytes gets a page that refuses to load, saying which file."""
    from overnet.export.web import exporter
    from overnet.export.web.ort import LOCAL_BASE
    from overnet.export.web.serve import SiteServer

    site = tmp_path / "site"
    site.mkdir()
    exporter._copy_site(site, LOCAL_BASE)
    config = exporter._config(2, 3, None, 16, 2_000_000_000, LOCAL_BASE)
    (site / "config.json").write_text(json.dumps(config))
    (site / "ort").mkdir()
    for name, data in ort_package.items():
        (site / "ort" / name).write_bytes(data)
    entry = site / "ort" / config["ort"]["builds"]["wasm"]["entry"]
    entry.write_bytes(entry.read_bytes().replace(b"onnxruntime", b"onnxruntimE", 1))
    with SiteServer(site, port=0).start() as server:
        page.goto(server.url)
        page.wait_for_selector("#runtime[data-state=failed]")
        message = page.locator("#runtime").inner_text()
    assert "ort/ort.wasm.min.mjs could not be fetched, or its bytes are not" in message


@pytest.mark.slow
def test_fractional_scale_in_the_browser_matches_python(page, overscale_site, tmp_path):  # noqa: F811
    """An --overscale export at x1.5: the page finishes each tile's window of the output
    from the features (bicubic resize, exit1, the resized input) as the host does."""
    from overnet.runtime import Upscaler, open_session

    folder, url = overscale_site
    lr = shared_file("data", "Set5", "LR_bicubic", "X4", "butterflyx4.png")  # 64x64
    _open(page, url)
    page.fill("#scale", "1.5")
    page.click("#settings summary")
    page.fill("#tile", "40")
    page.fill("#overlap", "16")
    web_plan = _upscale(page, lr, tmp_path / "web.png")
    session = open_session(folder / "model.onnx", backend="onnxruntime", scale=1.5)
    upscaler = Upscaler(session, tile=40, overlap=16)
    with Image.open(lr) as img:
        plan = upscaler.plan(img.height, img.width)
        expected = np.asarray(upscaler.upscale(img))
    assert len(plan.tiles) == 4
    assert web_plan["tiles"] == [[t.y0, t.y1, t.x0, t.x1] for t in plan.tiles]
    assert web_plan["overlap"] == plan.overlap
    with Image.open(tmp_path / "web.png") as out:
        got = np.asarray(out)
    assert got.shape == expected.shape == (96, 96, 3)
    assert _psnr(got, expected) >= 60
    assert np.abs(got.astype(int) - expected).max() <= 1


#: (height, width, scale, tile, overlap, max_memory) on the --overscale export
OVERSCALE_PLAN_CASES = [
    (64, 64, 1.5, 40, 16, "2GB"),
    (301, 517, 2.5, 96, 4, "2GB"),  # the overlap rises to the overscale minimum
    (1080, 1920, 1.3, None, 16, "1GB"),  # the head's bytes per pixel shrink the tile
    (720, 1280, 3, None, 16, "500MB"),
    (37, 50, 2.25, 0, 16, "2GB"),
    (200, 200, 1.5, 12, 16, "2GB"),  # below the smallest tile an overscale plan blends
]


def test_page_plans_overscale_tiles_as_python(page, overscale_site):  # noqa: F811
    from overnet.errors import InputError
    from overnet.runtime import Upscaler, open_session

    folder, url = overscale_site
    config = json.loads((folder / "config.json").read_text())
    expected = []
    for h, w, scale, tile, overlap, memory in OVERSCALE_PLAN_CASES:
        session = open_session(folder / "model.onnx", backend="onnxruntime", scale=scale)
        upscaler = Upscaler(session, tile=tile, overlap=overlap, max_memory=memory)
        try:
            plan = upscaler.plan(h, w)
        except InputError:
            expected.append("refused")
            continue
        tiles = [[t.y0, t.y1, t.x0, t.x1] for t in plan.tiles]
        size = list(upscaler.output_size(h, w))
        expected.append([plan.tile_h, plan.tile_w, plan.overlap, tiles, size])
    assert "refused" in expected
    page.goto(url)
    got = page.evaluate(
        """async ([cases, config]) => {
          const { planImage, outputSize } = await import("./tiling.mjs");
          const { MIN_OVERLAP } = await import("./overscale.mjs");
          const head = config.overscale;
          return cases.map(([h, w, scale, tile, overlap, memory]) => {
            const floats = 2 * head.channels * head.upscale ** 2 + 4 * scale * scale;
            try {
              const p = planImage(h, w, { scale, tile, overlap, maxMemory: memory,
                bytesPerPixel: config.plan.bytes_per_input_pixel + Math.trunc(4 * floats) + 1,
                hostIn: config.plan.host_bytes_per_input_pixel,
                hostOut: config.plan.host_bytes_per_output_pixel,
                minAutoTile: config.plan.min_auto_tile, minOverlap: MIN_OVERLAP });
              return [p.tileH, p.tileW, p.overlap, p.tiles, outputSize(h, w, scale)];
            } catch (error) {
              return "refused";
            }
          });
        }""",
        [[[h, w, s, t, o, _bytes(m)] for h, w, s, t, o, m in OVERSCALE_PLAN_CASES], config],
    )
    assert got == expected
