"""The web export's speed: one image upscaled in Debian's Chromium (onnxruntime-web, WASM,
1 and 2 threads, the page served with COOP/COEP by overnet's own server) beside
onnxruntime in Python (1 and 2 threads) on the same model.onnx, interleaved in one run.

    flock /tmp/bench.lock python benchmarks/web_speed.py [--runs 3] [--size 320x180]

Whole image, no tiling (tile 0 on both sides). The page's time counts its PNG decode and
encode too (a few ms at this size); Python's is Upscaler.upscale on the decoded image.
Writes benchmarks/results/web-speed.txt with the CPU model, flags and load averages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overnet.bench.environment import collect  # noqa: E402
from overnet.export.web import export_web  # noqa: E402
from overnet.export.web.ort import ORT_VERSION, fetch_tarball  # noqa: E402
from overnet.export.web.serve import SiteServer  # noqa: E402
from overnet.runtime import Upscaler, open_session  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SHARED = ROOT.parent / "shared"


def browser_run(page, image: Path) -> float:
    page.set_input_files("#files", str(image))
    page.wait_for_selector(".item:last-child:is([data-state=done], [data-state=error])",
                           timeout=600_000)  # fmt: skip
    item = page.locator(".item").last
    if item.get_attribute("data-state") != "done":
        raise RuntimeError(item.locator(".status").inner_text())
    return float(item.get_attribute("data-seconds"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="320x180", help="WIDTHxHEIGHT of the input")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "OverNet_x2.pth.tar")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/web-speed.txt")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    from playwright.sync_api import sync_playwright

    env = collect()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tarball = fetch_tarball(ROOT / ".cache" / "npm")
        site = export_web(args.weights, work / "site", tile=0, ort=tarball, validate=False).folder
        with Image.open(SHARED / "data" / "Set5" / "HR" / "baby.png") as hr:
            image = hr.convert("RGB").crop((0, 0, width, height))
        image.save(work / "in.png")
        times: dict[str, list[float]] = {}
        sessions = {n: open_session(site / "model.onnx", backend="onnxruntime", threads=n)
                    for n in (1, 2)}  # fmt: skip
        with SiteServer(site, port=0).start() as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)  # fmt: skip
            pages = {}
            for n in (1, 2):
                page = browser.new_context().new_page()
                page.goto(f"{server.url}?threads={n}")
                page.wait_for_selector("#runtime[data-state=ready]", timeout=120_000)
                assert page.get_attribute("#runtime", "data-threads") == str(n)
                pages[n] = page
            for n in (1, 2):  # warm-up: first-run allocations on both sides
                browser_run(pages[n], work / "in.png")
                Upscaler(sessions[n], tile=0).upscale(image)
            for _ in range(args.runs):
                for n in (1, 2):
                    times.setdefault(f"browser wasm, {n} thread(s)", []).append(
                        browser_run(pages[n], work / "in.png")
                    )
                    start = time.perf_counter()
                    Upscaler(sessions[n], tile=0).upscale(image)
                    times.setdefault(f"python onnxruntime, {n} thread(s)", []).append(
                        time.perf_counter() - start
                    )
            version = browser.version
            browser.close()
    end_load = collect()["load_average_start"]
    cpu = env["cpu"]
    lines = [
        f"web export speed: {width}x{height} x2, whole image, OverNet x2 (fp32 ONNX), "
        f"median of {args.runs} interleaved runs after one warm-up",
        f"command: flock /tmp/bench.lock python benchmarks/web_speed.py --runs {args.runs} "
        f"--size {args.size}",
        f"cpu: {cpu['model']}, {cpu['logical_cores']} logical cores, flags: "
        f"{' '.join(cpu['flags'])}",
        f"browser: Chromium {version} headless (Debian), onnxruntime-web {ORT_VERSION}; "
        f"python: onnxruntime {env['libraries'].get('onnxruntime', '?')}",
        f"load average at start {env['load_average_start']}, at end {end_load} (the machine "
        "is shared with up to 5 other helpers' jobs: absolute times vary, the ratios less)",
    ]
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, values in times.items():
        runs = " ".join(f"{v:.2f}" for v in values)
        mp = width * height / 1e6 / medians[label]
        lines.append(f"  {label:<30} median {medians[label]:6.2f} s  {mp:.4f} MP/s  (runs: {runs})")
    for n in (1, 2):
        browser_s = medians[f"browser wasm, {n} thread(s)"]
        ratio = browser_s / medians[f"python onnxruntime, {n} thread(s)"]
        lines.append(f"  browser / python at {n} thread(s): {ratio:.2f}x the time")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.write_text(text)


if __name__ == "__main__":
    main()
