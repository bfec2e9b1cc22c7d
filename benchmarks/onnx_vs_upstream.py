"""Our FP32 ONNX export vs the upstream ONNX on onnxruntime CPU, side by side.

Usage: python benchmarks/onnx_vs_upstream.py [--shared ../shared] [--runs 7]
Runs both graphs alternately on the same 320x180 input (x2 -> 640x360) and prints
medians, their ratio and both node counts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from overnet.export import export_onnx
from overnet.export.onnx_export import node_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", default="180x320", help="input HxW")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    upstream = args.shared / "weights" / "upstream-onnx" / "OverNet_x2.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        ours = export_onnx(
            args.shared / "weights" / "OverNet_x2.pth.tar", Path(tmp) / "x2.onnx", validate=False
        ).path
        options = ort.SessionOptions()
        options.intra_op_num_threads = 0  # all cores, the default
        sessions = {
            "overnet export": (ort.InferenceSession(str(ours), options), {}),
            "upstream": (
                ort.InferenceSession(str(upstream), options),
                {"scale": np.array(2, np.int64)},
            ),
        }
        counts = {
            "overnet export": node_counts(onnx.load(str(ours))),
            "upstream": node_counts(onnx.load(str(upstream))),
        }
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    names = {"overnet export": "lr", "upstream": "inputs"}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for name, (sess, extra) in sessions.items():  # warm-up
        sess.run(None, {names[name]: x, **extra})
    for _ in range(args.runs):
        for name, (sess, extra) in sessions.items():
            start = time.perf_counter()
            sess.run(None, {names[name]: x, **extra})
            times[name].append(time.perf_counter() - start)
    print(
        f"onnxruntime {ort.__version__} CPU, input 1x3x{h}x{w} x2, {args.runs} runs each "
        "(alternating)"
    )
    for name, samples in times.items():
        print(
            f"  {name:<15} median {statistics.median(samples):.3f} s  "
            f"min {min(samples):.3f} s  nodes {sum(counts[name].values())} {counts[name]}"
        )
    ratio = statistics.median(times["upstream"]) / statistics.median(times["overnet export"])
    print(f"  speed ratio upstream/overnet: {ratio:.3f} (>1 means the overnet export is faster)")


if __name__ == "__main__":
    main()
