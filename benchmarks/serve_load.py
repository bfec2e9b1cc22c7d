"""Load on `overnet serve` (Ray Serve, local Ray) at several concurrencies, against the
same backend's direct in-process Upscaler on the same images, in the same run.

Requests cycle through a mix of PNG sizes (160x90 to 640x360). Each concurrency level
sends a fixed number of requests from that many client threads (keep-alive HTTP); every
level has a deadline. The direct figure decodes, upscales (same backend, tile and
overlap as the service) and encodes PNGs of the same sizes one after another in this
process. It is measured before the first level, between levels and after the last, and
each level is compared with the mean of the direct runs on either side of it, so that
other work on a shared machine weighs on both alike. Saturation = the best level.

    python benchmarks/serve_load.py --shared ../shared --concurrency 1,4,16 \
        --requests 8,16,32 --out benchmarks/results/serve-load.txt
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = [(160, 90), (320, 180), (480, 270), (640, 360)]


def cpu_description() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "model name" in ln), ""
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    wanted = [f for f in flags if f.startswith(("avx", "fma", "sse4", "amx"))]
    return (
        f"{model or platform.processor()}, {os.cpu_count()} logical CPUs; flags: {' '.join(wanted)}"
    )


def make_images(count: int) -> list[bytes]:
    """``count`` PNGs cycling through SIZES (smooth gradients plus noise, like photos)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        w, h = SIZES[i % len(SIZES)]
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x / w, y / h, (x + y) / (w + h)], axis=2) * 200
        pixels = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def direct_rate(upscaler, bodies: list[bytes]) -> tuple[float, float, float]:
    """(images/s, input MP/s, input MP/s of Upscaler.upscale alone) of decode +
    Upscaler.upscale + PNG encode, one image at a time."""
    start = time.perf_counter()
    pixels, upscaling = 0, 0.0
    for body in bodies:
        image = Image.open(io.BytesIO(body))
        image.load()
        pixels += image.width * image.height
        begin = time.perf_counter()
        out = upscaler.upscale(image)
        upscaling += time.perf_counter() - begin
        out.save(io.BytesIO(), format="PNG")
    seconds = time.perf_counter() - start
    return len(bodies) / seconds, pixels / seconds / 1e6, pixels / upscaling / 1e6


def load(port: int, bodies: list[bytes], concurrency: int, deadline_s: float) -> dict:
    """Send every body from ``concurrency`` threads until it is answered; latencies
    (from the first send, waits included) and errors. A 503 (the replica's memory is
    taken: admission by memory) is sent again after its Retry-After, as a client should,
    until the level's deadline."""
    todo = list(enumerate(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    busy = [0]
    stop_at = time.monotonic() + deadline_s

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=deadline_s)
        while time.monotonic() < stop_at:
            with lock:
                if not todo:
                    break
                _, body = todo.pop()
            sent = time.perf_counter()
            while True:
                try:
                    connection.request("POST", "/v1/upscale", body=body)
                    response = connection.getresponse()
                    data = response.read()
                    ok = response.status == 200 and data[:4] == b"\x89PNG"
                except OSError as exc:
                    ok, data, response = False, str(exc).encode(), None
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=deadline_s)
                wait = float(response.getheader("Retry-After", "1")) if response else 0.0
                if ok or response is None or response.status != 503:
                    break
                if time.monotonic() + wait >= stop_at:
                    break
                with lock:
                    busy[0] += 1
                time.sleep(wait)
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors.append(data[:200].decode("utf-8", "replace"))
        connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline_s + 60)
    seconds = time.perf_counter() - start
    pixels = sum(
        Image.open(io.BytesIO(b)).size[0] * Image.open(io.BytesIO(b)).size[1] for b in bodies
    )
    done = len(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(bodies),
        "ok": done,
        "errors": len(errors) + len(todo),
        "seconds": seconds,
        "rate": done / seconds,
        "mps": pixels / seconds / 1e6 if done == len(bodies) else float("nan"),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": float(np.percentile(latencies, 99)) if latencies else float("nan"),
        "first_error": errors[0] if errors else "",
        "busy": busy[0],
    }


