"""The CUDA runtime through cuda-python (``cuda.bindings.runtime``): loading, error checks,
device facts and free memory. Imported only by the TensorRT code paths.

Every cuda-python runtime call returns a tuple whose first element is a ``cudaError_t``;
``check`` turns a failure into a CudaError that names the call and the CUDA error. A
``cudaErrorInsufficientDriver`` also says which CUDA version the driver supports
(``cudaDriverGetVersion``; 0: no driver) and which the runtime cuda-python links needs
(``cudaRuntimeGetVersion``; cuda-python 13 links CUDA 13), and what to install.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from overnet._optional import require
from overnet.errors import InputError, MissingDependencyError, OverNetError

CUDART_MODULE = "cuda.bindings.runtime"


class CudaError(OverNetError):
    """A CUDA runtime call failed (out of memory, no GPU, driver too old, ...)."""


class NoGpuError(CudaError):
    """No usable CUDA GPU is visible to this process."""


#: cuda-python and TensorRT are each built for one CUDA major version
CUDA_MAJOR_HINT = (
    "cuda-python's major version must match the CUDA major of the TensorRT build: "
    "tensorrt-cu12 needs cuda-python 12.x (12.6.1 or newer: cuda.bindings.runtime), "
    "tensorrt-cu13 needs cuda-python 13.x (pip install 'cuda-python>=13,<14')"
)


def load_cudart() -> ModuleType:
    """``cuda.bindings.runtime`` or MissingDependencyError naming the tensorrt extra and the
    CUDA major version cuda-python must share with TensorRT."""
    try:
        return require(CUDART_MODULE, "CUDA memory and streams of the TensorRT backend", "tensorrt")
    except MissingDependencyError as exc:
        raise MissingDependencyError(f"{exc}. {CUDA_MAJOR_HINT}") from exc.__cause__


def error_text(cudart: ModuleType, err: Any) -> str:
    """``cudaErrorMemoryAllocation: out of memory`` for a cudaError_t."""
    try:
        name = cudart.cudaGetErrorName(err)[1]
        desc = cudart.cudaGetErrorString(err)[1]
    except Exception:  # the error lookup itself must never hide the original error
        return str(err)
    name = name.decode() if isinstance(name, bytes) else str(name)
    desc = desc.decode() if isinstance(desc, bytes) else str(desc)
    return f"{name}: {desc}"


def _query_version(cudart: ModuleType, name: str) -> int | None:
    """``cudaDriverGetVersion`` / ``cudaRuntimeGetVersion`` (e.g. 12040 for 12.4), or None."""
    try:
        err, version = getattr(cudart, name)()
    except Exception:  # a version query must never hide the error being reported
        return None
    return int(version) if err == cudart.cudaError_t.cudaSuccess else None


def cuda_versions(cudart: ModuleType) -> tuple[int | None, int | None]:
    """(driver, runtime): the CUDA version the driver supports (0: no driver installed) and
    the one of the runtime cuda-python links, as CUDA writes them (12040 is 12.4)."""
    return _query_version(cudart, "cudaDriverGetVersion"), _query_version(
        cudart, "cudaRuntimeGetVersion"
    )


def _cuda_text(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def driver_hint(cudart: ModuleType) -> str:
    """What to do about ``cudaErrorInsufficientDriver``: the driver's and the runtime's CUDA
    versions, and the cuda-python that fits the driver (or a newer driver)."""
    driver, runtime = cuda_versions(cudart)
    if runtime is None:
        return "cudaRuntimeGetVersion failed too: reinstall cuda-python"
    needs = (
        f"the installed cuda-python links the CUDA {_cuda_text(runtime)} runtime, which needs "
        f"an NVIDIA driver for CUDA {runtime // 1000}.x"
    )
    if not driver:
        return (
            "no NVIDIA driver was found (cudaDriverGetVersion returned 0): install the NVIDIA "
            f"driver, or run where one is installed; {needs}"
        )
    major = driver // 1000
    if major >= runtime // 1000:
        return (
            f"the NVIDIA driver supports CUDA {_cuda_text(driver)}, older than the CUDA "
            f"{_cuda_text(runtime)} runtime the installed cuda-python links: upgrade the driver"
        )
    if major < 12:  # cuda.bindings.runtime exists from cuda-python 12.6.1 (CUDA 12)
        fix = "upgrade the NVIDIA driver (no cuda-python with cuda.bindings.runtime runs on it)"
    else:
        floor = "12.6.1" if major == 12 else str(major)
        fix = (
            f"pip install 'cuda-python>={floor},<{major + 1}' (and tensorrt-cu{major}) to match "
            "the driver, or upgrade the NVIDIA driver"
        )
    return f"the NVIDIA driver supports CUDA {_cuda_text(driver)}, but {needs}: {fix}"


def clear_last_error(cudart: ModuleType) -> Any:
    """Read and reset the calling thread's last CUDA error (``cudaGetLastError``), e.g. after
    a failed graph capture, so that it is not reported against later work; returns it."""
    return cudart.cudaGetLastError()[0]


def check(cudart: ModuleType, result: Any, what: str) -> Any:
    """Unpack a cuda-python result tuple; raise CudaError naming ``what`` on failure.

    Returns None for ``(err,)``, the value for ``(err, value)``, else the tuple of values.
    """
    err, values = result[0], tuple(result[1:])
    if err != cudart.cudaError_t.cudaSuccess:
        text = error_text(cudart, err)
        hint = ""
        if "MemoryAllocation" in text:
            hint = "; use a smaller batch/tile or free GPU memory (other processes?)"
        elif "NoDevice" in text or "InsufficientDriver" in text:
            detail = f"; {driver_hint(cudart)}" if "InsufficientDriver" in text else ""
            raise NoGpuError(
                f"{what} failed ({text}): no usable CUDA GPU/driver is visible{detail}"
            )
        raise CudaError(f"{what} failed: {text}{hint}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def parse_device(device: str) -> int:
    """``cuda`` -> 0, ``cuda:1`` -> 1; anything else is an InputError."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise InputError(
            f"the TensorRT backend runs on a CUDA device ('cuda' or 'cuda:N'), "
            f"got device {device!r}"
        )
    return int(index or 0)


