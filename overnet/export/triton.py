"""Triton Inference Server model repositories (`overnet export --format triton`).

One model per scale, named ``overnet_x<scale>``::

    REPO/overnet_x2/config.pbtxt
    REPO/overnet_x2/1/model.onnx         backend onnxruntime (CPU or GPU instances)
    REPO/overnet_x2/1/model.plan         backend tensorrt, with model.plan.json (sidecar)

Input ``lr`` and output ``sr`` are TYPE_FP32 with dims ``[3, -1, -1]`` (the batch axis
is Triton's, up to ``max_batch_size``); dynamic batching with a queue delay; a warm-up
request of zeros. The text is written here without tritonclient; ``parse_config`` reads
it back with Triton's own ``ModelConfig`` protobuf (``tritonclient`` ships it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from overnet._atomic import write_text_atomic
from overnet._optional import install_hint, require
from overnet.errors import InputError, MissingDependencyError

DEFAULT_MAX_BATCH = 8
DEFAULT_QUEUE_DELAY_US = 2000
#: warm-up input (height, width) of ONNX models; TensorRT models warm up at --opt
WARMUP_HW = (64, 64)
KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}


@dataclass(frozen=True)
class TritonConfig:
    """What ``config.pbtxt`` says about one model."""

    name: str
    backend: str  # "onnxruntime" or "tensorrt"
    max_batch_size: int
    kind: str = "KIND_CPU"
    instances: int = 1
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    warmup: tuple[int, int, int] = (1, *WARMUP_HW)  # batch, height, width
    comment: str = ""

    def text(self) -> str:
        n, h, w = self.warmup
        tensor = "    data_type: TYPE_FP32\n    dims: [ 3, -1, -1 ]"
        return (
            "".join(f"# {line}\n" for line in self.comment.splitlines())
            + f'name: "{self.name}"\n'
            + f'backend: "{self.backend}"\n'
            + f"max_batch_size: {self.max_batch_size}\n"
            + f'input [\n  {{\n    name: "lr"\n{tensor}\n  }}\n]\n'
            + f'output [\n  {{\n    name: "sr"\n{tensor}\n  }}\n]\n'
            + f"instance_group [\n  {{\n    kind: {self.kind}\n"
            + f"    count: {self.instances}\n  }}\n]\n"
            + f"dynamic_batching {{\n  max_queue_delay_microseconds: {self.queue_delay_us}\n}}\n"
            + "model_warmup [\n  {\n"
            + f'    name: "zeros"\n    batch_size: {n}\n'
            + '    inputs {\n      key: "lr"\n      value {\n        data_type: TYPE_FP32\n'
            + f"        dims: [ 3, {h}, {w} ]\n        zero_data: true\n      }}\n    }}\n"
            + "  }\n]\n"
        )


@dataclass(frozen=True)
class RepositoryModel:
    scale: float
    folder: Path  # REPO/<name>
    model_file: Path  # REPO/<name>/1/model.onnx or model.plan
    config: TritonConfig


def model_name(scale: float) -> str:
    return f"overnet_x{float(scale):g}".replace(".", "_")


def model_config_pb2() -> ModuleType:
    """Triton's ``model_config_pb2`` (from tritonclient), or MissingDependencyError."""
    purpose, hint = "checking Triton model configs", install_hint("tritonclient", "triton")
    try:
        return require("tritonclient.grpc.model_config_pb2", purpose, "triton")
    except RuntimeError as exc:  # tritonclient.grpc raises this when grpcio is missing
        raise MissingDependencyError(f"{exc}; install it with: {hint}") from exc


def parse_config(text: str) -> Any:
    """``config.pbtxt`` text -> ``inference.ModelConfig`` (InputError when it does not
    parse against Triton's schema)."""
    from google.protobuf import text_format

    message = model_config_pb2().ModelConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise InputError(f"not a Triton model config: {exc}") from exc
    return message


def _plan(repo: Path, scales: Sequence[float], overwrite: bool) -> list[tuple[float, Path]]:
    if repo.exists() and not repo.is_dir():
        raise InputError(f"-o {repo} is a file; a Triton model repository is a folder")
    planned = [(s, repo / model_name(s)) for s in scales]
    existing = [str(folder) for _, folder in planned if folder.exists()]
    if existing and not overwrite:
        raise InputError(f"{', '.join(existing)} exist(s); pass --overwrite to replace")
    return planned


def _scales(weights: str | Path, scales: Sequence[float] | None) -> list[float]:
    from overnet.export.tensorrt.engine_export import check_scales
    from overnet.weights import load_weights

    loaded = load_weights(weights)
    return check_scales(scales or [loaded.config.scale], loaded.config.upscale, weights)


def _finish(folder: Path, model_file: Path, config: TritonConfig, scale: float) -> RepositoryModel:
    write_text_atomic(folder / "config.pbtxt", config.text())
    return RepositoryModel(scale, folder, model_file, config)


