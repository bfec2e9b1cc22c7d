"""Cold start of `overnet upscale` on one 144x144 image with a checkpoint whose ONNX export
is cached: today's command against the same command with the heavy imports the earlier
code made before the first inference (torch, onnxruntime, openvino: it imported every
backend to check availability), interleaved in one run.

    python benchmarks/cold_start.py [--runs 7] [--weights ../shared/weights/OverNet_x2.pth.tar]

Prints the median wall time of each and their ratio, with the CPU model and flags.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EAGER_IMPORTS = "import torch, onnxruntime, openvino  # what availability checks imported\n"


def cpu() -> str:
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown")  # fmt: skip
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}"


def command(image: Path, out: Path, weights: Path, eager: bool) -> list[str]:
    call = (
        "from overnet.cli import main\n"
        f"main(['upscale', {str(image)!r}, '-o', {str(out)!r}, '--weights', {str(weights)!r},"
        " '--overwrite', '--no-progress'])\n"
    )
    return [sys.executable, "-c", (EAGER_IMPORTS if eager else "") + call]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--weights", type=Path, default=ROOT.parent / "shared" / "weights" /
                        "OverNet_x2.pth.tar")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "OVERNET_CACHE": str(work / "cache")}
        image = work / "in.png"
        rng = np.random.default_rng(0)
        Image.fromarray((rng.random((144, 144, 3)) * 255).astype(np.uint8)).save(image)
        warm = command(image, work / "out", args.weights, eager=False)
        subprocess.run(warm, env=env, check=True, capture_output=True)  # makes the export
        times: dict[str, list[float]] = {"now": [], "eager imports": []}
        for _ in range(args.runs):
            for label, eager in (("now", False), ("eager imports", True)):
                start = time.perf_counter()
                subprocess.run(
                    command(image, work / "out", args.weights, eager),
                    env=env, check=True, capture_output=True,
                )  # fmt: skip
                times[label].append(time.perf_counter() - start)
    print(f"cold start of `overnet upscale` on one 144x144 image, cached export ({cpu()})")
    print(f"command: python benchmarks/cold_start.py --runs {args.runs}")
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, values in times.items():
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"  {label:<14} median {medians[label]:.2f} s   (runs: {runs})")
    print(f"  ratio eager/now: {medians['eager imports'] / medians['now']:.2f}x")


if __name__ == "__main__":
    main()