@dataclass(frozen=True)
class GpuInfo:
    """What an engine is tied to: the GPU model and its compute capability."""

    index: int
    name: str
    compute_capability: str  # "8.6"
    total_memory: int  # bytes


def gpu_info(index: int = 0, cudart: ModuleType | None = None) -> GpuInfo:
    """Facts about GPU ``index``; NoGpuError when no GPU (or driver) is visible."""
    cudart = cudart or load_cudart()
    count = check(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if not count:
        raise NoGpuError("no CUDA GPU is visible (cudaGetDeviceCount = 0); TensorRT needs one")
    if index >= count:
        raise InputError(
            f"cuda:{index} does not exist: this machine has {count} GPU(s) "
            f"(cuda:0..cuda:{count - 1})"
        )
    props = check(cudart, cudart.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    return GpuInfo(
        index, str(name).strip(), f"{props.major}.{props.minor}", int(props.totalGlobalMem)
    )


def set_device(index: int, cudart: ModuleType | None = None) -> None:
    cudart = cudart or load_cudart()
    check(cudart, cudart.cudaSetDevice(index), f"cudaSetDevice({index})")


def get_device(cudart: ModuleType | None = None) -> int:
    """The calling thread's current CUDA device."""
    cudart = cudart or load_cudart()
    return int(check(cudart, cudart.cudaGetDevice(), "cudaGetDevice"))


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` where Python has it (3.11+); a no-op on 3.10."""
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)


class DeviceScope:
    """Makes CUDA device ``index`` current for a ``with`` block, then restores the previous.

    The current device is per thread, so sessions on different GPUs used from one thread
    each wrap their calls: ``with scope: ...``. Entering costs one ``cudaGetDevice`` and
    calls ``cudaSetDevice`` only when another device is current; leaving sets the previous
    device back only if entering changed it. One object may be entered again, nested and
    from several threads (each thread keeps its own stack of previous devices).
    """

    def __init__(self, index: int, cudart: ModuleType | None = None) -> None:
        self.index = int(index)
        self._cudart = cudart
        self._local = threading.local()

    def _stack(self) -> list[int | None]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def __enter__(self) -> DeviceScope:
        cudart = self._cudart = self._cudart or load_cudart()
        current = get_device(cudart)
        previous = None
        if current != self.index:
            set_device(self.index, cudart)
            previous = current
        self._stack().append(previous)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        previous = self._stack().pop()
        if previous is None:
            return
        try:
            set_device(previous, self._cudart)
        except CudaError as restore_error:
            if exc is None:
                raise
            # the block's own error is the one to report; the failed restore is a footnote
            add_note(exc, f"(restoring CUDA device {previous} also failed: {restore_error})")


def device_scope(index: int, cudart: ModuleType | None = None) -> DeviceScope:
    """``with device_scope(1, cudart): ...`` runs the block on cuda:1 and then restores the
    device that was current before (see DeviceScope)."""
    return DeviceScope(index, cudart)


def mem_get_info(cudart: ModuleType | None = None) -> tuple[int, int]:
    """(free, total) bytes on the current device."""
    cudart = cudart or load_cudart()
    free, total = check(cudart, cudart.cudaMemGetInfo(), "cudaMemGetInfo")
    return int(free), int(total)
