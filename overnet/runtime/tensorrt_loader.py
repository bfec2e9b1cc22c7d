"""Loading a TensorRT engine, apart from running it (``TensorRTSession`` runs what this loads).

``load_engine`` checks the sidecar (TensorRT version, GPU, sha256), decides whether the
plan's host code may run, and deserialises the engine on the requested GPU. Nothing here
creates an execution context or allocates I/O memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from overnet._optional import require
from overnet.cuda.cudart import (
    GpuInfo,
    device_scope,
    gpu_info,
    load_cudart,
    mem_get_info,
    parse_device,
)
from overnet.errors import ModelLoadError
from overnet.formats.sidecar import EngineSidecar, check_compatible, check_engine_file, read_sidecar
from overnet.trt_logger import shared_logger


@dataclass
class LoadedEngine:
    """A deserialised engine and what it was loaded from and with.

    The runtime and logger are kept because TensorRT requires them to outlive the engine
    (the logger is the process's one, ``overnet.trt_logger.shared_logger``).
    ``free_before``/``total`` are the GPU's free/total bytes just before deserialising.
    """

    path: Path
    engine: Any  # tensorrt.ICudaEngine
    runtime: Any  # tensorrt.Runtime
    logger: Any  # tensorrt.ILogger
    trt: ModuleType
    cudart: ModuleType
    gpu: GpuInfo
    sidecar: EngineSidecar | None
    file_bytes: int
    free_before: int
    total: int
    notes: list[str] = field(default_factory=list)

    @property
    def device_index(self) -> int:
        return self.gpu.index

    @property
    def version_compatible(self) -> bool:
        return bool(self.sidecar and self.sidecar.build_options.get("version_compatible"))

    def release(self) -> None:
        """Drop the engine before its runtime (TensorRT's required order)."""
        self.engine = None
        self.runtime = None


def _read_plan(path: Path, verify: bool, trt: ModuleType, gpu: GpuInfo) -> tuple[Any, bytes]:
    """The sidecar (None without verify) and the plan bytes, checked against each other."""
    if not verify:
        return None, path.read_bytes()
    sidecar = read_sidecar(path)
    check_compatible(path, sidecar, str(trt.__version__), gpu.name, gpu.compute_capability)
    return sidecar, check_engine_file(path, sidecar)


def _not_deserialised(path: Path, nbytes: int, trt: ModuleType, sidecar, trusted: bool) -> str:
    hint = ""
    if sidecar is None and not trusted:
        hint = (
            " If it was built version-compatible (--version-compatible), TensorRT runs it only "
            "when its host code is trusted: keep its sidecar beside it (verify=True), or pass "
            "trust_host_code=True if you trust where it came from."
        )
    rebuild = f" Rebuild it with:\n  {sidecar.rebuild_command}" if sidecar else ""
    return (
        f"TensorRT {trt.__version__} could not deserialize {path} ({nbytes} bytes): the file "
        "is truncated or damaged, not a TensorRT engine, or built by another TensorRT version "
        f"or GPU (see TensorRT's message above).{hint}{rebuild}"
    )


def load_engine(
    path: str | Path,
    *,
    device: str = "cuda",
    verify: bool = True,
    trust_host_code: bool = False,
) -> LoadedEngine:
    """Deserialise the engine at ``path`` on ``device`` ("cuda" or "cuda:N").

    ``verify``: check the sidecar ``<engine>.json`` first (version, GPU, size, sha256).
    A version-compatible plan carries its own lean runtime (host code), which TensorRT runs
    only when told to trust the plan: done when its sidecar says it was built
    version-compatible (and its sha256 matched), or with ``trust_host_code=True`` (an
    engine without a sidecar). Only trust engines you built or got from a trusted source.
    Raises ModelLoadError when TensorRT cannot deserialise the file.
    """
    trt = require("tensorrt", "the TensorRT backend")
    cudart = load_cudart()
    path = Path(path)
    index = parse_device(device)
    gpu = gpu_info(index, cudart)
    with device_scope(index, cudart):
        sidecar, data = _read_plan(path, verify, trt, gpu)
        free_before, total = mem_get_info(cudart)
        logger = shared_logger(trt)  # one per process, shared with the engine builder
        runtime = trt.Runtime(logger)
        version_compatible = bool(sidecar and sidecar.build_options.get("version_compatible"))
        if version_compatible or trust_host_code:
            runtime.engine_host_code_allowed = True
        engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise ModelLoadError(_not_deserialised(path, len(data), trt, sidecar, trust_host_code))
    notes = []
    if not verify:
        notes.append("sidecar not checked (verify=False)")
    if trust_host_code and not version_compatible:
        notes.append("engine host code allowed (trust_host_code=True)")
    return LoadedEngine(
        path,
        engine,
        runtime,
        logger,
        trt,
        cudart,
        gpu,
        sidecar,
        len(data),
        free_before,
        total,
        notes,
    )
