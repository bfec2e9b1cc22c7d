"""TensorRT on a GPU machine: build x2/x3 FP16 engines, check them against the FP32 PyTorch
model on Set5, and time them. Writes ``benchmarks/results/tensorrt-gpu-<gpu>.txt``.

    python benchmarks/tensorrt_gpu.py [--shared ../shared] [--out build/tensorrt] [--runs 30]

Never run in this project so far: no machine here has had TensorRT and a GPU.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [(180, 320), (360, 640), (720, 1280)]  # input H x W
PROFILE = ("1x3x32x32", "1x3x360x640", "1x3x720x1280")


def median_seconds(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def set5_psnr(session, weights: Path, scale: int, set5: Path) -> dict[str, float]:
    import torch

    from overnet.eval import discover
    from overnet.imaging import read_rgb8, rgb8_to_nchw
    from overnet.metrics.quality import psnr
    from overnet.weights import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(weights, scale, device=device)
    scores = {}
    for sample in discover(set5, scale).samples:
        lr = rgb8_to_nchw(read_rgb8(sample.lr_path)[0])
        with torch.inference_mode():
            ref = model(torch.from_numpy(lr).to(device)).float().cpu().numpy()
        scores[sample.name] = psnr(np.clip(session.run(lr), 0, 1), np.clip(ref, 0, 1), 1.0)
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "tensorrt")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    import tensorrt as trt

    from overnet.cuda.cudart import gpu_info
    from overnet.export.tensorrt import BuildOptions, Profile, export_tensorrt
    from overnet.runtime.tensorrt_backend import TensorRTSession

    gpu = gpu_info(0)
    lines = [
        f"TensorRT {trt.__version__}, {gpu.name} (sm {gpu.compute_capability}), "
        f"python {platform.python_version()}",
        f"profile {' / '.join(PROFILE)}; median of {args.runs} runs after 3 warm-up runs",
        "",
    ]
    profile = Profile.parse(*PROFILE)
    for scale, weights in ((2, "OverNet_x2.pth.tar"), (3, "OverNet_x3.pth.tar")):
        weights_path = args.shared / "weights" / weights
        built = export_tensorrt(
            weights_path,
            args.out / f"x{scale}",
            scales=[scale],
            profile=profile,
            options=BuildOptions(),
            overwrite=True,
        )[0]
        lines.append(
            f"x{scale}: engine {built.engine.name}, "
            f"{built.build.engine_bytes / 1e6:.1f} MB, built in {built.build.seconds:.0f} s"
        )
        with TensorRTSession.open(built.engine) as session:
            scores = set5_psnr(session, weights_path, scale, args.shared / "data" / "Set5")
            lines.append(
                f"  Set5 PSNR vs FP32 PyTorch (dB): min {min(scores.values()):.2f} "
                + " ".join(f"{k}={v:.2f}" for k, v in scores.items())
            )
            for h, w in SIZES:
                x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
                t = median_seconds(lambda x=x: session.run(x), args.runs)
                lines.append(f"  {h}x{w} -> x{scale}: numpy in/out {t * 1e3:8.2f} ms")
            lines.append(f"  memory: {session.memory_report().format()}")
        with TensorRTSession.open(built.engine, cuda_graph=True) as session:
            x = np.random.default_rng(0).random((1, 3, *SIZES[1]), dtype=np.float32)
            t = median_seconds(lambda x=x: session.run(x), args.runs)
            lines.append(f"  {SIZES[1][0]}x{SIZES[1][1]}: with CUDA graph {t * 1e3:8.2f} ms")
        try:
            import torch

            if torch.cuda.is_available():
                with TensorRTSession.open(built.engine) as session:
                    xt = torch.rand(1, 3, *SIZES[1], device="cuda")

                    def run_torch(session=session, xt=xt):
                        session.run(xt)
                        torch.cuda.synchronize()

                    t = median_seconds(run_torch, args.runs)
                    lines.append(
                        f"  {SIZES[1][0]}x{SIZES[1][1]}: torch CUDA zero-copy {t * 1e3:8.2f} ms"
                    )
        except ImportError:
            pass
        lines.append("")
    text = "\n".join(lines)
    print(text)
    name = re.sub(r"[^a-z0-9]+", "-", gpu.name.lower()).strip("-")
    result = ROOT / "benchmarks" / "results" / f"tensorrt-gpu-{name}.txt"
    result.write_text(text + "\n")
    print(f"wrote {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
