"""OpenVINO backend: the fastest CPU runtime measured here (f32; bf16 where the CPU has it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError, MissingDependencyError
from overnet.runtime.base import Session, SessionInfo, as_numpy
from overnet.runtime.onnx_common import input_feeds, onnx_facts, probe_scale

#: our precision names -> OpenVINO inference precision hints
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


class OpenVinoSession(Session):
    """An ONNX file compiled by OpenVINO for ``device`` (CPU by default, dynamic shapes)."""

    def __init__(
        self,
        path: Path,
        *,
        device: str = "cpu",
        scale: float | None = None,
        precision: str = "fp32",
        threads: int | None = None,
    ) -> None:
        ov = require("openvino", "the openvino backend")
        facts = onnx_facts(path, scale)
        ov_device = "CPU" if device == "cpu" else device.upper()
        core = ov.Core()
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
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, ov_device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long text
            raise InputError(f"OpenVINO could not load {path}: {exc}") from None
        actual = str(self._compiled.get_property("INFERENCE_PRECISION_HINT"))
        inputs = [
            (i.get_any_name(), i.get_partial_shape().rank.get_length())
            for i in self._compiled.inputs
        ]
        self._input, self._extra = input_feeds(inputs, facts)
        self._request = self._compiled.create_infer_request()
        self.info = SessionInfo(
            backend="openvino",
            device=", ".join(self._compiled.get_property("EXECUTION_DEVICES")),
            device_type="cpu" if device.upper() == "CPU" else "gpu",
            precision=precision,
            scale=facts.scale if facts.scale is not None else probe_scale(self._raw_run),
            upscale=facts.upscale,
            model=str(path),
            threads=int(self._compiled.get_property("INFERENCE_NUM_THREADS")) or None,
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
