"""Training throughput (patches/s) of the paper's recipe shape on this machine.

Usage: python benchmarks/train_throughput.py [--batch 16] [--patch 64] [--steps 3]
Times full training steps of the x2 network (64 channels, upscale 3): the data
sampler's crops and flips, forward, L1, backward, clipping at 10 and an AdamP step,
exactly as ``overnet train`` runs them, on synthetic 256x256 HR images (LR made
with the MATLAB bicubic). One warm-up step is not counted.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from overnet.config import OverNetConfig
from overnet.metrics import imresize
from overnet.model import OverNet
from overnet.train.data import TrainImage
from overnet.train.optim import build_optimizer, build_scheduler
from overnet.train.sampler import StepBatches


def _images(count: int, scale: int) -> list[TrainImage]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        # Smooth noise: random coarse grid upsampled, so crops are not flat.
        coarse = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
        hr = imresize(coarse, 8.0)
        out.append(TrainImage(f"syn{i}", hr, {scale: imresize(hr, 1.0 / scale)}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    scale = 2
    model = OverNet(OverNetConfig.for_scale(scale)).train()
    optimizer = build_optimizer(model, "adamp", 1e-3)
    scheduler = build_scheduler(optimizer, 150_000)
    source = StepBatches(_images(8, scale), [scale], args.batch, args.patch, seed=0)
    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        s, lr, hr = source[step]
        sr = model(torch.from_numpy(lr), s)
        loss = F.l1_loss(sr, torch.from_numpy(hr))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()
        if step:  # step 0 warms up allocators and oneDNN kernels
            times.append(time.perf_counter() - start)
    per_step = statistics.median(times)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"torch {torch.__version__} CPU ({platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"x2 (upscale 3, 64 channels), LR patch {args.patch} (HR {args.patch * scale}), "
        f"batch {args.batch}, AdamP, {args.steps} timed steps after 1 warm-up"
    )
    print(f"step times s: {', '.join(f'{t:.2f}' for t in times)}; median {per_step:.2f} s")
    print(f"throughput: {args.batch / per_step:.2f} patches/s; peak RSS {peak_gb:.1f} GB")
    days = 600_000 * 64 / (args.batch / per_step) / 86_400
    print(f"the paper's 600k steps x 64 patches would take {days:,.0f} days at this rate")


if __name__ == "__main__":
    main()
