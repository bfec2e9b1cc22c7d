"""INT8 behind a quality gate: NNCF post-training quantisation of the OpenVINO model.

1. Disjoint image sets (``overnet.export.int8_sets``, by pixel hash): calibration
   (activation ranges), validation (the gate) and, only for the accuracy-aware search,
   a search set; sets not given are split from the ``--calibration`` images.
2. By default (``max_reverts=0``) plain ``nncf.quantize`` (preset MIXED: symmetric weights,
   asymmetric activations; ranges from the mean of per-crop min/max) on random crops of
   the calibration images, with a fixed set of layers left in float: the image path
   always (the input's mean subtraction, the bicubic resizes and the output's residual Add:
   quantising them rounds the picture itself), and the convolutions ``keep_float`` names
   ("fusion" by default: the entry and exit convolutions and the body's four dense-fusion
   1x1 convolutions). With ``max_reverts`` > 0 (or None: until met) NNCF's accuracy
   control also puts layers back into float, the most harmful first, until the mean
   PSNR-Y of crops of the *search* images drops by at most ``search_share`` of
   ``max_drop`` less what the precision hint alone costs them.
3. The gate: PSNR-Y per validation image (scored by ``Int8Options.score``,
   ``overnet.eval.dataset_psnr_y`` from the command line) through the openvino backend, the
   INT8 model with its float layers in the precision hint (fp32 unless asked) against the
   fp32 model in fp32; the mean drop, worst image and a bootstrap interval
   (``overnet.export.int8_gate``). It passes only when the interval's upper bound is within
   ``max_drop``; else, or with nothing left in INT8, QualityGateError and nothing is written.
4. The drop and its spread, the layers kept in float, the sets' hashes and the measured
   latency of fp32, bf16 and INT8 go into the model's metadata (``overnet.int8_*``).

Why these defaults (benchmarks/results/int8-ablation.txt, scored on calibration images
only; the held-out check is run D of benchmarks/results/int8.txt): with the image path
quantised, plain INT8 lost 1.77 dB on its own calibration images; float layers in bf16 cost
a high-PSNR image up to 0.9 dB more than in fp32; a concatenation's inputs share one
quantiser, so quantising the body's fusion ties the signed entry features to the groups'
ReLU ranges (0.068 -> 0.013 dB with the four fusion convolutions in float).

``overnet.export.int8_onnx`` reuses the same quantisation for an explicit Q/DQ ONNX
(TensorRT).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnet._optional import require
from overnet.errors import InputError
from overnet.export.int8_data import (
    HeldOutScore,
    Pair,
    calibration_pairs,
    hint_cost,
    pairs_psnr_y,
)
from overnet.export.int8_gate import DEFAULT_CONFIDENCE, drop_stats
from overnet.export.int8_layers import (
    KEEP_FLOAT,
    float_layers,
    ignored_scope,
    keep_float_names,
    module_scopes,
)
from overnet.export.int8_report import Int8Report, QualityGateError
from overnet.export.int8_sets import ImageSets, plan_sets

DEFAULT_MAX_DROP = 0.1
#: the float model beside an INT8 IR (the guard's fallback), relative to its model.xml
FLOAT_TWIN = "float"
FLOAT_TWIN_KEY = "overnet.int8_float_model"

__all__ = [
    "KEEP_FLOAT",
    "Int8Options",
    "Int8Report",
    "QualityGateError",
    "export_openvino_int8",
]


@dataclass
class Int8Options:
    """How to quantise and what to check. Sizes are (width, height)."""

    calibration: Path
    validation: Path | None = None  # the gate's images; None: split from calibration
    max_drop: float = DEFAULT_MAX_DROP  # PSNR-Y dB, upper bound of the validation interval
    crops: int = 64  # calibration crops (and as many crops of the search images)
    crop_size: int = 64  # LR crop side in pixels
    keep_float: str = "fusion"
    #: what the INT8 model's float layers compute in; None: fp32 (bf16 costs images of high
    #: PSNR far more than INT8 itself: benchmarks/results/int8-ablation.txt)
    precision_hint: str | None = None
    #: accuracy-control iterations: 0 plain INT8 with the fixed keep_float set (no search
    #: set); N > 0 at most N layers put back in float; None until the search target is met
    max_reverts: int | None = 0
    speed_size: tuple[int, int] | None = (320, 180)  # latency input; None: not measured
    seed: int = 0
    search_set: Path | None = None  # what the search scores; None: split from calibration
    #: share of ``max_drop`` (less the hint's own cost) the search may spend on its images;
    #: the rest is the margin for images it never saw and for the gate's interval
    search_share: float = 0.5
    confidence: float = DEFAULT_CONFIDENCE  # of the gate's bootstrap interval
    #: the run-time guard's input statistic (overnet.runtime.int8_guard; None: no guard)
    #: and its threshold as a multiple of the largest value a calibration tile showed
    guard_statistic: str | None = "laplacian"
    guard_margin: float = 1.5
    #: the held-out score (the command line gives overnet.eval.dataset_psnr_y); required
    score: HeldOutScore | None = None


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def search(
    model: Any,
    pairs: list[Pair],
    scale: int,
    options: Int8Options,
    target: float | None = None,
    scored: list[Pair] | None = None,
    keep: list[str] | None = None,
) -> Any:
    """INT8 of ``model`` (openvino.Model) calibrated on ``pairs``, the convolutions ``keep``
    (default: ``keep_float_names`` of ``options.keep_float``) and the image path in float.
    Plain with ``options.max_reverts`` 0; else NNCF's accuracy control puts layers back to
    float until the mean PSNR-Y of ``scored`` (the search set; default ``pairs``; NNCF
    evaluates in f32) drops by at most ``target`` (default ``options.max_drop``)."""
    nncf = require("nncf", "INT8 quantisation", extra="int8")
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    def validate(compiled: Any, items: Any) -> tuple[float, list[float]]:
        values = pairs_psnr_y(lambda x: compiled(x)[0], list(items), scale)
        return float(sum(values) / len(values)), values

    dataset = nncf.Dataset(pairs, lambda pair: pair.lr)
    scored_dataset = nncf.Dataset(scored if scored is not None else pairs, lambda p: p.lr)
    ignored = ignored_scope(
        model, keep if keep is not None else keep_float_names(model, options.keep_float)
    )
    restorer = AdvancedAccuracyRestorerParameters(
        max_num_iterations=options.max_reverts if options.max_reverts is not None else sys.maxsize
    )
    with _quiet_nncf():
        if options.max_reverts == 0:  # plain post-training INT8: nothing put back in float
            return nncf.quantize(
                model,
                dataset,
                preset=nncf.QuantizationPreset.MIXED,
                target_device=nncf.TargetDevice.CPU,
                subset_size=len(pairs),
                ignored_scope=ignored,
                advanced_parameters=quantization_parameters(),
            )
        return nncf.quantize_with_accuracy_control(
            model,
            dataset,
            scored_dataset,
            validate,
            max_drop=options.max_drop if target is None else target,
            preset=nncf.QuantizationPreset.MIXED,
            target_device=nncf.TargetDevice.CPU,
            subset_size=len(pairs),
            ignored_scope=ignored,
            advanced_quantization_parameters=quantization_parameters(),
            advanced_accuracy_restorer_parameters=restorer,
        )


def quantization_parameters() -> Any:
    """Activation ranges from the mean of per-crop min/max (NNCF's default for preset
    MIXED, stated so it cannot drift). Per-crop quantiles clip the bright and dark extremes
    that the output depends on: with the image path in float, plain INT8 lost 0.086 dB
    (worst image 0.30 dB) on its calibration images with quantiles against 0.068 dB
    (worst 0.21 dB) with min/max (benchmarks/results/int8-ablation.txt)."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MEAN_MINMAX
    )


