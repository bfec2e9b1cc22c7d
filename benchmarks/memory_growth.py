"""Peak memory of whole-image vs tiled inference as the input grows (issue 7, item 5).

Usage: python benchmarks/memory_growth.py [--weights W] [--backend openvino]
           [--sizes 320x180,640x360,...] [--tile 256] [--output benchmarks/results/memory-growth]

Each (mode, size) runs in its own spawned child process, so an out-of-memory kill loses only
that row. The child marks itself first in line for the kernel OOM killer
(oom_score_adj 1000), measures the peak RSS above its level after the session was opened
(VmHWM reset through /proc/self/clear_refs) and the wall time of one call. Whole-image rows
whose estimate (overnet.bench.memory) exceeds 85% of MemAvailable are refused up front
instead of being run into the OOM killer. Sizes are input WIDTHxHEIGHT; the scale is the
weights' own (x2 for the upstream x2 weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from overnet.bench.environment import collect
from overnet.bench.memory import PeakRss, available_bytes, estimate_whole_image_bytes, hwm_bytes
from overnet.bench.report import write_text_atomic

DEFAULT_SIZES = "320x180,640x360,960x540,1280x720,1920x1080,2560x1440"


def _child(conn, weights: str, backend: str, mode: str, w: int, h: int, tile: int) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")
    try:
        from overnet.runtime import open_session
        from overnet.runtime.upscaler import Upscaler

        session = open_session(weights, backend)
        x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
        upscaler = Upscaler(session, tile=tile) if mode == "tiled" else None
        plan = upscaler.plan(h, w) if upscaler else None
        with PeakRss() as mem:
            start = time.perf_counter()
            out = upscaler.upscale_array(x, plan) if upscaler else session.run(x)
            seconds = time.perf_counter() - start
        conn.send(
            {
                "status": "ok",
                "seconds": seconds,
                "peak_rss_delta_bytes": mem.result.delta,
                "process_peak_rss_bytes": hwm_bytes(),
                "rss_method": mem.result.method,
                "output": list(out.shape),
                "tiles": len(plan.tiles) if plan else 1,
                "tile": f"{plan.tile_w}x{plan.tile_h}, overlap {plan.overlap}" if plan else None,
            }
        )
    except BaseException as exc:  # reported as the row's error
        conn.send({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def run_one(weights: str, backend: str, mode: str, w: int, h: int, tile: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, weights, backend, mode, w, h, tile))
    proc.start()
    send.close()
    try:
        row = receive.recv()
    except EOFError:
        row = {
            "status": "killed",
            "error": f"child died (exit code {proc.exitcode}); SIGKILL means the kernel OOM killer",
        }
    proc.join()
    if proc.exitcode and proc.exitcode < 0 and row.get("status") != "ok":
        row = {
            "status": "killed",
            "error": f"child killed by signal {-proc.exitcode} (9 = OOM killer)",
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="../shared/weights/OverNet_x2.pth.tar")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="input WIDTHxHEIGHT list")
    parser.add_argument("--modes", default="whole,tiled")
    parser.add_argument("--tile", type=int, default=256, help="tile side, input pixels")
    parser.add_argument("--output", default="benchmarks/results/memory-growth")
    parser.add_argument("--fraction", type=float, default=0.85)
    args = parser.parse_args()
    command = shlex.join(["python", *sys.argv])
    from overnet.weights import load_weights

    config = load_weights(args.weights).config
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    rows = []
    for w, h in sizes:
        for mode in args.modes.split(","):
            estimate = estimate_whole_image_bytes(1, h, w, config.upscale, config.scale)
            free = available_bytes()
            row = {
                "mode": mode,
                "width": w,
                "height": h,
                "input_mpix": w * h / 1e6,
                "whole_estimate_bytes": estimate,
                "available_bytes": free,
            }
            if mode == "whole" and free is not None and estimate > args.fraction * free:
                row |= {
                    "status": "refused",
                    "error": (
                        f"estimate {estimate / 2**30:.1f} GiB > {args.fraction:.0%} of "
                        f"{free / 2**30:.1f} GiB available"
                    ),
                }
            else:
                row |= run_one(args.weights, args.backend, mode, w, h, args.tile)
            rows.append(row)
            print(json.dumps(row), flush=True)
    whole = [r for r in rows if r["mode"] == "whole" and r["status"] == "ok"]
    slope = None
    if len(whole) >= 2:  # least-squares bytes per input pixel through the measured rows
        px = np.array([r["width"] * r["height"] for r in whole], float)
        by = np.array([r["peak_rss_delta_bytes"] for r in whole], float)
        slope, _icept = np.polyfit(px, by, 1)
    env = collect()
    result = {
        "command": command,
        "backend": args.backend,
        "weights": args.weights,
        "scale": config.scale,
        "environment": env,
        "rows": rows,
        "whole_bytes_per_input_pixel": slope,
    }
    write_text_atomic(Path(args.output + ".json"), json.dumps(result, indent=2) + "\n")
    total = env["memory_total_bytes"] or 0
    lines = [
        "# Memory growth: whole-image vs tiled inference",
        "",
        f"Command: `{command}`  ",
        f"Backend {args.backend}, weights {args.weights} (x{config.scale:g}), tile "
        f"{args.tile} input px (overlap: the Upscaler default). CPU {env['cpu']['model']}, "
        f"RAM {total / 2**30:.1f} GiB; load average {env['load_average_start']}.",
        "",
        "| input WxH | input MP | mode | status | peak RSS above session, GiB | "
        "whole-image estimate, GiB | seconds | tiles |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peak = r.get("peak_rss_delta_bytes")
        lines.append(
            f"| {r['width']}x{r['height']} | {r['input_mpix']:.2f} | {r['mode']} | "
            f"{r['status']}{': ' + r['error'] if r.get('error') else ''} | "
            f"{_num(None if peak is None else peak / 2**30, '.2f')} | "
            f"{r['whole_estimate_bytes'] / 2**30:.1f} | "
            f"{_num(r.get('seconds'), '.1f')} | {r.get('tiles', '-')} |"
        )
    if slope:
        free = available_bytes() or total
        limit = free / slope
        lines += [
            "",
            f"Whole-image peak grows by {slope:,.0f} bytes per input pixel (least squares over "
            f"the measured whole-image rows). With {free / 2**30:.1f} GiB available (of "
            f"{total / 2**30:.1f} GiB) this machine "
            f"stops being able to run an image whole at about {limit / 1e6:.1f} input "
            f"megapixels (e.g. {int((limit * 16 / 9) ** 0.5)}x{int((limit * 9 / 16) ** 0.5)} "
            "at 16:9); tiled inference stays flat.",
        ]
    write_text_atomic(Path(args.output + ".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
