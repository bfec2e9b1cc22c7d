"""Two processes with one OpenVINO thread each on one machine: does each keep the speed
it has alone? OpenVINO pins its inference threads to the first CPUs of the process's
CPU mask unless told not to (ENABLE_CPU_PINNING), so two such processes can share CPU 0.

Each worker compiles the x2 model (fp32, one inference thread, a 160x120 input), warms
up, then times ``--runs`` inferences and reports the median. Rows, each run ``--rounds``
times in turn: one worker alone; two at once with OpenVINO's default pinning; two at once
with pinning off; two at once through ``overnet.runtime.open_session`` (what overnet
runs); and, for reference, two at once each with a CPU mask of its own (what
``overnet upscale --ray`` actors do with ``claim_cpus``).

    python benchmarks/openvino_pinning.py --weights ../shared/weights/OverNet_x2.pth.tar \\
        --rounds 3 --out benchmarks/results/openvino-pinning.txt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overnet.bench.environment import cpu_info  # noqa: E402

HEIGHT, WIDTH = 120, 160


def worker(model: str, mode: str, runs: int, cpu: int | None) -> None:
    """One process: time ``runs`` inferences; print {"median_s": ...} as JSON."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    batch = np.random.default_rng(0).random((1, 3, HEIGHT, WIDTH), dtype=np.float32)
    if mode == "overnet":
        from overnet.runtime import open_session

        session = open_session(model, "openvino", precision="fp32", threads=1)
        run = session.run
        pinned = session.info.notes
    else:
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        config["INFERENCE_NUM_THREADS"] = 1
        if mode == "unpinned":
            config["ENABLE_CPU_PINNING"] = False
        compiled = ov.Core().compile_model(model, "CPU", config)
        request = compiled.create_infer_request()

        def run(x):
            return request.infer([x])

        pinned = [str(compiled.get_property("ENABLE_CPU_PINNING"))]
    for _ in range(3):
        run(batch)
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - begin)
    print(json.dumps({"median_s": statistics.median(times), "pinned": pinned}))


def launch(model: str, mode: str, runs: int, count: int, own_cpus: bool) -> list[float]:
    """Start ``count`` workers at once; their medians."""
    procs = []
    for index in range(count):
        args = [sys.executable, __file__, "--worker", mode, "--model", model]
        args += ["--runs", str(runs)]
        if own_cpus:
            args += ["--cpu", str(sorted(os.sched_getaffinity(0))[index])]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
    medians = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode:
            raise SystemExit(f"worker failed ({proc.returncode})")
        medians.append(json.loads(out.strip().splitlines()[-1])["median_s"])
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, help="checkpoint to export (x2)")
    parser.add_argument("--model", help="an ONNX file instead of --weights")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.model, args.worker, args.runs, args.cpu)
        return
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs at least 2 CPUs")
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from overnet.export import export_onnx

            model = str(export_onnx(args.weights, Path(folder) / "x2.onnx", validate=False).path)
        rows = {
            "1 process alone (default pinning)": ("pinned", 1, False),
            "2 at once, OpenVINO's default pinning": ("pinned", 2, False),
            "2 at once, ENABLE_CPU_PINNING off": ("unpinned", 2, False),
            "2 at once, overnet open_session(threads=1)": ("overnet", 2, False),
            "2 at once, a CPU mask each (Ray actors' claim_cpus)": ("pinned", 2, True),
        }
        results: dict[str, list[float]] = {label: [] for label in rows}
        for _ in range(args.rounds):
            for label, (mode, count, own) in rows.items():
                results[label] += launch(model, mode, args.runs, count, own)
    cpu = cpu_info()
    lines = [
        f"# python benchmarks/{Path(__file__).name} --rounds {args.rounds} --runs {args.runs}",
        f"# {cpu['model']}; {cpu['logical_cores']} CPUs; flags: {' '.join(cpu['flags'])}",
        f"# Python {platform.python_version()}; x2 fp32, 1 inference thread, {WIDTH}x{HEIGHT}",
        "",
        "| workers | median s per inference (median over workers and rounds) | vs alone |",
        "|---|---|---|",
    ]
    alone = statistics.median(results["1 process alone (default pinning)"])
    for label, values in results.items():
        median = statistics.median(values)
        lines.append(f"| {label} | {median:.3f} | {median / alone:.2f}x |")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
