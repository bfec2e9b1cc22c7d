"""OpenVINO backend: the fastest CPU runtime measured here (f32; bf16 where the CPU has it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError, MissingDependencyError, ModelLoadError
from overnet.runtime.base import Session, SessionInfo, as_numpy
from overnet.runtime.model_source import ModelSource, onnx_model_for
from overnet.runtime.onnx_common import OnnxModelFacts, input_feeds, onnx_facts, probe_scale
from overnet.runtime.spec import BackendSpec, Variant

#: our precision names -> OpenVINO inference precision hints
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


@dataclass
class CompiledOnnx:
    """An ONNX file compiled by OpenVINO for one device and precision."""

    compiled: Any  # openvino.CompiledModel
    facts: OnnxModelFacts
    device: str  # "cpu", "gpu", ...
    precision: str


def _check_device(core: Any, device: str, precision: str) -> str:
    """OpenVINO's device name; refuses a precision the device would quietly replace."""
    ov_device = "CPU" if device == "cpu" else device.upper()
    if ov_device not in core.available_devices:
        raise MissingDependencyError(
            f"OpenVINO device {ov_device} is not available (available: "
            f"{', '.join(core.available_devices)})"
        )
    if precision not in _HINTS:
        raise InputError(f"precision must be one of {', '.join(_HINTS)}, got {precision!r}")
    capabilities = list(core.get_property(ov_device, "OPTIMIZATION_CAPABILITIES"))
    if precision in _CAPABILITY and _CAPABILITY[precision] not in capabilities:
        # OpenVINO would quietly run f32 instead; say so rather than mislabel the result.
        raise InputError(
            f"OpenVINO cannot run {precision} on this {ov_device} (capabilities: "
            f"{', '.join(capabilities)}); use precision fp32"
        )
    return ov_device


def compile_onnx(
    path: Path,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    scale: float | None = None,
    threads: int | None = None,
) -> CompiledOnnx:
    """Read and compile ``path``; ModelLoadError (cause kept) when OpenVINO cannot."""
    ov = require("openvino", "the openvino backend")
    facts = onnx_facts(path, scale)
    core = ov.Core()
    ov_device = _check_device(core, device, precision)
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": _HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled = core.compile_model(core.read_model(str(path)), ov_device, config)
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long text
        raise ModelLoadError(f"OpenVINO could not load {path}: {exc}") from exc
    return CompiledOnnx(compiled, facts, device, precision)


class OpenVinoSession(Session):
    """A compiled ONNX model (``compile_onnx``) with one infer request (dynamic shapes)."""

    def __init__(self, loaded: CompiledOnnx) -> None:
        compiled, facts = loaded.compiled, loaded.facts
        self._compiled = compiled
        inputs = [
            (i.get_any_name(), i.get_partial_shape().rank.get_length()) for i in compiled.inputs
        ]
        self._input, self._extra = input_feeds(inputs, facts)
        self._request = compiled.create_infer_request()
        actual = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.info = SessionInfo(
            backend="openvino",
            device=", ".join(compiled.get_property("EXECUTION_DEVICES")),
            device_type="cpu" if loaded.device == "cpu" else "gpu",
            precision=loaded.precision,
            scale=facts.scale if facts.scale is not None else probe_scale(self._raw_run),
            upscale=facts.upscale,
            model=str(facts.path),
            threads=int(compiled.get_property("INFERENCE_NUM_THREADS")) or None,
            metadata=facts.metadata,
            notes=[f"inference precision {actual}"],
        )
        if facts.precision == "fp16":
            self.info.notes.append("fp16 file: OpenVINO computes in the precision above")

    def _raw_run(self, batch: np.ndarray) -> np.ndarray:
        result = self._request.infer({self._input: batch, **self._extra})
        # The request owns the output buffer and reuses it on the next call: copy it out.
        return np.array(result[self._compiled.outputs[0]], dtype=np.float32, copy=True)

    def _run(self, batch: Any) -> np.ndarray:
        return self._raw_run(as_numpy(batch))

    def close(self) -> None:
        self._request = None
        self._compiled = None
        super().close()


def _open(source: ModelSource, options: dict[str, Any]) -> OpenVinoSession:
    precision = options.pop("precision", None) or "fp32"
    path = onnx_model_for(source, options, "fp32")  # OpenVINO picks its own precision
    return OpenVinoSession(compile_onnx(path, precision=precision, **options))


BACKEND = BackendSpec(
    name="openvino",
    module="openvino",
    extra="openvino",
    loads=("onnx",),
    converts=("checkpoint",),
    factory=_open,
    rank={"cpu": 0, "cuda": 1},
    fast_precisions={"cpu": ("bf16",)},
    # peak-RSS growth per input pixel: 13,093 B (upscale 3) / 16,878 B (upscale 4)
    memory=(8_200, 545),
    variants=(
        Variant("openvino", summary="OpenVINO fp32 (CPU default)"),
        Variant(
            "openvino-bf16",
            {"precision": "bf16"},
            summary="OpenVINO bf16 (CPUs with AVX512_BF16/AMX)",
        ),
    ),
    summary="ONNX through OpenVINO: the fastest CPU runtime measured here",
)
