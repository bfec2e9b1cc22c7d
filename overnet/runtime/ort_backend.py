"""onnxruntime backend: CPU provider, or CUDA / TensorRT providers from onnxruntime-gpu."""

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
from overnet.runtime.ort_tensorrt import (
    default_ort_trt_providers,
    profile_limits,
    with_onnx_precision,
)
from overnet.runtime.spec import BackendSpec, Variant

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


@dataclass
class LoadedOnnx:
    """An onnxruntime InferenceSession with the facts and providers it was made with."""

    session: Any  # onnxruntime.InferenceSession
    facts: OnnxModelFacts
    providers: list[str | tuple[str, dict[str, Any]]]  # as requested (with options)
    device: str
    threads: int | None


def _check_precision(path: Path, facts: OnnxModelFacts, precision: str | None) -> None:
    if precision is None or precision == facts.precision:
        return
    how = f"`overnet export{' --fp16' if precision == 'fp16' else ''}`"
    raise InputError(
        f"{path} holds {facts.precision} weights; onnxruntime runs a file in its own "
        f"precision. For {precision} export with {how}"
        + (
            " (bf16 is not offered by onnxruntime: use openvino or torch)"
            if precision == "bf16"
            else ""
        )
    )


def load_onnx(
    path: Path,
    *,
    device: str = "cpu",
    scale: float | None = None,
    precision: str | None = None,
    providers: list[str | tuple[str, dict[str, Any]]] | None = None,
    threads: int | None = None,
) -> LoadedOnnx:
    """An InferenceSession on the requested providers (a missing one is an error, never a
    silent fallback); ModelLoadError (cause kept) when onnxruntime cannot load the file."""
    ort = require("onnxruntime", "the onnxruntime backend")
    facts = onnx_facts(path, scale)
    _check_precision(path, facts, precision)
    chosen = resolve_providers(providers, device, ort.get_available_providers())
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    # The arena keeps the largest tile's buffers forever; with varying tile shapes it grows
    # to the sum of shapes seen. Plain malloc keeps peak memory tied to the current tile.
    options.enable_cpu_mem_arena = False
    try:
        session = ort.InferenceSession(str(path), options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"onnxruntime could not load {path}: {exc}") from exc
    ran = session.get_providers()
    first = chosen[0] if isinstance(chosen[0], str) else chosen[0][0]
    if first not in ran:
        raise MissingDependencyError(
            f"onnxruntime did not enable {first} (it runs {', '.join(ran)}): check the CUDA/"
            "cuDNN/TensorRT libraries that onnxruntime-gpu needs"
        )
    return LoadedOnnx(session, facts, chosen, device, threads or options.intra_op_num_threads)


class OnnxRuntimeSession(Session):
    """A loaded ONNX file (``load_onnx``); input ``lr`` (or upstream ``inputs`` + ``scale``)."""

    def __init__(self, loaded: LoadedOnnx) -> None:
        self._session, facts = loaded.session, loaded.facts
        inputs = [(i.name, len(i.shape)) for i in self._session.get_inputs()]
        self._input, self._extra = input_feeds(inputs, facts)
        self._output = self._session.get_outputs()[0].name
        limits = profile_limits(loaded.providers, self._input)  # a TensorRT profile bounds it
        self.info = SessionInfo(
            backend="onnxruntime",
            device=loaded.device if loaded.device != "cpu" else "CPU",
            device_type="cpu" if loaded.device == "cpu" else "gpu",
            precision=facts.precision,
            scale=facts.scale if facts.scale is not None else probe_scale(self._raw_run),
            upscale=facts.upscale,
            model=str(facts.path),
            providers=self._session.get_providers(),
            threads=loaded.threads or None,
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


def _ort_trt_providers(options: dict[str, Any]) -> None:
    """``ort-trt``: TensorRT provider with a profile and engine/timing caches (options
    ``trt_cache_dir=``, ``trt_profile=``), unless explicit ``providers`` were given."""
    ort_trt = options.pop("ort_trt", False)
    cache, profile = options.pop("trt_cache_dir", None), options.pop("trt_profile", None)
    if not ort_trt:
        if cache is not None or profile is not None:
            raise InputError("trt_cache_dir / trt_profile apply to the ort-trt backend only")
        return
    if options.get("providers") is not None:
        if cache is not None or profile is not None:
            raise InputError("give ort-trt either providers= or trt_cache_dir/trt_profile")
        return
    options["providers"] = default_ort_trt_providers(options.get("device", "cuda"), cache, profile)


def _open(source: ModelSource, options: dict[str, Any]) -> OnnxRuntimeSession:
    _ort_trt_providers(options)
    path = onnx_model_for(source, options, options.get("precision") or "fp32")
    if source.kind == "checkpoint":
        options.pop("precision", None)  # the export was made in it
    if options.get("providers") is not None:  # an FP16 file needs TensorRT's fp16 switch
        options["providers"] = with_onnx_precision(options["providers"], path)
    return OnnxRuntimeSession(load_onnx(path, **options))


BACKEND = BackendSpec(
    name="onnxruntime",
    module="onnxruntime",
    extra="onnxruntime",
    loads=("onnx",),
    converts=("checkpoint",),
    options=frozenset({"providers", "ort_trt", "trt_cache_dir", "trt_profile"}),
    factory=_open,
    rank={"cpu": 1, "cuda": 0},
    fast_precisions={"cuda": ("fp16",)},  # checkpoints: an fp16 export
    # peak-RSS growth per input pixel: 8,946 B (upscale 3) / 8,945 B (upscale 4)
    memory=(7_900, 115),
    variants=(
        Variant("onnxruntime", summary="onnxruntime, CPU provider"),
        Variant(
            "ort-cuda",
            {"device": "cuda", "providers": ["cuda"]},
            summary="onnxruntime-gpu, CUDA provider",
        ),
        Variant(
            "ort-trt",
            {"device": "cuda", "ort_trt": True},
            summary="onnxruntime-gpu, TensorRT provider with engine/timing caches",
        ),
    ),
    summary="ONNX through onnxruntime (onnxruntime-gpu for CUDA/TensorRT providers)",
)
