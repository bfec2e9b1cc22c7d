"""Concat-free vs exact graph (overnet.model.concat_free): max abs difference and OpenVINO
latency per precision, fp32, bf16 and INT8, in one run (x2, one 320x180 input, rounds
interleaved so load changes hit every row alike).

Both graphs come from `overnet export` (`export_onnx(concat_free=...)`); the concat-free
one is validated against PyTorch there. INT8: the export's default quantisation of each
graph (`overnet.export.int8.search` with the default Int8Options: plain nncf.quantize, min/max
ranges, the image path never quantised, `--keep-float fusion`), calibrated like run D of
benchmarks/results/int8.txt (64 crops of 64x64 from its 10 calibration images), float
layers in fp32 (the default hint), so the two INT8 rows differ only by the graph. The
concat-free graph has no modules named net.reduction*: its float set is the same layers
rewritten (the body's split products and fusion parts, ``concat_free_fusion``).

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
from overnet.export.int8_layers import keep_float_names, module_scopes
from overnet.export.openvino_ir import onnx_props, save_ir

#: run D's deal (benchmarks/int8_heldout.py): the first 10 images in pixel-hash order calibrate
CALIBRATION_IMAGES = 10
#: the concat-free graph's counterparts of net.reduction1-3 and net.reduction (the modules
#: --keep-float fusion keeps in float): the body's split products and the fusion's parts
CF_FUSION_PREFIXES = ("split.products.", "fusion.")


def concat_free_fusion(model, onnx_path: Path) -> list[str]:
    """Friendly names of the concat-free graph's convolutions that stand for the exact
    graph's ``--keep-float fusion`` set: the entry and exit convolutions and the body-level
    (not per-group) split products and fusion parts."""
    scopes = module_scopes(onnx_path)
    names = keep_float_names(model, "ends")
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        name = op.get_friendly_name()
        modules = scopes.get(name.removesuffix("/WithoutBiases"), ())
        if any(m.startswith(CF_FUSION_PREFIXES) for m in modules):
            names.append(name)
    return sorted(set(names))


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
    kept_float: dict[str, int] = {}
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
        shared = Path(__file__).parents[2] / "shared"
        pool = int8_images.pool(tmp / "pool", shared, args.cache)
        photos = sorted(int8_images.deal(pool, {"calibration": CALIBRATION_IMAGES})["calibration"])
        options = Int8Options(tmp)  # the export's defaults
        pairs = calibration_pairs(photos, 2, options.crops, options.crop_size, options.seed)
        hint = {"fp32": "f32", "bf16": "bf16"}[options.precision_hint or "fp32"]
        core = ov.Core()
        models = {}
        for name, path in (("exact", exact), ("concat-free", result.path)):
            model = core.read_model(str(path))
            if name == "exact":
                keep = keep_float_names(model, options.keep_float, module_scopes(path))
            else:  # entry, exit, 4 body split products, 3 fusion parts
                keep = concat_free_fusion(model, path)
                assert len(keep) == 9, f"concat-free float set: {keep}"
            q = search(model, pairs, 2, options, keep=keep)
            xml, _ = save_ir(
                q, tmp / f"int8-{name}", {**onnx_props(path), "overnet.precision": "int8"}
            )
            models[name] = {"fp32": (path, "f32"), "bf16": (path, "bf16"), "int8": (xml, hint)}
            kept_float[name] = len(keep)
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
        set5 = shared / "data" / "Set5"
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
            f"({args.rounds} interleaved rounds; INT8: the export's default quantisation, "
            f"{options.crops} crops of {options.crop_size}x{options.crop_size} from "
            f"{len(photos)} images ({', '.join(p.stem for p in photos)}); convolutions kept "
            f"in float: exact {kept_float['exact']} (--keep-float {options.keep_float}), "
            f"concat-free {kept_float['concat-free']} (the same layers rewritten), plus the "
            f"image path; float layers in {hint})",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