def write_onnx_models(
    weights: str | Path,
    repo: str | Path,
    *,
    scales: Sequence[float] | None = None,
    fp16: bool = False,
    device: str = "cpu",
    max_batch: int = DEFAULT_MAX_BATCH,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
    overwrite: bool = False,
    validate: bool = True,
    echo: Callable[[str], None] = print,
) -> list[RepositoryModel]:
    """An onnxruntime-backend model per scale: ONNX with dynamic batch, height, width."""
    from overnet._version import __version__
    from overnet.export import export_onnx

    if device not in KINDS:
        raise InputError(f"instances run on {' or '.join(KINDS)}, got {device!r}")
    if max_batch < 1:
        raise InputError(f"max batch must be at least 1, got {max_batch}")
    repo = Path(repo)
    planned = _plan(repo, _scales(weights, scales), overwrite)
    models = []
    for scale, folder in planned:
        target = folder / "1" / "model.onnx"
        target.parent.mkdir(parents=True, exist_ok=True)
        result = export_onnx(
            weights, target, scale=scale, fp16=fp16, overwrite=overwrite, validate=validate
        )
        if result.validation is not None:
            echo(result.validation.format())
        config = TritonConfig(
            name=folder.name,
            backend="onnxruntime",
            max_batch_size=max_batch,
            kind=KINDS[device],
            queue_delay_us=queue_delay_us,
            comment=f"overnet {__version__}: {Path(weights).name} at x{scale:g}, "
            f"{result.metadata.precision} ONNX",
        )
        models.append(_finish(folder, target, config, scale))
    return models


def write_tensorrt_models(
    weights: str | Path,
    repo: str | Path,
    *,
    scales: Sequence[float] | None = None,
    profile: Any = None,
    options: Any = None,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
    overwrite: bool = False,
    validate: bool = True,
    echo: Callable[[str], None] = print,
) -> list[RepositoryModel]:
    """A tensorrt-backend model per scale: the engine ``export_tensorrt`` builds (FP16,
    one optimisation profile), as ``1/model.plan`` with its sidecar beside it.
    ``max_batch_size`` is the profile's largest batch; the warm-up uses its opt shape."""
    from overnet._version import __version__
    from overnet.export.tensorrt import Profile, export_tensorrt

    repo = Path(repo)
    profile = profile or Profile.parse()
    planned = _plan(repo, _scales(weights, scales), overwrite)
    models = []
    with tempfile.TemporaryDirectory(prefix="overnet-triton-") as staging:
        built = export_tensorrt(
            weights,
            staging,
            scales=[s for s, _ in planned],
            profile=profile,
            options=options,
            validate=validate,
            echo=echo,
        )
        for engine, (scale, folder) in zip(built, planned, strict=True):
            target = folder / "1" / "model.plan"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(engine.engine, target)
            shutil.copyfile(engine.sidecar, target.with_name("model.plan.json"))
            config = TritonConfig(
                name=folder.name,
                backend="tensorrt",
                max_batch_size=profile.max[0],
                kind="KIND_GPU",
                queue_delay_us=queue_delay_us,
                warmup=(profile.opt[0], profile.opt[2], profile.opt[3]),
                comment=f"overnet {__version__}: {Path(weights).name} at x{scale:g}, FP16 "
                f"TensorRT engine, profile min/opt/max {' / '.join(profile.texts())}",
            )
            models.append(_finish(folder, target, config, scale))
    return models


def write_repository(
    weights: str | Path,
    repo: str | Path,
    *,
    backend: str = "onnxruntime",
    build: tuple[Any, Any] | None = None,
    device: str = "cpu",
    max_batch: int = DEFAULT_MAX_BATCH,
    **common: Any,
) -> list[RepositoryModel]:
    """``write_onnx_models`` (backend onnxruntime) or ``write_tensorrt_models`` (backend
    tensorrt, ``build`` = (Profile, BuildOptions) or None for the defaults)."""
    if backend == "tensorrt":
        profile, options = build or (None, None)
        common.pop("fp16", None)  # engines are FP16 whatever was asked
        return write_tensorrt_models(weights, repo, profile=profile, options=options, **common)
    if backend != "onnxruntime":
        raise InputError(f"Triton backend must be onnxruntime or tensorrt, got {backend!r}")
    return write_onnx_models(weights, repo, device=device, max_batch=max_batch, **common)


def summary(models: Sequence[RepositoryModel], repo: str | Path) -> str:
    """What was written, whether each config parses as Triton's ModelConfig, and the
    tritonserver command."""
    lines = []
    for model in models:
        try:
            parse_config((model.folder / "config.pbtxt").read_text(encoding="utf-8"))
            checked = "parses as Triton's ModelConfig (tritonclient's model_config_pb2)"
        except MissingDependencyError as exc:
            checked = f"was not checked against Triton's schema: {exc}"
        lines.append(
            f"x{model.scale:g}: {model.model_file} ({model.config.backend}); config {checked}"
        )
    lines.append(f"serve it with: tritonserver --model-repository {Path(repo).resolve()}")
    return "\n".join(lines)