def quantize_gated(onnx_path: Path, scale: float, options: Int8Options, staging: Path):
    """Plan the sets, search, save the INT8 IR to ``staging`` and gate it.

    Returns (openvino.Model, metadata props, Int8Report); QualityGateError when it fails.
    """
    ov = require("openvino", "INT8 quantisation")
    from overnet.export.openvino_ir import onnx_props, save_ir

    if not float(scale).is_integer():
        raise InputError(f"INT8 calibration needs an integer scale, got {scale:g}")
    if options.max_drop < 0:
        raise InputError(f"max drop must be >= 0 dB, got {options.max_drop:g}")
    if not 0 < options.search_share <= 1:
        raise InputError(f"search_share must be in (0, 1], got {options.search_share:g}")
    check_score(options)
    plain = options.max_reverts == 0
    if plain and options.search_set is not None:
        raise InputError(
            "a search set is scored only by the accuracy-aware search: give --max-reverts N "
            "(N > 0) with --search-set, or leave --search-set out for plain INT8"
        )
    hint = options.precision_hint or "fp32"
    sets = plan_sets(
        options.calibration, options.search_set, options.validation, staging, needs_search=not plain
    )
    pairs = calibration_pairs(
        list(sets.calibration), int(scale), options.crops, options.crop_size, options.seed
    )
    start = time.perf_counter()
    fp32 = ov.Core().read_model(str(onnx_path))
    keep = keep_float_names(fp32, options.keep_float, module_scopes(onnx_path))
    target = None
    if plain:
        model = search(fp32, pairs, int(scale), options, keep=keep)
    else:
        scored = calibration_pairs(
            list(sets.search), int(scale), options.crops, options.crop_size, options.seed + 1
        )
        # NNCF scores candidates in f32, the runtime computes float layers in the hint:
        # leave room for what the hint alone costs on the search crops, and keep a share of
        # the budget for images the search never saw (its own images flatter it)
        budget = options.max_drop * options.search_share
        target = max(0.0, budget - hint_cost(fp32, scored, int(scale), hint))
        model = search(fp32, pairs, int(scale), options, target, scored, keep)
    searched = time.perf_counter() - start
    quantizers, kept = float_layers(model)
    props = {**onnx_props(onnx_path), "overnet.precision": "int8", "overnet.precision_hint": hint}
    props.update(guard_props(pairs, options))
    xml, _ = save_ir(model, staging / "ir", props)
    report = check_gate(xml, onnx_path, int(scale), sets.validation_folder, options, hint)
    report.quantizers, report.float_layers, report.search_s = quantizers, kept, searched
    report.target, report.searched = target, not plain
    describe_sets(report, sets, options)
    if not report.passed:
        raise QualityGateError(report)
    if options.speed_size is not None:
        report.seconds = latencies(xml, onnx_path, options.speed_size)
    return model, {**props, **report.props()}, report


