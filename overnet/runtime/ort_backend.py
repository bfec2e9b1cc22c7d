"""onnxruntime backend: CPU provider, or CUDA / TensorRT providers from onnxruntime-gpu."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError, MissingDependencyError
from overnet.runtime.base import Session, SessionInfo, as_numpy
from overnet.runtime.onnx_common import input_feeds, onnx_facts, probe_scale

#: short names accepted in ``providers``
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def resolve_providers(
    requested: list[str | tuple[str, dict[str, Any]]] | None, device: str, available: list[str]
) -> list[str | tuple[str, dict[str, Any]]]:
    """Explicit, ordered providers; a requested one that is missing is an error, never a
    silent fallback. Default: CPU for device "cpu", CUDA then CPU for "cuda"."""
    if requested is None:
        requested = ["cpu"] if device == "cpu" else ["cuda", "cpu"]
    resolved: list[str | tuple[str, dict[str, Any]]] = []
    for item in requested:
        name, options = (item, None) if isinstance(item, str) else item
        name = PROVIDER_ALIASES.get(name.lower(), name)
        if name not in available:
            hint = (
                "install onnxruntime-gpu instead of onnxruntime: pip install 'overnet[gpu]' "
                "(never both)"
                if name in GPU_PROVIDERS
                else "check the provider name"
            )
            raise MissingDependencyError(
                f"onnxruntime provider {name} is not available (available: "
                f"{', '.join(available)}); {hint}"
            )
        resolved.append((name, options) if options else name)
    return resolved


class OnnxRuntimeSession(Session):
    """An ONNX file in onnxruntime; input ``lr`` (or upstream ``inputs`` + ``scale``)."""

    def __init__(
        self,
        path: Path,
        *,
        device: str = "cpu",
        scale: float | None = None,
        precision: str | None = None,
        providers: list[str | tuple[str, dict[str, Any]]] | None = None,
        threads: int | None = None,
    ) -> None:
        ort = require("onnxruntime", "the onnxruntime backend")
        facts = onnx_facts(path, scale)
        if precision is not None and precision != facts.precision:
            raise InputError(
                f"{path} holds {facts.precision} weights; onnxruntime runs a file in its own "
                f"precision. For {precision} export with `overnet export"
                f"{' --fp16' if precision == 'fp16' else ''}` "
                + (
                    "(bf16 is not offered by onnxruntime: use openvino or torch)"
                    if precision == "bf16"
                    else ""
                )
            )
        chosen = resolve_providers(providers, device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # The arena keeps the largest tile's buffers forever; with varying tile shapes it grows
        # to the sum of shapes seen. Plain malloc keeps peak memory tied to the current tile.
        options.enable_cpu_mem_arena = False
        try:
            self._session = ort.InferenceSession(str(path), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InputError(f"onnxruntime could not load {path}: {exc}") from None
        ran = self._session.get_providers()
        first = chosen[0] if isinstance(chosen[0], str) else chosen[0][0]
        if first not in ran:
            raise MissingDependencyError(
                f"onnxruntime did not enable {first} (it runs {', '.join(ran)}): check the CUDA/"
                "cuDNN/TensorRT libraries that onnxruntime-gpu needs"
            )
        inputs = [(i.name, len(i.shape)) for i in self._session.get_inputs()]
        self._input, self._extra = input_feeds(inputs, facts)
        self._output = self._session.get_outputs()[0].name
        from overnet.runtime.ort_tensorrt import profile_limits

        limits = profile_limits(chosen, self._input)  # a TensorRT profile bounds the input
        self.info = SessionInfo(
            backend="onnxruntime",
            device=device if device != "cpu" else "CPU",
            device_type="cpu" if device == "cpu" else "gpu",
            precision=facts.precision,
            scale=facts.scale if facts.scale is not None else probe_scale(self._raw_run),
            upscale=facts.upscale,
            model=str(path),
            providers=ran,
            threads=threads or options.intra_op_num_threads or None,
            metadata=facts.metadata,
            **limits,
        )

    def _raw_run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run([self._output], {self._input: batch, **self._extra})[0]

    def _run(self, batch: Any) -> np.ndarray:
        return self._raw_run(as_numpy(batch)).astype(np.float32, copy=False)

    def close(self) -> None:
        self._session = None
        super().close()
