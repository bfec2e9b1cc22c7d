"""Validate an exported ONNX file: checker, TensorRT lint, and numerics against PyTorch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from overnet._optional import available, require
from overnet.config import output_size
from overnet.formats.onnx_metadata import INPUT_NAME, ModelMetadata

#: Input shapes checked: odd, non-square, batch 2 (N, C, H, W).
RANDOM_SHAPES = ((1, 3, 17, 23), (1, 3, 24, 41), (2, 3, 31, 20))
#: Pass criteria against the fp32 PyTorch model.
FP32_MAX_ABS = 1e-4
FP16_MIN_PSNR = 50.0


@dataclass
class Comparison:
    runtime: str
    input: str
    shape: tuple[int, ...]
    max_abs: float
    psnr: float
    passed: bool


@dataclass
class ValidationReport:
    metadata: ModelMetadata | None
    comparisons: list[Comparison] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lint_problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.comparisons)

    def format(self) -> str:
        lines = []
        crit = (
            "max abs <= 1e-4"
            if not self.metadata or self.metadata.precision == "fp32"
            else f"PSNR >= {FP16_MIN_PSNR:g} dB"
        )
        if self.comparisons:
            lines.append(
                f"{'runtime':<12} {'input':<10} {'shape':<18} {'max abs':>10} "
                f"{'PSNR dB':>8}  ({crit})"
            )
        for c in self.comparisons:
            lines.append(
                f"{c.runtime:<12} {c.input:<10} {'x'.join(map(str, c.shape)):<18} "
                f"{c.max_abs:>10.2e} {c.psnr:>8.2f}  {'ok' if c.passed else 'FAIL'}"
            )
        lines += [f"problem: {p}" for p in self.problems]
        lines.append(
            "TensorRT lint: "
            + ("ok" if not self.lint_problems else f"{len(self.lint_problems)} problem(s)")
        )
        lines += [f"  {p}" for p in self.lint_problems]
        return "\n".join(lines)


def sample_pattern(height: int = 47, width: int = 61) -> np.ndarray:
    """A deterministic 1x3xHxW float32 [0, 1] image with edges, gradients and texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(x / 3.0) * np.cos(y / 5.0)
    g = (x + y) / (height + width)
    b = ((x // 8 + y // 8) % 2).astype(np.float32) * 0.8 + 0.1
    return np.stack([r, g, b])[None].astype(np.float32)


def _load_sample(path: str | Path | None) -> tuple[str, np.ndarray]:
    if path is None:
        return "pattern", sample_pattern()
    from overnet.imaging import read_rgb8, rgb8_to_nchw

    rgb, _ = read_rgb8(path)
    return Path(path).stem, rgb8_to_nchw(rgb[:96, :96])  # a crop keeps the check quick


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _runners(data: bytes) -> dict[str, object]:
    runners = {}
    ort = require("onnxruntime", "validating ONNX exports")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    runners["onnxruntime"] = lambda x: session.run(None, {INPUT_NAME: x})[0]
    if available("openvino"):
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(
            core.read_model(data), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
        )
        runners["openvino"] = lambda x: compiled(x)[0]
    return runners


def validate_onnx(model_or_path, reference=None, *, sample_image=None) -> ValidationReport:
    """Check an ONNX model; with ``reference`` (an OverNet), compare outputs numerically."""
    onnx = require("onnx", "validating ONNX exports")
    from overnet.export.trt_lint import lint_tensorrt

    proto = (
        onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    )
    props = {p.key: p.value for p in proto.metadata_props}
    metadata = ModelMetadata.from_props(props)
    report = ValidationReport(metadata)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        report.problems.append(f"onnx checker: {exc}")
        return report
    report.lint_problems = lint_tensorrt(proto).problems
    if metadata is None:
        report.problems.append("no overnet metadata (scale, precision): not exported by overnet")
        return report
    inputs = [
        (f"random{i}", np.random.default_rng(i).random(s, dtype=np.float32))
        for i, s in enumerate(RANDOM_SHAPES)
    ]
    inputs.append(_load_sample(sample_image))
    try:
        runners = _runners(proto.SerializeToString())
    except Exception as exc:  # a runtime refusing the file is a validation failure
        report.problems.append(f"runtime could not load the model: {exc}")
        return report
    for name, x in inputs:
        expected = _reference_output(reference, x, metadata) if reference else None
        for runtime, run in runners.items():
            try:
                y = np.asarray(run(x))
            except Exception as exc:  # report and keep checking other runtimes
                report.problems.append(f"{runtime} failed on {name} {x.shape}: {exc}")
                continue
            want = _expected_shape(x.shape, metadata)
            if y.dtype != np.float32:
                report.problems.append(f"{runtime}: output is {y.dtype}, expected float32")
            if y.shape != want:
                report.problems.append(
                    f"{runtime}: output {y.shape} for input {x.shape}, expected {want}"
                )
                continue
            if expected is None:
                continue
            max_abs = float(np.abs(y - expected).max())
            psnr = _psnr(y, expected)
            ok = max_abs <= FP32_MAX_ABS if metadata.precision == "fp32" else psnr >= FP16_MIN_PSNR
            report.comparisons.append(Comparison(runtime, name, x.shape, max_abs, psnr, ok))
    return report


def _expected_shape(shape: tuple[int, ...], metadata: ModelMetadata) -> tuple[int, ...]:
    n, _, h, w = shape
    if metadata.overscale:  # the features: F channels at the upscale
        return (n, metadata.channels, h * metadata.upscale, w * metadata.upscale)
    return (n, 3, *output_size(h, w, metadata.scale))


def _reference_output(model, x: np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    torch = require("torch", "comparing against the PyTorch model")
    with torch.inference_mode():
        if metadata.overscale:
            return model.overscaled_features(torch.from_numpy(x)).numpy()
        return model(torch.from_numpy(x), metadata.scale).numpy()
