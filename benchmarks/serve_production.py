"""`overnet serve` under production load (issue 27): two models, any scale, bad requests,
a replica killed mid-run, a flood of large images; answers checked byte for byte.

One local Ray (2 CPUs) with the proxy body limit, as `overnet serve` starts it; the x2
and x3 checkpoints served together by 2 replicas (OpenVINO fp32, 1 thread each, the
default 2 GB --max-memory per replica, a bearer token). Three phases, each bounded:

1. mixed: requests at scales 1.3, 2, 2.5 and 3 over PNGs of several sizes, from
   ``--concurrency`` client threads; a fifth of the requests bad (garbage, truncated,
   a decompression bomb, a GIF, no token), each expecting its own 4xx. One replica
   process is killed (SIGKILL) midway. Every 200 answer must equal `overnet upscale
   --scale S` with the same options (run in this process through its CLI entry point)
   byte for byte; a good request may fail only while its replica dies.
2. recovery: after the kill, how long until the next good answer and until Serve has
   both replicas again.
3. flood: ``--flood`` large flat PNGs (1600x1200, ~1.9 GB estimate each at x2) at once
   with ?timeout=10, and one 5000x5000: the replicas admit what their memory holds,
   the rest gets 503 (413 for the one that can never fit); no replica dies.

Peak RSS of every replica process is sampled all along (psutil, every 0.2 s).

    flock /tmp/bench.lock python benchmarks/serve_production.py --shared ../shared \
        --requests 24 --concurrency 6 --out benchmarks/results/serve-production.txt
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

SCALES = (1.3, 2.0, 2.5, 3.0)
SIZES = ((160, 90), (240, 135), (96, 96), (200, 150))
TOKEN = "serve-production-token"
APP = "serve-load"


def photo(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=2) * 200
    pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def flat(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb(inflated: int = 256 << 20) -> bytes:
    """A 1x1 16-bit PNG whose image data inflates to ``inflated`` bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * inflated, 9)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def bad_requests() -> list[tuple[str, bytes, bool, set[int]]]:
    """(kind, body, with token, acceptable statuses)."""
    good = photo(120, 90, 99)
    gif = io.BytesIO()
    Image.new("RGB", (40, 30)).save(gif, format="GIF")
    return [
        ("garbage", os.urandom(5000), True, {415}),
        ("truncated", good[: len(good) // 2], True, {415}),
        ("bomb", png_bomb(), True, {413, 415}),
        ("wrong type", gif.getvalue(), True, {415}),
        ("no token", good, False, {401}),
    ]


class RssSampler(threading.Thread):
    """Peak RSS of each replica process (by pid) while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak: dict[int, int] = {}
        self.first: dict[int, int] = {}
        self.phase = "mixed"
        self.phase_peak: dict[tuple[str, int], int] = {}  # (phase, pid) -> peak
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for process in replica_processes():
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self.first.setdefault(process.pid, rss)
                self.peak[process.pid] = max(self.peak.get(process.pid, 0), rss)
                key = (self.phase, process.pid)
                self.phase_peak[key] = max(self.phase_peak.get(key, 0), rss)


def replica_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if "ServeReplica" in line and f"{APP}:UpscaleService" in line:
            found.append(process)
    return found


def post(port: int, body: bytes, scale: float | None, token: bool, timeout: float = 120, query=""):
    """(status, body, seconds) of one POST /v1/upscale (``query``: more parameters)."""
    params = [f"scale={scale:g}"] if scale is not None else []
    path = "/v1/upscale" + ("?" + "&".join([*params, query]).strip("&") if params or query else "")
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), time.perf_counter() - started
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc).encode(), time.perf_counter() - started
    finally:
        connection.close()


def command_outputs(folder: Path, items, weights: dict[float, Path]) -> dict[int, bytes]:
    """`overnet upscale --scale S` (in this process, through its CLI) on each item."""
    from click.testing import CliRunner

    from overnet.cli import main

    outputs = {}
    for scale in SCALES:
        chosen = [(i, body) for i, (s, body) in enumerate(items) if s == scale]
        source, out = folder / f"in-{scale:g}", folder / f"out-{scale:g}"
        source.mkdir()
        for i, body in chosen:
            (source / f"{i}.png").write_bytes(body)
        args = [
            "upscale", str(source), "-o", str(out), "--weights", str(weights[scale]),
            "--scale", f"{scale:g}", "--backend", "openvino", "--precision", "fp32",
            "--threads", "1",
        ]  # fmt: skip
        result = CliRunner().invoke(main, args)
        if result.exit_code != 0:
            raise SystemExit(f"overnet upscale failed: {result.output}")
        for i, _ in chosen:
            outputs[i] = (out / f"{i}.png").read_bytes()
    return outputs


def mixed_phase(port: int, args, expected, items, kill_after: int) -> dict:
    """Good and bad requests from ``args.concurrency`` threads; a replica killed after
    ``kill_after`` answers."""
    bad = bad_requests()
    plan = []  # (index or bad kind, body, scale, token, accepted)
    for i, (scale, body) in enumerate(items):
        plan.append((i, body, scale, True, {200}))
        if i % 4 == 3:  # one bad request per four good ones: a fifth of all
            kind, bad_body, token, accepted = bad[(i // 4) % len(bad)]
            plan.append((kind, bad_body, 2.0, token, accepted))
    lock = threading.Lock()
    results: list[tuple] = []
    killed: dict = {}
    todo = list(reversed(plan))
    stop_at = time.monotonic() + args.deadline

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                if not todo:
                    return
                what, body, scale, token, accepted = todo.pop()
            status, data, seconds = post(port, body, scale, token)
            with lock:
                results.append((what, status, data, seconds, accepted, time.monotonic()))
                answered = sum(1 for r in results if r[1] == 200)
                if answered >= kill_after and not killed:
                    victims = replica_processes()
                    if victims:
                        victims[0].send_signal(signal.SIGKILL)
                        killed.update(pid=victims[0].pid, at=time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.deadline + 180)
    wrong, lost, bad_ok, bad_wrong, latencies = [], [], [], [], []
    for what, status, data, seconds, accepted, _ in results:
        if isinstance(what, int):
            if status == 200:
                latencies.append(seconds)
                if data != expected[what]:
                    wrong.append(what)
            else:
                lost.append((what, status, data[:160].decode("utf-8", "replace")))
        elif status in accepted:
            bad_ok.append((what, status))
        else:
            bad_wrong.append((what, status, data[:160].decode("utf-8", "replace")))
    after_kill = [r for r in results if killed and r[5] > killed["at"] and r[1] == 200]
    return {
        "sent": len(plan), "answered": len(results) - len(todo), "unsent": len(todo),
        "good": sum(isinstance(p[0], int) for p in plan), "ok": len(latencies),
        "wrong": wrong, "lost": lost, "bad_ok": bad_ok, "bad_wrong": bad_wrong,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": float(np.percentile(latencies, 99)) if latencies else float("nan"),
        "killed": killed,
        "first_after_kill": min((r[5] for r in after_kill), default=None),
    }  # fmt: skip


def flood_phase(port: int, count: int) -> dict:
    bodies = [flat(1600, 1200)] * count + [flat(5000, 5000)]
    outcomes: list[tuple[int, bytes, float]] = [None] * len(bodies)  # type: ignore[list-item]

    def send(i: int) -> None:  # each asks for a 10 s deadline (504 past it)
        outcomes[i] = post(port, bodies[i], None, True, 90, "timeout=10")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    statuses: dict[int, int] = {}
    for status, _, _ in outcomes:
        statuses[status] = statuses.get(status, 0) + 1
    refused = [s for s, _, _ in outcomes[:count] if s == 503]
    return {
        "statuses": statuses,
        "seconds": time.monotonic() - started,
        "max_503_s": max((t for s, _, t in outcomes if s == 503), default=float("nan")),
        "huge": outcomes[-1][0],
        "refused": len(refused),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--requests", type=int, default=40, help="good requests, phase 1")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--flood", type=int, default=12)
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds, phase 1")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    import ray
    from ray import serve

    from overnet.bench.environment import collect
    from overnet.serve import Client, Limits, ServiceConfig
    from overnet.serve.app import run_service, stop_service
    from overnet.serve.auth import token_digest
    from overnet.serve.proxy_limits import proxy_environment
    from overnet.units import parse_memory

    weights = {
        s: args.shared / "weights" / ("OverNet_x2.pth.tar" if s <= 2 else "OverNet_x3.pth.tar")
        for s in SCALES
    }
    items = [
        (SCALES[i % len(SCALES)], photo(*SIZES[(i // len(SCALES)) % len(SIZES)], seed=i))
        for i in range(args.requests)
    ]
    folder = Path(tempfile.mkdtemp(prefix="overnet-serve-production-"))
    started = time.monotonic()
    expected = command_outputs(folder, items, weights)
    say(f"command outputs: {len(expected)} files in {time.monotonic() - started:.1f} s")
    limits = Limits()
    os.environ.update(proxy_environment({"/": limits.max_body_bytes}))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    load_before = os.getloadavg()
    config = ServiceConfig(
        models=(str(weights[2.0]), str(weights[3.0])), backend="openvino", precision="fp32",
        threads=1, replicas=2, num_cpus=1, token_sha256=token_digest(TOKEN), name=APP,
        limits=limits,
    )  # fmt: skip
    sampler = RssSampler()
    try:
        started = time.monotonic()
        url = run_service(config, "127.0.0.1", port)
        say(f"service up in {time.monotonic() - started:.1f} s at {url}")
        sampler.start()
        time.sleep(1)
        mixed = mixed_phase(port, args, expected, items, kill_after=args.requests // 3)
        # recovery: both replicas back
        back_at = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = serve.status().applications[APP].deployments["UpscaleService"]
            running = status.replica_states.get("RUNNING", 0)
            if running == 2 and len(replica_processes()) == 2:
                back_at = time.monotonic()
                break
            time.sleep(0.5)
        sampler.phase = "flood"
        flood = flood_phase(port, args.flood)
        after = Client(url, token=TOKEN).health()
    finally:
        sampler.stop.set()
        try:
            stop_service(APP)
            serve.shutdown()
        finally:
            ray.shutdown()
            shutil.rmtree(folder, ignore_errors=True)
    from overnet.runtime import Upscaler, open_session

    with open_session(weights[2.0], "openvino", precision="fp32", threads=1) as session:
        upscaler = Upscaler(session, max_memory=config.max_memory, batch=config.max_batch)
        flood_estimate = upscaler.plan(1200, 1600).image_bytes
    env = collect(threads=1)
    cpu = env.get("cpu", {})
    say(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    say(f"cpu: {cpu.get('model', '?')}; flags: {' '.join(cpu.get('flags', []))}")
    say(
        f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (2 cores "
        "shared with up to 5 other sessions' work; clients on the same machine)"
    )
    say(
        "service: OverNet_x2 + OverNet_x3 checkpoints, OpenVINO fp32, 1 thread, 2 replicas "
        f"(num_cpus 1 each), --max-memory {config.max_memory} per replica, memory wait "
        f"{limits.memory_wait_s:g} s, token; local Ray num_cpus=2"
    )
    say()
    say(
        f"phase 1 (mixed): {mixed['good']} good requests (scales {', '.join(map(str, SCALES))}; "
        f"sizes {', '.join(f'{w}x{h}' for w, h in SIZES)}) + {mixed['sent'] - mixed['good']} bad, "
        f"concurrency {args.concurrency}; unsent at the deadline: {mixed['unsent']}"
    )
    say(
        f"  answered 200: {mixed['ok']} of {mixed['good']}; wrong answers (not byte-equal to "
        f"overnet upscale): {len(mixed['wrong'])}; p50 {mixed['p50']:.2f} s, p99 "
        f"{mixed['p99']:.2f} s"
    )
    say(f"  good requests lost with the killed replica: {len(mixed['lost'])}")
    for what, status, text in mixed["lost"]:
        say(f"    #{what}: {status} {text}")
    kinds: dict[str, list[int]] = {}
    for what, status in mixed["bad_ok"]:
        kinds.setdefault(what, []).append(status)
    say(
        "  bad requests with their 4xx: "
        + ", ".join(f"{k} {sorted(set(v))} x{len(v)}" for k, v in kinds.items())
    )
    say(f"  bad requests answered otherwise: {len(mixed['bad_wrong'])} {mixed['bad_wrong'][:3]}")
    killed = mixed["killed"]
    if killed:
        first = mixed["first_after_kill"]
        say(
            f"phase 2 (recovery): replica pid {killed['pid']} killed (SIGKILL); next 200 "
            f"answer {first - killed['at']:.2f} s later; both replicas running again "
            + (f"{back_at - killed['at']:.1f} s after the kill" if back_at else "NOT within 120 s")
        )
    else:
        say("phase 2 (recovery): NO replica was killed")
    say(
        f"phase 3 (flood): {args.flood} x 1600x1200 flat PNG (?timeout=10) + 1 x 5000x5000 at "
        f"once: statuses {flood['statuses']}; the 5000x5000: {flood['huge']}; slowest 503 "
        f"{flood['max_503_s']:.2f} s; all answered in {flood['seconds']:.1f} s; health "
        f"after: {after['status']}"
    )
    budget = parse_memory(config.max_memory)
    say(
        f"flood image's estimate (the plan the replica admits it by): {flood_estimate / 1e9:.2f}"
        f" GB at x2 within --max-memory {budget / 1e9:.2f} GB"
    )
    for pid, peak in sorted(sampler.peak.items()):
        first = sampler.first[pid]
        phases = ", ".join(
            f"{phase} {sampler.phase_peak[(phase, pid)] / 1e9:.2f} GB"
            for phase in ("mixed", "flood")
            if (phase, pid) in sampler.phase_peak
        )
        say(
            f"replica pid {pid}: RSS first seen {first / 1e9:.2f} GB, peak {peak / 1e9:.2f} GB "
            f"({phases}), growth {(peak - first) / 1e9:.2f} GB vs --max-memory "
            f"{budget / 1e9:.2f} GB ({'within' if peak - first <= budget else 'ABOVE'})"
        )
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
