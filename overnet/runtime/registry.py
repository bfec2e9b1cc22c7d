"""Open a model on a backend by name; ``backend="auto"`` picks the fastest one available."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overnet._optional import available, install_hint
from overnet.errors import InputError, MissingDependencyError
from overnet.runtime.base import Session
from overnet.runtime.model_source import (
    LOADABLE_BY,
    ModelSource,
    cached_onnx,
    check_backend_can_load,
    detect_source,
)

BACKENDS = ("openvino", "onnxruntime", "torch", "tensorrt")

#: the module each backend imports, and the pip extra that installs it
_NEEDS = {
    "openvino": ("openvino", "openvino"),
    "onnxruntime": ("onnxruntime", "onnxruntime"),
    "torch": ("torch", "torch"),
    "tensorrt": ("tensorrt", "tensorrt"),
}

#: names for common backend + option combinations (used by `overnet bench` and the CLI)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openvino": ("openvino", {}),
    "openvino-bf16": ("openvino", {"precision": "bf16"}),
    "onnxruntime": ("onnxruntime", {}),
    "ort-cuda": ("onnxruntime", {"device": "cuda", "providers": ["cuda"]}),
    # providers: ort_tensorrt.default_ort_trt_providers (profile, engine + timing caches)
    "ort-trt": ("onnxruntime", {"device": "cuda", "ort_trt": True}),
    "torch": ("torch", {"channels_last": False}),
    "torch-cl": ("torch", {"channels_last": True}),
    "torch-bf16": ("torch", {"precision": "bf16", "channels_last": True}),
    "torch-cuda": ("torch", {"device": "cuda"}),
    "torch-cuda-fp16": ("torch", {"device": "cuda", "precision": "fp16"}),
    "tensorrt": ("tensorrt", {"device": "cuda"}),
}


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    reason: str  # why it is unavailable ("" when available)


def backend_status() -> list[BackendStatus]:
    """Each backend and, when it cannot be used here, why (the package to install)."""
    result = []
    for name in BACKENDS:
        module, extra = _NEEDS[name]
        ok = available(module)
        reason = "" if ok else f"{module} is not installed ({install_hint(module, extra)})"
        if ok and name == "tensorrt" and not available("cuda.bindings.runtime"):
            hint = install_hint("cuda.bindings.runtime", "tensorrt")
            ok, reason = False, f"cuda-python is not installed ({hint})"
        result.append(BackendStatus(name, ok, reason))
    return result


def available_backends() -> list[str]:
    return [s.name for s in backend_status() if s.available]


def _unavailable_message(name: str) -> str:
    lines = [f"backend {name!r} is not available here."]
    for status in backend_status():
        state = "available" if status.available else f"unavailable: {status.reason}"
        lines.append(f"  {status.name}: {state}")
    return "\n".join(lines)


def choose_backend(source: ModelSource, device: str) -> str:
    """Fastest available backend for the model kind and device.

    CPU: openvino (about 6x onnxruntime here), then onnxruntime, then torch.
    CUDA: tensorrt for engines; onnxruntime (CUDA provider) for ONNX; torch otherwise.
    """
    have = set(available_backends())
    if source.kind == "engine":
        order = ["tensorrt"]
    elif source.kind == "onnx":
        order = ["openvino", "onnxruntime"] if device == "cpu" else ["onnxruntime", "openvino"]
    elif source.kind == "checkpoint" and device == "cpu" and available("onnx"):
        order = ["openvino", "onnxruntime", "torch"]  # via a cached ONNX export
    else:
        order = ["torch"]
    for name in order:
        if name in have:
            return name
    raise MissingDependencyError(
        f"no installed backend can run {source.label} ({source.kind}); it needs one of "
        f"{', '.join(order)}.\n" + _unavailable_message(order[0])
    )


def open_session(
    model: Any,
    backend: str = "auto",
    *,
    device: str = "cpu",
    precision: str | None = None,
    scale: float | None = None,
    providers: list[Any] | None = None,
    threads: int | None = None,
    channels_last: bool | None = None,
    **backend_options: Any,
) -> Session:
    """Open ``model`` (ONNX file, TensorRT engine, checkpoint or torch module).

    ``backend`` is one of BACKENDS, a VARIANTS name (e.g. ``openvino-bf16``, ``torch-cl``)
    or "auto". The returned session's ``info`` says what actually runs.
    """
    source = detect_source(model)
    options: dict[str, Any] = {}
    if backend in VARIANTS:
        backend, options = VARIANTS[backend][0], dict(VARIANTS[backend][1])
    elif backend == "auto":
        backend = choose_backend(source, device.split(":")[0])
        if backend == "torch" and device == "cpu":
            options["channels_last"] = True  # 1.7x faster than NCHW on CPU (deployment facts)
    else:
        raise InputError(
            f"unknown backend {backend!r}; expected auto, {', '.join(BACKENDS)} or one of "
            f"{', '.join(v for v in VARIANTS if v not in BACKENDS)}"
        )
    if device != "cpu" or "device" not in options:  # an explicit device wins over a variant's
        options["device"] = device
    given = {"precision": precision, "providers": providers, "channels_last": channels_last}
    options.update({k: v for k, v in given.items() if v is not None})
    options.update(backend_options)
    if backend not in available_backends():
        raise MissingDependencyError(_unavailable_message(backend))
    check_backend_can_load(source, backend)
    return _open(backend, source, scale=scale, threads=threads, **options)


def _ort_trt_providers(kw: dict[str, Any], device: str) -> None:
    """``ort-trt``: TensorRT provider with a profile and engine/timing caches (options
    ``trt_cache_dir=``, ``trt_profile=``), unless explicit ``providers`` were given."""
    ort_trt = kw.pop("ort_trt", False)
    cache, profile = kw.pop("trt_cache_dir", None), kw.pop("trt_profile", None)
    if not ort_trt:
        if cache is not None or profile is not None:
            raise InputError("trt_cache_dir / trt_profile apply to the ort-trt backend only")
        return
    if kw.get("providers") is not None:
        if cache is not None or profile is not None:
            raise InputError("give ort-trt either providers= or trt_cache_dir/trt_profile")
        return
    from overnet.runtime.ort_tensorrt import default_ort_trt_providers

    kw["providers"] = default_ort_trt_providers(device, cache, profile)


def _open(backend: str, source: ModelSource, **kw: Any) -> Session:
    device = kw.pop("device", "cpu")
    if backend in ("openvino", "onnxruntime"):
        path = source.path
        if source.kind == "checkpoint":
            fp16 = backend == "onnxruntime" and kw.get("precision") == "fp16"
            path = cached_onnx(source.path, kw.get("scale"), fp16=fp16)
            kw["scale"] = None  # baked into the exported file
        kw.pop("channels_last", None)
        if backend == "openvino":
            from overnet.runtime.openvino_backend import OpenVinoSession

            kw.pop("providers", None)
            precision = kw.pop("precision", None) or "fp32"
            return OpenVinoSession(path, device=device, precision=precision, **kw)
        from overnet.runtime.ort_backend import OnnxRuntimeSession

        _ort_trt_providers(kw, device)
        return OnnxRuntimeSession(path, device=device, **kw)
    if backend == "torch":
        from overnet.runtime.torch_backend import TorchSession

        kw.pop("providers", None)
        model = source.module if source.kind == "module" else source.path
        precision = kw.pop("precision", None) or "fp32"
        return TorchSession(model, device=device, precision=precision, **kw)
    if backend == "tensorrt":
        from overnet.runtime.tensorrt_backend import TensorRTSession

        kw.pop("channels_last", None)
        kw.pop("providers", None)
        return TensorRTSession(source.path, device=device if device != "cpu" else "cuda", **kw)
    raise InputError(f"backend must be one of {', '.join(LOADABLE_BY)}")  # unreachable