def guard_props(pairs: list[Pair], options: Int8Options) -> dict[str, str]:
    """The run-time guard's metadata, measured on the calibration crops (none when off)."""
    if options.guard_statistic is None:
        return {}
    from overnet.runtime.int8_guard import METADATA_KEY, calibrate_guard

    spec = calibrate_guard([p.lr for p in pairs], options.guard_statistic, options.guard_margin)
    return {METADATA_KEY: spec.to_json(), FLOAT_TWIN_KEY: f"{FLOAT_TWIN}/model.xml"}


def describe_sets(report: Int8Report, sets: ImageSets, options: Int8Options) -> None:
    """Fill the report's description of the sets (counts, crops, origins, hashes)."""
    size = f"{options.crop_size}x{options.crop_size}"
    report.calibration = (
        f"{options.crops} crops of {size} from {len(sets.calibration)} images of "
        f"{options.calibration.name}; kept in float: the image path and --keep-float "
        f"{options.keep_float}"
    )
    search_from = options.search_set.name if options.search_set else options.calibration.name
    val_from = options.validation.name if options.validation else options.calibration.name
    search = (
        f"search {len(sets.search)} (from {search_from}; {options.crops} crops of {size})"
        if sets.search
        else "no search set (plain INT8)"
    )
    report.sets = (
        f"calibration {len(sets.calibration)} images, {search}, validation "
        f"{len(sets.validation)} (from {val_from}); disjoint by pixel hash"
    )
    report.notes, report.hashes = list(sets.notes), dict(sets.hashes)
    report.image_sets = sets


def check_score(options: Int8Options) -> HeldOutScore:
    """The gate's held-out score; InputError before any work when none was given."""
    if options.score is None:
        raise InputError(
            "Int8Options.score is not set: the quality gate needs a held-out score, e.g. "
            "overnet.eval.dataset_psnr_y (what `overnet export --int8` uses)"
        )
    return options.score


