"""CPU latency of every runtime backend, interleaved so machine noise hits all alike.

Each round runs every session once, in turn; the medians over the rounds are compared
with PyTorch eager fp32 NCHW and with onnxruntime on the upstream ONNX export.

    python benchmarks/runtime_speed.py --shared ../shared --size 320x180 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from overnet.runtime import open_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--size", default="320x180", help="input WIDTHxHEIGHT")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    weights = args.shared / "weights" / "OverNet_x2.pth.tar"
    upstream = args.shared / "weights" / "upstream-onnx" / "OverNet_x2.onnx"
    with tempfile.TemporaryDirectory() as cache:
        os.environ["OVERNET_CACHE"] = cache  # a fresh export of the weights, not a stale one
        specs = {
            "torch eager fp32 NCHW": (weights, "torch", {}),
            "torch channels_last": (weights, "torch-cl", {}),
            "onnxruntime, upstream ONNX": (upstream, "onnxruntime", {"scale": 2}),
            "onnxruntime, overnet export": (weights, "onnxruntime", {}),
            "openvino, upstream ONNX": (upstream, "openvino", {"scale": 2}),
            "openvino, overnet export": (weights, "openvino", {}),
        }
        sessions = {name: open_session(m, b, **kw) for name, (m, b, kw) in specs.items()}
        x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for session in sessions.values():  # warm-up
            session.run(x)
        load = os.getloadavg()[0]
        for _ in range(args.rounds):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run(x)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(v) for name, v in times.items()}
    torch_ref = medians["torch eager fp32 NCHW"]
    ort_ref = medians["onnxruntime, upstream ONNX"]
    print(
        f"x2, input {width}x{height} (WxH), batch 1, fp32, {args.rounds} interleaved rounds, "
        f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(f"{'backend':30s} {'median s':>9s} {'min s':>7s}  {'x torch':>7s} x ORT upstream")
    for name, median in medians.items():
        print(
            f"{name:30s} {median:9.3f} {min(times[name]):7.3f}  {torch_ref / median:7.2f} "
            f"{ort_ref / median:14.2f}"
        )


if __name__ == "__main__":
    main()
