"""Why the INT8 defaults are what they are: plain INT8 variants scored on the calibration
images only (the validation and held-out images of benchmarks/int8_heldout.py are not
touched here, so choosing among these rows tunes nothing on them).

The 10 calibration images of int8_heldout.py's deal (benchmarks/int8_images.py) give 64
random 64x64 LR crops for NNCF's ranges, as `overnet export --int8` takes them; each
variant is then scored on the same 10 whole images (PSNR-Y drop against fp32, paper
protocol x2, mean / 95% BCa interval / worst image), with its float layers in fp32 and in
bf16, and the variants that matter are timed side by side at 320x180.

    flock /tmp/bench.lock python benchmarks/int8_ablation.py ../shared/weights/OverNet_x2.pth.tar \
        [--out benchmarks/results/int8-ablation.txt]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import int8_heldout
import int8_images

from overnet.eval import dataset_psnr_y
from overnet.export.int8_data import calibration_pairs, interleaved_latency, ov_predictor
from overnet.export.int8_gate import drop_stats
from overnet.export.int8_layers import (
    FUSION_MODULES,
    image_path,
    keep_float_names,
    module_scopes,
)

SPEED_SHAPE = (1, 3, 180, 320)


@dataclass(frozen=True)
class Variant:
    name: str
    image_path_float: bool  # the input, the bicubic skip and the output Add left float
    keep: str  # keep_float choice for the convolutions, or "reduction1" (ends + that one)
    ranges: str  # NNCF activation range estimator: "quantile" or "minmax" (per-crop means)
    timed: tuple[str, ...] = ()  # float-layer precisions to time at 320x180


VARIANTS = (
    Variant("A. run C's settings (image path quantised, ends, quantiles)", False, "ends",
            "quantile", ("bf16",)),
    Variant("B. image path in float, ends, quantiles", True, "ends", "quantile"),
    Variant("C. image path in float, ends, min/max", True, "ends", "minmax", ("fp32",)),
    Variant("D. C + net.reduction1 alone in float", True, "reduction1", "minmax"),
    Variant("E. C + the four fusion convolutions (the default)", True, "fusion", "minmax",
            ("fp32", "bf16")),
)  # fmt: skip


def ignored(model: Any, onnx_path: Path, variant: Variant) -> Any:
    import nncf

    scopes = module_scopes(onnx_path)
    if variant.keep == "reduction1":
        fusion = keep_float_names(model, "fusion", scopes)
        ends = keep_float_names(model, "ends")
        one = [n for n in fusion if "net.reduction1" in scopes[n.removesuffix("/WithoutBiases")]]
        names = [*ends, *one]
    else:
        names = keep_float_names(model, variant.keep, scopes)
    types = []
    if variant.image_path_float:
        names, types = [*names, *image_path(model)], ["Interpolate"]
    return nncf.IgnoredScope(names=sorted(set(names)), types=types, validate=False)


def quantize(onnx_path: Path, pairs: list[Any], variant: Variant) -> tuple[Any, float]:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    ranges = {
        "quantile": RangeEstimatorParametersSet.MEAN_QUANTILE,
        "minmax": RangeEstimatorParametersSet.MEAN_MINMAX,
    }[variant.ranges]
    model = ov.Core().read_model(str(onnx_path))
    start = time.perf_counter()
    quantized = nncf.quantize(
        model,
        nncf.Dataset(pairs, lambda pair: pair.lr),
        preset=nncf.QuantizationPreset.MIXED,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(pairs),
        ignored_scope=ignored(model, onnx_path, variant),
        advanced_parameters=AdvancedQuantizationParameters(
            activations_range_estimator_params=ranges
        ),
    )
    return quantized, time.perf_counter() - start


def compiled(model: Any, precision: str) -> Any:
    import openvino as ov

    hint = {"fp32": "f32", "bf16": "bf16"}[precision]
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})


def scores(model: Any, precision: str, folder: Path) -> dict[str, float]:
    return dataset_psnr_y(ov_predictor(compiled(model, precision)), folder, 2)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "overnet-bench")
    args = parser.parse_args()
    int8_images.report(lambda work: run(args, work), "int8-ablation-", args.out)


def run(args: argparse.Namespace, work: Path) -> list[str]:
    import openvino as ov

    from overnet.export import export_onnx

    pool = int8_images.pool(work / "pool", args.shared, args.cache)
    calibration = int8_images.deal(pool, int8_heldout.SIZES)["calibration"]
    folder = work / "calibration"
    folder.mkdir()
    for path in calibration:
        shutil.copy(path, folder / path.name)
    onnx_path = export_onnx(args.weights, work / "x2.onnx", validate=False).path
    pairs = calibration_pairs(folder, 2, 64, 64, 0)  # Int8Options' crops, crop_size, seed
    fp32_model = ov.Core().read_model(str(onnx_path))
    fp32 = scores(fp32_model, "fp32", folder)
    lines = [
        "INT8 ablation: plain INT8 variants on the calibration images "
        "(benchmarks/int8_ablation.py)",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. OverNet x2, upstream weights.",
        *int8_heldout.header(),
        "",
        f"Calibration images (10, the calibration set of int8_heldout.py): "
        f"{', '.join(p.stem for p in calibration)}",
        "64 random crops of 64x64 LR from them for the ranges; every row is scored on the same "
        "10 whole images: PSNR-Y drop vs fp32 (paper protocol x2), float layers in fp32 / bf16.",
        f"fusion = ends + {', '.join(FUSION_MODULES)}; preset MIXED; nncf.quantize, no search.",
        "",
    ]
    runners = {
        "fp32": ov_predictor(compiled(fp32_model, "fp32")),
        "bf16": ov_predictor(compiled(fp32_model, "bf16")),
    }
    bf16_alone = drop_stats(fp32, scores(fp32_model, "bf16", folder))
    lines += [f"bf16 alone (no INT8): {bf16_alone.format()}", ""]
    for variant in VARIANTS:
        model, seconds = quantize(onnx_path, pairs, variant)
        quantizers = sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
        lines.append(f"{variant.name}  ({quantizers} quantizers, quantised in {seconds:.0f} s)")
        for precision in ("fp32", "bf16"):
            stats = drop_stats(fp32, scores(model, precision, folder))
            lines.append(f"    float layers {precision}: {stats.format()}")
        for precision in variant.timed:
            runners[f"{variant.name[:2]} float layers {precision}"] = ov_predictor(
                compiled(model, precision)
            )
        print("\n".join(lines[-3:]), flush=True)
    seconds = interleaved_latency(runners, SPEED_SHAPE, rounds=7)
    lines += [
        "",
        f"Speed at 320x180 x2 (median of 7 interleaved rounds after a warm-up; load average "
        f"now {[round(x, 2) for x in os.getloadavg()]}):",
    ]
    for name, value in seconds.items():
        lines.append(
            f"    {name:26s} {value:.3f} s  {seconds['fp32'] / value:.2f}x fp32  "
            f"{seconds['bf16'] / value:.2f}x bf16"
        )
    return lines


if __name__ == "__main__":
    main()
