"""onnxruntime-gpu's TensorRT execution provider as an alternative route to the same engines.

Usage::

    session = open_session("overnet_x2_fp16.onnx", "ort-trt", device="cuda")
    # same as providers=ort_trt_providers(cache_dir() / "ort-trt"); other cache or profile:
    session = open_session("overnet_x2_fp16.onnx", "ort-trt", device="cuda",
                           trt_cache_dir="trt-cache", trt_profile={"max_shape": "2x3x720x1280"})

The session's ``info.min_hw``/``max_hw``/``max_batch`` follow the provider's profile, so the
Upscaler tiles within it.

Precision: the provider builds *weakly typed* TensorRT networks, where a float16 layer
is allowed only when the builder's FP16 flag is set: with ``trt_fp16_enable`` off,
TensorRT refused FP16 ONNX files ("fp16 precision has been set for a layer or layer
output, but fp16 is not configured in the builder", NVIDIA/TensorRT#3277, TensorRT 8.6).
So ``trt_fp16_enable`` follows the file: on for an ONNX whose ``overnet.precision``
metadata is ``fp16`` (``tensorrt_provider(onnx=...)``, ``with_onnx_precision``), off for
an FP32 file (no FP16 the file did not ask for). The flag also lets TensorRT pick FP16
for the FP32 islands the FP16 export keeps (its Resizes and final add); the
``tensorrt`` backend (strongly typed engines) keeps them FP32.

Versions: onnxruntime-gpu's TensorRT provider targets TensorRT 10.x (onnxruntime 1.18-1.22
list TensorRT 10.0-10.9), not 11: its precision switches (``trt_fp16_enable``,
``trt_int8_enable``) are the weak-typing builder flags TensorRT 11 removed. The ``tensorrt``
backend (engines from ``overnet export --format tensorrt``) runs on 10.1+ and 11.x.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overnet.formats.onnx_metadata import INPUT_NAME, read_onnx_metadata

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
    onnx: str | Path | None = None,
) -> tuple[str, dict[str, Any]]:
    """``("TensorrtExecutionProvider", options)``: an explicit profile (all three shapes, as
    the provider requires), and engine + timing caches under ``cache_dir``; with ``onnx``,
    ``trt_fp16_enable`` when that file is an FP16 export (see the module docstring)."""
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
    if onnx is not None and is_fp16_onnx(onnx):
        options["trt_fp16_enable"] = True
    return TRT_PROVIDER, options


def is_fp16_onnx(path: str | Path) -> bool:
    """True for an ONNX file whose ``overnet.precision`` metadata says ``fp16``."""
    return read_onnx_metadata(path).get("overnet.precision") == "fp16"


def with_onnx_precision(providers: list[Any], onnx: str | Path) -> list[Any]:
    """``providers`` with ``trt_fp16_enable`` set on the TensorRT provider's options when
    ``onnx`` is an FP16 export (providers chosen before the file was known). A provider
    given by name only, or options that already say ``trt_fp16_enable``, are left alone."""
    result = list(providers)
    for i, item in enumerate(result):
        if isinstance(item, str) or item[0] != TRT_PROVIDER:
            continue
        options = dict(item[1] or {})
        if "trt_fp16_enable" not in options and is_fp16_onnx(onnx):
            options["trt_fp16_enable"] = True
            result[i] = (item[0], options)
    return result


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
    *,
    onnx: str | Path | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Providers of the ``ort-trt`` backend name: ``ort_trt_providers`` with the engine and
    timing caches under ``overnet.cache.cache_dir()/"ort-trt"`` (unless
    ``cache_dir``), the default profile shapes (unless ``profile``: tensorrt_provider's
    keyword arguments), the device id of ``device`` ("cuda:1" -> 1) and, given ``onnx``,
    ``trt_fp16_enable`` for an FP16 file."""
    from overnet.cache import cache_dir as overnet_cache_dir

    _, _, index = device.partition(":")
    options = dict(profile or {})
    options.setdefault("device_id", int(index) if index.isdigit() else 0)
    if onnx is not None:
        options.setdefault("onnx", onnx)
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
