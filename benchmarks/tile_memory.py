"""Peak-RSS growth of one inference per input pixel, per backend (calibrates runtime/memory.py).

Each measurement runs in a fresh child process so earlier runs do not hide its peak:

    python benchmarks/tile_memory.py --model x2.onnx --backends openvino,onnxruntime
    python benchmarks/tile_memory.py --model ../shared/weights/OverNet_x2.pth.tar --backends torch
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import sys, numpy as np
from overnet.runtime import open_session

def status(key):
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
backend, model, side, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
session = open_session(model, backend)
session.run(np.zeros((1, 3, 8, 8), np.float32))
base = status('VmRSS')
with open('/proc/self/clear_refs', 'w') as fh:  # reset the high-water mark
    fh.write('5')
session.run(np.random.rand(batch, 3, side, side).astype(np.float32))
peak = status('VmHWM')
print(base, peak, session.info.upscale)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--backends", default="openvino,onnxruntime")
    parser.add_argument("--sides", default="128,256,384")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    print("backend       input    base MB  peak MB  growth MB  bytes/input px  upscale")
    for backend in args.backends.split(","):
        for side in (int(s) for s in args.sides.split(",")):
            cmd = [sys.executable, "-c", CHILD, backend, args.model, str(side), str(args.batch)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{backend:12s} {side:4d}x{side:<4d} failed: {done.stderr.strip()[-200:]}")
                continue
            base, peak, upscale = done.stdout.split()[-3:]
            growth = int(peak) - int(base)
            pixels = args.batch * side * side
            print(
                f"{backend:12s} {side:4d}x{side:<4d} {int(base) / 2**20:8.0f} "
                f"{int(peak) / 2**20:8.0f} {growth / 2**20:10.0f} {growth / pixels:15.0f}  "
                f"{upscale}"
            )


if __name__ == "__main__":
    main()
