"""Concat-free vs exact graph (overnet.model.concat_free): max abs difference and OpenVINO
latency per precision, fp32, bf16 and INT8, in one run (x2, one 320x180 input, rounds
interleaved so load changes hit every row alike).

Both graphs come from `overnet export` (`export_onnx(concat_free=...)`); the concat-free
one is validated against PyTorch there. INT8: plain post-training INT8 of each graph
(`overnet.export.int8.search` with max_reverts 0: the same crops, preset and ranges, ends
kept in float), so the two INT8 rows differ only by the graph.

    flock /tmp/bench.lock python benchmarks/concat_free.py ../shared/weights/OverNet_x2.pth.tar \
        [--out benchmarks/results/concat-free.txt] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import int8_images

from overnet.bench.environment import collect
from overnet.eval import dataset_psnr_y
from overnet.export import export_onnx
from overnet.export.int8 import Int8Options, search
from overnet.export.int8_data import calibration_pairs
from overnet.export.openvino_ir import onnx_props, save_ir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "overnet-bench")
    args = parser.parse_args()
    import openvino as ov

    env = collect(2)
    lines = [
        "Concat-free vs exact graph (benchmarks/concat_free.py), recorded "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; OverNet x2, upstream weights, input 320x180",
        f"CPU: {env['cpu']['model']}, {env['cpu']['usable_cores']} usable cores, flags "
        f"{' '.join(env['cpu']['flags'])}; openvino {env['libraries'].get('openvino')}; "
        f"load average at start {env['load_average_start']}",
        "The machine (2 cores) is shared with up to 5 other sessions working in parallel: "
        "medians of interleaved rounds, comparable within this run only.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exact = export_onnx(args.weights, tmp / "exact.onnx", validate=False).path
        result = export_onnx(args.weights, tmp / "cf.onnx", concat_free=True)
        worst = max(c.max_abs for c in result.validation.comparisons)
        lines.append(
            f"Export validation of the concat-free graph against PyTorch (onnxruntime and "
            f"OpenVINO f32, {len(result.validation.comparisons)} inputs): max abs {worst:.2e}"
        )
        counts = {name: result.node_counts.get(name, 0) for name in ("Concat", "Split", "Conv")}
        lines.append(f"Concat-free graph nodes: {counts} (the Concats left build Resize sizes)")
        photos = int8_images.write_pngs(int8_images.installed_images(), tmp / "calib")
        pairs = calibration_pairs(photos, 2, 32, 64)
        options = Int8Options(tmp / "calib", max_reverts=0, keep_float="ends")
        core = ov.Core()
        models = {}
        for name, path in (("exact", exact), ("concat-free", result.path)):
            q = search(core.read_model(str(path)), pairs, 2, options)
            xml, _ = save_ir(
                q, tmp / f"int8-{name}", {**onnx_props(path), "overnet.precision": "int8"}
            )
            models[name] = {"fp32": (path, "f32"), "bf16": (path, "bf16"), "int8": (xml, "bf16")}
        x = np.random.default_rng(0).random((1, 3, 180, 320), dtype=np.float32)
        compiled, outs = {}, {}
        for graph, rows in models.items():
            for precision, (path, hint) in rows.items():
                config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
                c = core.compile_model(str(path), "CPU", config)
                request = c.create_infer_request()
                compiled[(graph, precision)] = request
                outs[(graph, precision)] = np.array(request.infer({0: x})[0], copy=True)
        samples = {key: [] for key in compiled}
        for _ in range(args.rounds):
            for key, request in compiled.items():
                start = time.perf_counter()
                request.infer({0: x})
                samples[key].append(time.perf_counter() - start)
        set5 = Path(__file__).parents[2] / "shared" / "data" / "Set5"
        lines += [
            "",
            f"{'precision':10s} {'exact s':>8s} {'concat-free s':>14s} {'speed-up':>9s} "
            f"{'max abs cf vs exact':>20s}  Set5 PSNR-Y exact / concat-free",
        ]
        for precision in ("fp32", "bf16", "int8"):
            e = statistics.median(samples[("exact", precision)])
            c = statistics.median(samples[("concat-free", precision)])
            diff = float(
                np.abs(outs[("exact", precision)] - outs[("concat-free", precision)]).max()
            )
            psnr = ""
            if set5.is_dir():
                scores = []
                for graph in ("exact", "concat-free"):
                    request = compiled[(graph, precision)]
                    run = lambda b, r=request: np.array(r.infer({0: b})[0], copy=True)  # noqa: E731
                    values = dataset_psnr_y(run, set5, 2)[0]
                    scores.append(f"{np.mean(list(values.values())):.3f}")
                psnr = " / ".join(scores)
            lines.append(f"{precision:10s} {e:8.3f} {c:14.3f} {e / c:8.2f}x {diff:20.2e}  {psnr}")
        lines += [
            "",
            f"({args.rounds} interleaved rounds; INT8: 32 crops of 64x64 from the three installed "
            "photographs, plain post-training INT8, float layers in bf16)",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