def check_gate(
    xml: Path, onnx_path: Path, scale: int, validation: Path, options: Int8Options, hint: str
) -> Int8Report:
    """PSNR-Y per validation image of the fp32 model (fp32) and the INT8 IR (float layers
    in ``hint``), with the drop's mean, worst image and bootstrap interval."""
    from overnet.runtime.openvino_backend import OpenVinoSession, compile_onnx

    score = check_score(options)
    scores = {}
    for name, path, precision in (("fp32", onnx_path, "fp32"), ("int8", xml, hint)):
        with OpenVinoSession(compile_onnx(path, precision=precision, cache=False)) as session:
            scores[name], label = score(session.run, validation, scale)
    return gate_report(label, scores["fp32"], scores["int8"], options.max_drop, hint, options)


def gate_report(
    label: str,
    fp32: dict[str, float],
    int8: dict[str, float],
    max_drop: float,
    hint: str,
    options: Int8Options,
    runtime: str = "openvino",
) -> Int8Report:
    """An Int8Report of per-image scores (search figures left for the caller to fill)."""
    import numpy as np

    stats = drop_stats(fp32, int8, options.confidence, seed=options.seed)
    return Int8Report(
        label,
        float(np.mean(list(fp32.values()))),
        float(np.mean(list(int8.values()))),
        max_drop,
        hint,
        0,
        [],
        "",
        0,
        runtime=runtime,
        stats=stats,
    )


def latencies(xml: Path, onnx_path: Path, size: tuple[int, int]) -> dict[str, float]:
    """Median latency of fp32, bf16 (where native) and the INT8 IR, interleaved."""
    from overnet.export.int8_data import interleaved_latency
    from overnet.runtime.openvino_backend import OpenVinoSession, compile_onnx

    runs = [("fp32", onnx_path, "fp32"), ("bf16", onnx_path, "bf16"), ("int8", xml, "int8")]
    sessions = {}
    try:
        for name, path, precision in runs:
            try:
                sessions[name] = OpenVinoSession(compile_onnx(path, precision=precision))
            except InputError:  # bf16 not native here
                continue
        shape = (1, 3, size[1], size[0])
        return interleaved_latency({k: s.run for k, s in sessions.items()}, shape)
    finally:
        for session in sessions.values():
            session.close()


def export_openvino_int8(
    weights: str | Path,
    outdir: str | Path,
    options: Int8Options,
    *,
    scale: float | None = None,
    overwrite: bool = False,
    validate: bool = True,
    register: bool = True,
):
    """INT8 IR of ``weights`` in ``outdir`` (model.xml + model.bin) behind the gate.

    ``register``: also store it where the ``openvino-int8`` variant finds it for this
    checkpoint (``overnet.runtime.openvino_backend.int8_ir_path``). Returns
    (IrExportResult, Int8Report); QualityGateError (nothing written) when the gate fails.
    """
    import tempfile

    from overnet.export.onnx_export import export_onnx
    from overnet.export.openvino_ir import IrExportResult, check_ir_output, onnx_props, save_ir

    ov = require("openvino", "INT8 quantisation")
    check_score(options)
    outdir = Path(outdir)
    check_ir_output(outdir, overwrite)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        result = export_onnx(weights, onnx_path, scale=scale, validate=validate)
        model, props, report = quantize_gated(
            onnx_path, result.metadata.scale, options, Path(tmp) / "staging"
        )
        float_model = ov.Core().read_model(str(onnx_path))
        float_props = {**onnx_props(onnx_path), "overnet.precision_hint": report.precision_hint}
    targets = [outdir]
    notes = list(result.notes)
    if register and Path(weights).is_file():
        from overnet.runtime.openvino_backend import int8_ir_path

        for key in {scale, result.metadata.scale}:
            targets.append(int8_ir_path(Path(weights), key).parent)
            notes.append(f"registered for the openvino-int8 variant: {targets[-1]}")
    for target in targets:
        if options.guard_statistic is not None:  # the guard's fallback, before the INT8 IR
            save_ir(float_model, target / FLOAT_TWIN, float_props)
        xml, bin_path = save_ir(model, target, props)
        if target == outdir:
            written = xml, bin_path
    return IrExportResult(*written, props, None, notes), report