def report(say, args, served, directs, results, metrics, load_before) -> None:
    from importlib.metadata import version

    import ray

    say(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    say(f"cpu: {cpu_description()}")
    load_after = os.getloadavg()[0]
    say(f"load average before/after: {load_before[0]:.2f} / {load_after:.2f} (2 shared cores)")
    package = {"openvino": "openvino", "onnxruntime": "onnxruntime"}.get(args.backend, "torch")
    say(f"ray {ray.__version__}, {package} {version(package)}, python {platform.python_version()}")
    say(
        f"service: x2 ONNX (fp32) on {served['backend']}, {args.threads} threads, 1 replica, "
        f"tile {served['tile']}, overlap {served['overlap']}, max batch {args.max_batch}, "
        f"max wait {args.max_wait_ms:g} ms; local Ray (num_cpus=2); clients on the same machine"
    )
    say(f"images: PNG, sizes cycling {', '.join(f'{w}x{h}' for w, h in SIZES)} (WxH)")
    say(
        "direct: same backend, tile and overlap, decode + Upscaler.upscale + PNG encode, one "
        f"image at a time, {len(SIZES) * 2} images per run, run before, between and after the "
        "levels; input MP/s of each run: "
        + ", ".join(f"{d[1]:.4f} (upscale alone {d[2]:.4f})" for d in directs)
    )
    say()
    head = ("concurrency", "requests", "errors", "503 retried", "images/s", "MP/s")
    head += ("p50 s", "p99 s")
    say(" ".join(f"{h:>11s}" for h in (*head, "direct MP/s", "vs direct")))
    ratios = []
    for i, r in enumerate(results):
        around = (directs[i][1] + directs[i + 1][1]) / 2
        ratios.append(r["mps"] / around)
        row = [r["concurrency"], r["requests"], r["errors"], r["busy"]]
        row += [f"{r['rate']:.3f}", f"{r['mps']:.4f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}"]
        row += [f"{around:.4f}", f"{ratios[-1]:.2f}"]
        say(" ".join(f"{v:>11}" for v in row))
    best = max(range(len(results)), key=lambda i: results[i]["mps"])
    alone = (directs[best][2] + directs[best + 1][2]) / 2
    errors = sum(r["errors"] for r in results)
    verdict = "met" if ratios[best] >= 0.85 else "NOT met"
    say()
    say(
        f"saturation (concurrency {results[best]['concurrency']}): {results[best]['mps']:.4f} "
        f"MP/s = {ratios[best]:.2f} x direct (goal >= 0.85: {verdict}); "
        f"{results[best]['mps'] / alone:.2f} x Upscaler.upscale alone (no decode or encode); "
        f"errors: {errors}"
    )
    runs = metrics["overnet_serve_batch_tiles_count"]
    fill = metrics["overnet_serve_batch_tiles_sum"] / max(1, runs)
    single = metrics['overnet_serve_batch_requests_bucket{le="1"}']
    shared = metrics["overnet_serve_batch_requests_count"] - single
    say(
        f"batches: {runs:.0f} runs, mean fill {fill:.2f} tiles, {shared:.0f} runs held tiles of "
        "several requests"
    )
    for r in results:
        if r["first_error"]:
            say(f"first error at concurrency {r['concurrency']}: {r['first_error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--threads", type=int, default=2, help="inference threads, both sides")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--requests", default="8,16,32", help="requests per level")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds per level")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    levels = [int(v) for v in args.concurrency.split(",")]
    counts = [int(v) for v in args.requests.split(",")]
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    import ray

    from overnet.export import export_onnx
    from overnet.runtime import Upscaler, open_session
    from overnet.serve import Client, ServiceConfig
    from overnet.serve.app import run_service, stop_service
    from overnet.serve.metrics import parse

    folder = Path(tempfile.mkdtemp(prefix="overnet-serve-load-"))
    model = export_onnx(
        args.shared / "weights/OverNet_x2.pth.tar", folder / "x2.onnx", validate=False
    ).path
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with socket.socket() as probe:  # a free port on the loopback interface
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    load_before = os.getloadavg()
    try:
        config = ServiceConfig(
            model=str(model), backend=args.backend, threads=args.threads,
            max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        )  # fmt: skip
        url = run_service(config, "127.0.0.1", port)
        info = Client(url).info()
        served = {**info["models"][0], "tile": info["tile"], "overlap": info["overlap"]}
        # "auto": the command's plan for the service's --max-memory (the direct side's too)
        tile = None if served["tile"] == "auto" else served["tile"]
        overlap = served["overlap"]
        session = open_session(model, args.backend, threads=args.threads)
        upscaler = Upscaler(session, tile=tile, overlap=overlap)
        direct_images = make_images(len(SIZES) * 2)
        upscaler.upscale(Image.open(io.BytesIO(direct_images[0])))  # warm-up
        directs = [direct_rate(upscaler, direct_images)]
        results = []
        for concurrency, count in zip(levels, counts, strict=True):
            results.append(load(port, make_images(count), concurrency, args.deadline))
            directs.append(direct_rate(upscaler, direct_images))
        metrics = parse(Client(url).metrics())
    finally:
        stop_service()
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    report(say, args, served, directs, results, metrics, load_before)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
