"""onnxruntime-gpu's TensorRT execution provider as an alternative route to the same engines.

Usage::

    session = open_session("overnet_x2_fp16.onnx", "ort-trt", device="cuda")
    # same as providers=ort_trt_providers(cache_dir() / "ort-trt"); other cache or profile:
    session = open_session("overnet_x2_fp16.onnx", "ort-trt", device="cuda",
                           trt_cache_dir="trt-cache", trt_profile={"max_shape": "2x3x720x1280"})

The session's ``info.min_hw``/``max_hw``/``max_batch`` follow the provider's profile, so the
Upscaler tiles within it.

The FP16 ONNX already holds float16 tensors, so ``trt_fp16_enable`` stays off (turning it
on would let TensorRT also lower the FP32 islands the export keeps on purpose).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overnet.formats.onnx_metadata import INPUT_NAME

TRT_PROVIDER = "TensorrtExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def tensorrt_provider(
    cache_dir: str | Path,
    *,
    min_shape: str = "1x3x32x32",
    opt_shape: str = "1x3x360x640",
    max_shape: str = "1x3x1080x1920",
    input_name: str = INPUT_NAME,
    device_id: int = 0,
    workspace: int | None = None,
    opt_level: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """``("TensorrtExecutionProvider", options)``: an explicit profile (all three shapes, as
    the provider requires), and engine + timing caches under ``cache_dir``."""
    from overnet.formats.profile import Profile

    profile = Profile.parse(min_shape, opt_shape, max_shape)  # validates min <= opt <= max
    lo, opt, hi = profile.texts()
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "device_id": device_id,
        "trt_profile_min_shapes": f"{input_name}:{lo}",
        "trt_profile_opt_shapes": f"{input_name}:{opt}",
        "trt_profile_max_shapes": f"{input_name}:{hi}",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
    }
    if workspace is not None:
        options["trt_max_workspace_size"] = int(workspace)
    if opt_level is not None:
        options["trt_builder_optimization_level"] = int(opt_level)
    return TRT_PROVIDER, options


def cuda_provider(device_id: int = 0) -> tuple[str, dict[str, Any]]:
    """CUDA provider for the nodes TensorRT does not take: HEURISTIC conv search, because
    EXHAUSTIVE searches again for every new tile shape."""
    return CUDA_PROVIDER, {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"}


def ort_trt_providers(cache_dir: str | Path, **profile: Any) -> list[tuple[str, dict[str, Any]]]:
    """TensorRT provider, then CUDA (never a silent CPU fallback)."""
    device_id = int(profile.get("device_id", 0))
    return [tensorrt_provider(cache_dir, **profile), cuda_provider(device_id)]


def default_ort_trt_providers(
    device: str = "cuda",
    cache_dir: str | Path | None = None,
    profile: dict[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Providers of the ``ort-trt`` backend name: ``ort_trt_providers`` with the engine and
    timing caches under ``overnet.cache.cache_dir()/"ort-trt"`` (unless
    ``cache_dir``), the default profile shapes (unless ``profile``: tensorrt_provider's
    keyword arguments) and the device id of ``device`` ("cuda:1" -> 1)."""
    from overnet.cache import cache_dir as overnet_cache_dir

    _, _, index = device.partition(":")
    options = dict(profile or {})
    options.setdefault("device_id", int(index) if index.isdigit() else 0)
    folder = Path(cache_dir) if cache_dir is not None else overnet_cache_dir() / "ort-trt"
    return ort_trt_providers(folder, **options)


def _profile_shape(text: str, input_name: str) -> tuple[int, ...] | None:
    """``lr:1x3x32x32`` (or several, comma-separated) -> the shape given for ``input_name``."""
    for entry in str(text).split(","):
        name, _, dims = entry.strip().rpartition(":")
        if name == input_name:
            return tuple(int(v) for v in dims.lower().split("x"))
    return None


def profile_limits(providers: list[Any] | None, input_name: str) -> dict[str, Any]:
    """SessionInfo limits (``min_hw``, ``max_hw``, ``max_batch``) from a TensorRT provider's
    explicit profile for ``input_name``; empty when there is none."""
    for item in providers or []:
        if isinstance(item, str) or item[0] != TRT_PROVIDER:
            continue
        options = item[1] or {}
        lo = _profile_shape(options.get("trt_profile_min_shapes", ""), input_name)
        hi = _profile_shape(options.get("trt_profile_max_shapes", ""), input_name)
        if lo is None or hi is None or len(lo) != 4 or len(hi) != 4:
            return {}
        return {"min_hw": (lo[2], lo[3]), "max_hw": (hi[2], hi[3]), "max_batch": hi[0]}
    return {}
