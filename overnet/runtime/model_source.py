"""What kind of model a user handed over, and the ONNX file an ONNX backend should load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnet._optional import available, install_hint
from overnet.cache import cache_dir
from overnet.errors import InputError, MissingDependencyError

ONNX_SUFFIXES = (".onnx",)
#: OpenVINO IR: model.xml beside its model.bin (`overnet export --format openvino`)
IR_SUFFIXES = (".xml",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".safetensors", ".ckpt", ".bin")
#: the fixed-tile edge files (`overnet export --format litert|executorch`)
LITERT_SUFFIXES = (".tflite",)
EXECUTORCH_SUFFIXES = (".pte",)

#: model kind -> how messages name it
KIND_NAMES = {
    "onnx": "an ONNX model",
    "ir": "an OpenVINO IR model",
    "engine": "a TensorRT engine",
    "checkpoint": "a PyTorch checkpoint",
    "module": "a torch module",
    "litert": "a LiteRT .tflite file",
    "executorch": "an ExecuTorch .pte program",
}


@dataclass(frozen=True)
class ModelSource:
    """A model file or in-memory ``torch.nn.Module`` with its detected kind."""

    kind: str  # "onnx" | "ir" | "engine" | "checkpoint" | "module" | "litert" | "executorch"
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
    """Classify ``model`` (path, pretrained name such as "x2", or module); raises
    InputError for anything else."""
    if hasattr(model, "state_dict") and callable(getattr(model, "forward", None)):
        return ModelSource("module", module=model)
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(
            f"expected a model path (.onnx, .xml, .engine, .pth/.safetensors) or a torch module, "
            f"got {type(model).__name__}"
        )
    path = Path(model)
    if not path.exists():
        from overnet.weights.pretrained import resolve  # "x2": pretrained weights, fetched once

        path = resolve(model)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"model file {path} is empty (0 bytes); re-export or re-download it")
    name = path.name.lower()
    if name.endswith(ENGINE_SUFFIXES):
        return ModelSource("engine", path)
    if name.endswith(ONNX_SUFFIXES):
        return ModelSource("onnx", path)
    if name.endswith(IR_SUFFIXES):
        return ModelSource("ir", path)
    if name.endswith(CHECKPOINT_SUFFIXES):
        return ModelSource("checkpoint", path)
    if name.endswith(LITERT_SUFFIXES):
        return ModelSource("litert", path)
    if name.endswith(EXECUTORCH_SUFFIXES):
        return ModelSource("executorch", path)
    if _looks_like_onnx(path):
        return ModelSource("onnx", path)
    raise InputError(
        f"cannot tell what {path} is from its name: expected .onnx (onnxruntime/openvino), "
        f".xml OpenVINO IR (openvino), .engine/.plan (tensorrt), .tflite (litert), .pte "
        f"(executorch) or a checkpoint .pth/.pth.tar/.safetensors (torch)"
    )


def cached_onnx_path(
    checkpoint: Path, scale: float | None, precision: str = "fp32", overscale: bool = False
) -> Path:
    """Where the ONNX export of ``checkpoint`` is cached: keyed by the file's sha256, the
    scale (or "overscale": the features graph), the precision, the opset and the overnet
    version (a new overnet re-exports)."""
    from overnet._version import __version__
    from overnet.formats.digest import sha256_file
    from overnet.formats.onnx_metadata import DEFAULT_OPSET

    digest = sha256_file(checkpoint)[:16]
    tag = "overscale" if overscale else f"x{scale:g}" if scale is not None else "native"
    name = f"{digest}-{tag}-{precision}-opset{DEFAULT_OPSET}-overnet{__version__}.onnx"
    return cache_dir() / "onnx" / name


def can_convert(source: ModelSource) -> bool:
    """True when a checkpoint can reach an ONNX backend: its export is cached for the
    default scale, or torch and onnx are installed to make it."""
    if source.kind != "checkpoint" or source.path is None:
        return False
    if available("torch") and available("onnx"):
        return True
    return cached_onnx_path(source.path, None).is_file()


def cached_onnx(
    checkpoint: Path, scale: float | None, precision: str = "fp32", overscale: bool = False
) -> Path:
    """Export ``checkpoint`` to ONNX once and reuse it (see cached_onnx_path).

    A cached file is used without torch; making one needs the ``export`` extra (torch +
    onnx), else MissingDependencyError says so and how to export elsewhere.
    """
    target = cached_onnx_path(checkpoint, scale, precision, overscale)
    if target.is_file():
        return target
    for module in ("torch", "onnx"):
        if not available(module):
            raise MissingDependencyError(
                f"{checkpoint} is a PyTorch checkpoint; the ONNX backends run it through an "
                f"ONNX export, and exporting needs {module}, which is not installed. Install "
                f"it with: {install_hint(module, 'export')}; or export on a machine that has "
                f"it (`overnet export --weights {checkpoint.name} -o model.onnx`) and open the "
                ".onnx file"
            )
    from overnet._atomic import write_bytes_atomic
    from overnet.weights.onnx_build import checkpoint_graph

    # Validation is skipped here: export correctness is covered by its own tests, and a
    # cached file is reused many times (`overnet export` validates what it writes).
    proto, _, _ = checkpoint_graph(
        checkpoint,
        scale=None if overscale else scale,
        fp16=precision == "fp16",
        overscale=overscale,
    )
    write_bytes_atomic(target, proto.SerializeToString())
    return target


def onnx_model_for(source: ModelSource, options: dict[str, Any], precision: str) -> Path:
    """The ONNX file an ONNX backend opens for ``source``: the file itself, or a
    checkpoint's cached export (its scale is then baked in, so ``scale`` is dropped; with
    ``overscale`` the features graph, which serves every scale)."""
    assert source.path is not None
    overscale = bool(options.pop("overscale", False))
    if source.kind != "checkpoint":
        return source.path
    return cached_onnx(source.path, options.pop("scale", None), precision, overscale)
