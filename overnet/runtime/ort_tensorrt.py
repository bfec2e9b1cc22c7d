"""onnxruntime-gpu's TensorRT execution provider as an alternative route to the same engines.

Usage::

    providers = ort_trt_providers(cache_dir="trt-cache")
    session = open_session("overnet_x2_fp16.onnx", "ort-trt", providers=providers)

The FP16 ONNX already holds float16 tensors, so ``trt_fp16_enable`` stays off (turning it
on would let TensorRT also lower the FP32 islands the export keeps on purpose).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overnet.export.metadata import INPUT_NAME

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
    from overnet.export.tensorrt.profile import Profile

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
