"""Interleaved latency of the CPU precisions (each round runs every row once, in turn):
x2, one 320x180 input, 2 threads. Complements one `overnet bench` run with a check that
the ordering holds when the rows share the same seconds.

    python benchmarks/precision_interleaved.py ../shared/weights/OverNet_x2.pth.tar [ROUNDS]

The `openvino-int8` row needs the INT8 IR that `overnet export --format openvino --int8`
registers for the checkpoint (see benchmarks/results/int8.txt).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from overnet.runtime import open_session

ROWS = {
    "torch": {"backend": "torch"},
    "openvino": {"backend": "openvino"},
    "openvino-bf16": {"backend": "openvino-bf16"},
    "openvino-int8": {"backend": "openvino-int8"},
    "auto": {"backend": "auto", "precision": "auto"},
}


def main() -> None:
    weights = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    sessions = {name: open_session(weights, scale=2, threads=2, **kw) for name, kw in ROWS.items()}
    x = np.random.default_rng(0).random((1, 3, 180, 320), dtype=np.float32)
    for session in sessions.values():
        session.run(x)
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    for index in range(rounds):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(x)
            samples[name].append(time.perf_counter() - start)
        line = ", ".join(f"{name} {values[-1]:.3f}" for name, values in samples.items())
        print(f"round {index}: {line}", flush=True)
    base = statistics.median(samples["torch"])
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = base / median
        print(f"{name:14s} median {median:.3f} s  min {min(values):.3f} s  x torch {ratio:.2f}")


if __name__ == "__main__":
    main()
