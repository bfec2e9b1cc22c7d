"""What kind of model a user handed over, and the ONNX file an ONNX backend should load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnet.errors import InputError

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".safetensors", ".ckpt", ".bin")

#: model kind -> backends that can load it directly
LOADABLE_BY = {
    "onnx": ("openvino", "onnxruntime"),
    "engine": ("tensorrt",),
    "checkpoint": ("torch",),
    "module": ("torch",),
}


@dataclass(frozen=True)
class ModelSource:
    """A model file or in-memory ``torch.nn.Module`` with its detected kind."""

    kind: str  # "onnx" | "engine" | "checkpoint" | "module"
    path: Path | None = None
    module: Any = None

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else type(self.module).__name__


def _looks_like_onnx(path: Path) -> bool:
    # ModelProto starts with ir_version (field 1, varint: 0x08) in every exporter we know of.
    with path.open("rb") as fh:
        return fh.read(1) == b"\x08"


def detect_source(model: Any) -> ModelSource:
    """Classify ``model`` (path or module); raises InputError for anything else."""
    if hasattr(model, "state_dict") and callable(getattr(model, "forward", None)):
        return ModelSource("module", module=model)
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(
            f"expected a model path (.onnx, .engine, .pth/.safetensors) or a torch module, "
            f"got {type(model).__name__}"
        )
    path = Path(model)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"model file {path} is empty (0 bytes); re-export or re-download it")
    name = path.name.lower()
    if name.endswith(ENGINE_SUFFIXES):
        return ModelSource("engine", path)
    if name.endswith(ONNX_SUFFIXES):
        return ModelSource("onnx", path)
    if name.endswith(CHECKPOINT_SUFFIXES):
        return ModelSource("checkpoint", path)
    if _looks_like_onnx(path):
        return ModelSource("onnx", path)
    raise InputError(
        f"cannot tell what {path} is from its name: expected .onnx (onnxruntime/openvino), "
        f".engine/.plan (tensorrt) or a checkpoint .pth/.pth.tar/.safetensors (torch)"
    )


def check_backend_can_load(source: ModelSource, backend: str) -> None:
    """Refuse a model file meant for another backend, saying which would load it."""
    if backend in LOADABLE_BY[source.kind]:
        return
    if source.kind == "checkpoint" and backend in ("openvino", "onnxruntime"):
        return  # exported to a cached ONNX file first (see cached_onnx)
    what = {
        "onnx": "an ONNX model",
        "engine": "a TensorRT engine",
        "checkpoint": "a PyTorch checkpoint",
        "module": "a torch module",
    }[source.kind]
    raise InputError(
        f"{source.label} is {what}, which the {backend} backend cannot load; use backend "
        f"{' or '.join(LOADABLE_BY[source.kind])}"
        + (", or export it first with `overnet export`" if source.kind == "engine" else "")
    )


def cache_dir() -> Path:
    """Where exported ONNX files for checkpoints are kept ($OVERNET_CACHE or ~/.cache)."""
    root = os.environ.get("OVERNET_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "overnet"


def cached_onnx(checkpoint: Path, scale: float | None, fp16: bool = False) -> Path:
    """Export ``checkpoint`` to ONNX once and reuse it (keyed by the file's sha256).

    Needs the ``export`` extra (torch + onnx); the ONNX backends themselves do not.
    """
    from overnet.formats.digest import sha256_file

    digest = sha256_file(checkpoint)[:16]
    tag = f"x{scale:g}" if scale is not None else "native"
    target = cache_dir() / "onnx" / f"{digest}-{tag}-{'fp16' if fp16 else 'fp32'}.onnx"
    if target.is_file():
        return target
    from overnet.export import export_onnx

    target.parent.mkdir(parents=True, exist_ok=True)
    # Validation is skipped here: export correctness is covered by its own tests, and a
    # cached file is reused many times.
    export_onnx(checkpoint, target, scale=scale, fp16=fp16, validate=False, overwrite=True)
    return target
