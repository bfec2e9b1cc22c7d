"""This CPU's matrix-multiply peak in fp32, bf16 and int8: the ceiling a convolution
network's latency is compared against (GFLOP/s = 2 N^3 / seconds; int8 in GOP/s).

Square N x N matmuls (default 4096), median of several runs after a warm-up, with the
threads the model runs use (default 2): numpy (its BLAS, fp32), torch (fp32; bf16 on
CPU), OpenVINO (fp32, bf16 and int8 through FakeQuantize on both inputs).

    python benchmarks/matmul_peak.py --size 4096 --runs 5 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from overnet.bench.environment import cpu_info


def timed(run: Callable[[], object], runs: int) -> float:
    run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def numpy_fp32(n: int, runs: int, threads: int) -> float:
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in (0, 1))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the BLAS default (OMP/OPENBLAS_NUM_THREADS) then
        return timed(lambda: a @ b, runs)
    with threadpool_limits(threads):
        return timed(lambda: a @ b, runs)


def torch_run(n: int, runs: int, threads: int, dtype: str) -> float:
    import torch

    torch.set_num_threads(threads)
    kind = getattr(torch, dtype)
    a, b = torch.rand(n, n).to(kind), torch.rand(n, n).to(kind)
    with torch.inference_mode():
        return timed(lambda: torch.mm(a, b), runs)


def openvino_run(n: int, runs: int, threads: int, precision: str) -> float:
    import openvino as ov
    import openvino.opset13 as ops

    a = ops.parameter([n, n], np.float32, name="a")
    w = ops.constant(np.random.default_rng(1).random((n, n), dtype=np.float32) - 0.5)
    if precision == "int8":  # FakeQuantize on both inputs: the CPU plugin runs an int8 GEMM
        lo, hi = ops.constant(np.float32(-1.0)), ops.constant(np.float32(1.0))
        a_in, w_in = (
            ops.fake_quantize(a, lo, hi, lo, hi, 256),
            ops.fake_quantize(w, lo, hi, lo, hi, 255),
        )
    else:
        a_in, w_in = a, w
    model = ov.Model([ops.matmul(a_in, w_in, False, False)], [a])
    hint = "bf16" if precision == "bf16" else "f32"
    config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads}
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random((n, n), dtype=np.float32) - 0.5
    return timed(lambda: request.infer({0: x}), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    n, runs, threads = args.size, args.runs, args.threads
    cases: dict[str, Callable[[], float]] = {
        "numpy fp32": lambda: numpy_fp32(n, runs, threads),
        "torch fp32": lambda: torch_run(n, runs, threads, "float32"),
        "torch bf16": lambda: torch_run(n, runs, threads, "bfloat16"),
        "openvino fp32": lambda: openvino_run(n, runs, threads, "fp32"),
        "openvino bf16": lambda: openvino_run(n, runs, threads, "bf16"),
        "openvino int8": lambda: openvino_run(n, runs, threads, "int8"),
    }
    cpu = cpu_info()
    print(
        f"CPU: {cpu['model']}, {cpu['logical_cores']} logical cores, flags {' '.join(cpu['flags'])}"
    )
    print(f"{n}x{n} matmul, {threads} threads, median of {runs} runs after one warm-up")
    figures = {}
    for name, case in cases.items():
        try:
            seconds = case()
        except Exception as exc:  # a missing runtime or precision: report and go on
            print(f"{name:14s} unavailable: {type(exc).__name__}: {exc}")
            continue
        figures[name] = {"seconds": seconds, "gflops": 2 * n**3 / seconds / 1e9}
        unit = "GOP/s" if "int8" in name else "GFLOP/s"
        print(f"{name:14s} {seconds:8.3f} s  {figures[name]['gflops']:8.1f} {unit}")
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu, "size": n, "threads": threads, "figures": figures}, indent=2)
        )


if __name__ == "__main__":
    main()
