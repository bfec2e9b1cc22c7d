"""A test double of cuda-python's ``cuda.bindings.runtime`` backed by host memory.

"Device" allocations are numpy arrays whose addresses act as device pointers, so copies
and the fake TensorRT kernels move real bytes, and any access outside an allocation fails
the test. Every call returns a tuple whose first element is a ``cudaError_t``, as the real
module does. Stream capture records work instead of running it; graph launches replay it.

The functions take the arguments the real ``cuda.bindings.runtime`` (cuda-python 12.9 and
13.x) takes, by position and number (``tests/cuda/test_real_cudart.py`` checks overnet's
calls against the real module): ``cudaGraphInstantiate(graph, flags)``,
``cudaMemcpyAsync(dst, src, count, kind, stream)``, ``cudaGetDevice() -> (err, int)``,
``cudaDriverGetVersion() -> (err, int)``, ``cudaGetLastError() -> (err,)``,
``cudaStreamWaitEvent(stream, event, flags)``; a failed call returns ``(err, None)`` where
the real one returns a value.

As in CUDA: ``cudaMalloc`` returns 256-byte aligned addresses; the current device and the
last error are per thread, and every failed call becomes the calling thread's last error
(``cudaGetLastError`` returns and clears it); a capture that met an operation it cannot
record is invalidated (``FakeGpu.invalidate``) and ``cudaStreamEndCapture`` then fails;
a ``runtime_version`` newer in major than ``driver_version`` (0: no driver) makes device
calls fail with ``cudaErrorInsufficientDriver``. ``FakeGpu.log`` lists every call in order.
"""

from __future__ import annotations

import enum
import functools
import itertools
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class cudaError_t(enum.IntEnum):  # the names the real enum uses
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = 901


_ERROR_TEXT = {
    cudaError_t.cudaSuccess: b"no error",
    cudaError_t.cudaErrorInvalidValue: b"invalid argument",
    cudaError_t.cudaErrorMemoryAllocation: b"out of memory",
    cudaError_t.cudaErrorInsufficientDriver: b"CUDA driver version is insufficient",
    cudaError_t.cudaErrorNoDevice: b"no CUDA-capable device is detected",
    cudaError_t.cudaErrorStreamCaptureUnsupported: b"operation not permitted when capturing",
    cudaError_t.cudaErrorStreamCaptureInvalidated: b"operation failed due to a previous error "
    b"during capture",
}


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStreamCaptureMode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


class cudaStream_t:
    def __init__(self, handle: int = 0) -> None:
        self._handle = handle

    def __int__(self) -> int:
        return self._handle


class cudaEvent_t(cudaStream_t):
    pass


#: what CUDA guarantees for cudaMalloc, and what TensorRT requires of tensor addresses
ALIGNMENT = 256


@dataclass
class FakeGraph:
    """A captured graph or an executable graph (``handle`` is its address, never 0)."""

    ops: list[Any]
    handle: int = 0

    def __int__(self) -> int:
        return self.handle


@dataclass
class FakeProps:
    name: bytes
    major: int
    minor: int
    totalGlobalMem: int


@dataclass
class FakeGpu:
    """State shared by the fake CUDA runtime and the fake TensorRT."""

    name: str = "NVIDIA H100 80GB HBM3"
    compute_capability: tuple[int, int] = (9, 0)
    count: int = 1
    total: int = 80 << 30
    device: dict[int, np.ndarray] = field(default_factory=dict)
    pinned: dict[int, np.ndarray] = field(default_factory=dict)
    external: dict[int, np.ndarray] = field(default_factory=dict)  # e.g. fake torch tensors
    streams: set[int] = field(default_factory=set)
    capturing: dict[int, list[Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    graph_launches: int = 0
    graphs: set[int] = field(default_factory=set)  # live cudaGraph_t handles
    graph_execs: set[int] = field(default_factory=set)  # live cudaGraphExec_t handles
    set_device_calls: int = 0
    #: device pointer / stream handle -> the device that was current when it was made
    made_on: dict[int, int] = field(default_factory=dict)
    #: (current device, stream's device) at each cudaMemcpyAsync
    copies_on: list[tuple[int, int | None]] = field(default_factory=list)
    fail_malloc_over: int | None = None  # cudaMalloc of more bytes fails (OOM)
    invalidate_capture: bool = False  # cudaStreamEndCapture fails (capture invalidated)
    fail_instantiate: bool = False  # cudaGraphInstantiate fails
    fail_set_device: bool = False  # cudaSetDevice fails (e.g. the device fell off the bus)
    driver_version: int = 12080  # cudaDriverGetVersion: 12.8 (0: no driver installed)
    runtime_version: int = 12090  # cudaRuntimeGetVersion: the runtime cuda-python links
    log: list[str] = field(default_factory=list)  # every call, in order
    events: set[int] = field(default_factory=set)  # live cudaEvent_t handles
    #: (event, stream) at each cudaEventRecord; (stream, event) at each cudaStreamWaitEvent
    event_records: list[tuple[int, int]] = field(default_factory=list)
    stream_waits: list[tuple[int, int]] = field(default_factory=list)
    #: streams whose capture met an operation it cannot record (EndCapture then fails)
    invalidated: set[int] = field(default_factory=set)
    #: the stream handle of each TensorRT enqueue (appended by the fake TensorRT)
    kernels_on: list[int] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _thread: Any = field(default_factory=threading.local, repr=False)

    @property
    def current_device(self) -> int:
        """The calling thread's current device (per thread, as in CUDA; 0 at first)."""
        return getattr(self._thread, "device", 0)

    @current_device.setter
    def current_device(self, index: int) -> None:
        self._thread.device = index

    @property
    def last_error(self) -> cudaError_t:
        """The calling thread's last error (what cudaGetLastError returns and clears)."""
        return getattr(self._thread, "error", cudaError_t.cudaSuccess)

    @last_error.setter
    def last_error(self, error: cudaError_t) -> None:
        self._thread.error = error

    @property
    def insufficient_driver(self) -> bool:
        """No driver, or one older in major than the runtime cuda-python links."""
        return self.driver_version == 0 or self.driver_version // 1000 < (
            self.runtime_version // 1000
        )

    def invalidate(self, stream: int, error: cudaError_t) -> None:
        """An operation the capture of ``stream`` cannot record was attempted (e.g. a
        synchronisation inside TensorRT's enqueue): the capture is invalidated."""
        assert stream in self.capturing, "only a capturing stream can be invalidated"
        self.invalidated.add(stream)
        self.last_error = error

    @property
    def used(self) -> int:
        return sum(a.nbytes for a in self.device.values())

    def region(self, ptr: int, nbytes: int, where: str = "any") -> np.ndarray:
        """The uint8 view of [ptr, ptr + nbytes); fails outside every allocation."""
        pools = {
            "device": [self.device, self.external],
            "host": [self.pinned],
            "any": [self.device, self.pinned, self.external],
        }[where]
        for pool in pools:
            for base, arr in pool.items():
                if base <= ptr and ptr + nbytes <= base + arr.nbytes:
                    return arr[ptr - base : ptr - base + nbytes]
        raise AssertionError(
            f"fake GPU: {nbytes} bytes at {ptr:#x} are outside any {where} allocation"
        )

    def on_stream(self, stream: int, op: Any) -> None:
        """Run ``op`` now, or record it while ``stream`` is being captured."""
        if stream in self.capturing:
            self.capturing[stream].append(op)
        else:
            op()


def _ok(*values: Any) -> tuple:
    return (cudaError_t.cudaSuccess, *values)


def _logged(gpu: FakeGpu, fn: Any) -> Any:
    """``fn`` noting its call in ``gpu.log`` and a failure as the thread's last error."""

    @functools.wraps(fn)  # inspect.signature still shows fn's parameters
    def call(*args: Any, **kwargs: Any) -> tuple:
        gpu.log.append(fn.__name__)
        result = fn(*args, **kwargs)
        if fn.__name__ != "cudaGetLastError" and result[0] != cudaError_t.cudaSuccess:
            gpu.last_error = cudaError_t(result[0])
        return result

    return call


def make_fake_cudart(gpu: FakeGpu) -> types.ModuleType:
    mod = types.ModuleType("cuda.bindings.runtime")
    mod.cudaError_t = cudaError_t
    mod.cudaMemcpyKind = cudaMemcpyKind
    mod.cudaStreamCaptureMode = cudaStreamCaptureMode
    mod.cudaStream_t = cudaStream_t
    mod.cudaEvent_t = cudaEvent_t
    mod.fake_gpu = gpu

    def cudaGetErrorName(error):
        return _ok(cudaError_t(error).name.encode())

    def cudaGetErrorString(error):
        return _ok(_ERROR_TEXT[cudaError_t(error)])

    def cudaDriverGetVersion():
        return _ok(gpu.driver_version)  # succeeds without a driver too (then 0)

    def cudaRuntimeGetVersion():
        return _ok(gpu.runtime_version)

    def cudaGetLastError():
        error, gpu.last_error = gpu.last_error, cudaError_t.cudaSuccess
        return (error,)

    def _no_gpu():
        if gpu.insufficient_driver:
            return cudaError_t.cudaErrorInsufficientDriver
        return cudaError_t.cudaErrorNoDevice if gpu.count == 0 else None

    def cudaGetDeviceCount():
        if _no_gpu() is not None:
            return (_no_gpu(), None)
        return _ok(gpu.count)

    def cudaGetDevice():
        if _no_gpu() is not None:
            return (_no_gpu(), None)
        return _ok(gpu.current_device)

    def cudaSetDevice(device):
        if not isinstance(device, int):  # the real binding declares `int device`
            raise TypeError("an integer is required")
        gpu.set_device_calls += 1
        if gpu.fail_set_device or not 0 <= device < gpu.count:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.current_device = device
        return _ok()

    def cudaGetDeviceProperties(device):
        major, minor = gpu.compute_capability
        return _ok(FakeProps(gpu.name.encode() + b"\0\0", major, minor, gpu.total))

    def cudaMemGetInfo():
        return _ok(gpu.total - gpu.used, gpu.total)

    def _alloc(pool, nbytes):
        raw = np.zeros(int(nbytes) + ALIGNMENT, np.uint8)
        start = -raw.ctypes.data % ALIGNMENT  # cudaMalloc's alignment (and more)
        arr = raw[start : start + int(nbytes)]
        ptr = arr.ctypes.data
        pool[ptr] = arr
        return ptr

    def cudaMalloc(size):
        gpu.calls.append("cudaMalloc")
        if gpu.fail_malloc_over is not None and size > gpu.fail_malloc_over:
            return (cudaError_t.cudaErrorMemoryAllocation, None)
        ptr = _alloc(gpu.device, size)
        gpu.made_on[ptr] = gpu.current_device
        return _ok(ptr)

    def cudaMallocHost(size):
        gpu.calls.append("cudaMallocHost")
        return _ok(_alloc(gpu.pinned, size))

    def cudaFree(devPtr):
        return (
            _ok()
            if gpu.device.pop(int(devPtr), None) is not None
            else (cudaError_t.cudaErrorInvalidValue,)
        )

    def cudaFreeHost(ptr):
        return (
            _ok()
            if gpu.pinned.pop(int(ptr), None) is not None
            else (cudaError_t.cudaErrorInvalidValue,)
        )

    def cudaMemcpyAsync(dst, src, count, kind, stream):
        assert isinstance(dst, int) and isinstance(src, int), "pass int addresses"
        # the device current at the copy must own the stream (else CUDA copies on another
        # device's context: the bug device_scope prevents)
        gpu.copies_on.append((gpu.current_device, gpu.made_on.get(int(stream))))
        to_device = kind == cudaMemcpyKind.cudaMemcpyHostToDevice
        assert kind in (
            cudaMemcpyKind.cudaMemcpyHostToDevice,
            cudaMemcpyKind.cudaMemcpyDeviceToHost,
        )
        d = gpu.region(dst, count, "device" if to_device else "host")
        s = gpu.region(src, count, "host" if to_device else "device")
        gpu.calls.append("cudaMemcpyAsync")

        def op():
            d[:] = s

        gpu.on_stream(int(stream), op)
        return _ok()

    def cudaStreamCreate():
        handle = 0x5000 + next(gpu._ids)
        gpu.streams.add(handle)
        gpu.made_on[handle] = gpu.current_device
        return _ok(cudaStream_t(handle))

    def cudaStreamSynchronize(stream):
        assert int(stream) in gpu.streams
        return _ok()

    def cudaStreamDestroy(stream):
        gpu.streams.discard(int(stream))
        return _ok()

    def cudaStreamBeginCapture(stream, mode):
        gpu.capturing[int(stream)] = []
        return _ok()

    def cudaStreamEndCapture(stream):
        ops = gpu.capturing.pop(int(stream))
        invalidated = int(stream) in gpu.invalidated
        gpu.invalidated.discard(int(stream))
        if gpu.invalidate_capture or invalidated:  # the runtime returns no graph then
            return (cudaError_t.cudaErrorStreamCaptureInvalidated, None)
        graph = FakeGraph(ops, 0x7000 + next(gpu._ids))
        gpu.graphs.add(graph.handle)
        return _ok(graph)

    def cudaGraphInstantiate(graph, flags):
        assert isinstance(graph, FakeGraph) and isinstance(flags, int)
        assert graph.handle in gpu.graphs, "instantiating a destroyed graph"
        if gpu.fail_instantiate:
            return (cudaError_t.cudaErrorInvalidValue, None)
        graph_exec = FakeGraph(list(graph.ops), 0x9000 + next(gpu._ids))
        gpu.graph_execs.add(graph_exec.handle)
        return _ok(graph_exec)

    def cudaGraphLaunch(graphExec, stream):
        assert graphExec.handle in gpu.graph_execs, "launching a destroyed graph"
        gpu.graph_launches += 1
        for op in graphExec.ops:
            gpu.on_stream(int(stream), op)
        return _ok()

    def cudaGraphDestroy(graph):
        if int(graph) not in gpu.graphs:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.graphs.discard(int(graph))
        return _ok()

    def cudaGraphExecDestroy(graphExec):
        if int(graphExec) not in gpu.graph_execs:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.graph_execs.discard(int(graphExec))
        return _ok()

    def cudaEventCreate():
        handle = 0xE000 + next(gpu._ids)
        gpu.events.add(handle)
        gpu.made_on[handle] = gpu.current_device
        return _ok(cudaEvent_t(handle))

    def cudaEventRecord(event, stream):
        if int(event) not in gpu.events:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.event_records.append((int(event), int(stream)))
        return _ok()

    def cudaStreamWaitEvent(stream, event, flags):
        assert isinstance(flags, int)
        if int(event) not in gpu.events:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.stream_waits.append((int(stream), int(event)))
        return _ok()

    def cudaEventSynchronize(event):
        return _ok() if int(event) in gpu.events else (cudaError_t.cudaErrorInvalidValue,)

    def cudaEventDestroy(event):
        if int(event) not in gpu.events:
            return (cudaError_t.cudaErrorInvalidValue,)
        gpu.events.discard(int(event))
        return _ok()

    for fn in (
        cudaGetErrorName,
        cudaGetErrorString,
        cudaGetDeviceCount,
        cudaGetDevice,
        cudaSetDevice,
        cudaGetDeviceProperties,
        cudaMemGetInfo,
        cudaMalloc,
        cudaMallocHost,
        cudaFree,
        cudaFreeHost,
        cudaMemcpyAsync,
        cudaStreamCreate,
        cudaStreamSynchronize,
        cudaStreamDestroy,
        cudaStreamBeginCapture,
        cudaStreamEndCapture,
        cudaGraphInstantiate,
        cudaGraphLaunch,
        cudaGraphDestroy,
        cudaGraphExecDestroy,
        cudaDriverGetVersion,
        cudaRuntimeGetVersion,
        cudaGetLastError,
        cudaEventCreate,
        cudaEventRecord,
        cudaStreamWaitEvent,
        cudaEventSynchronize,
        cudaEventDestroy,
    ):
        setattr(mod, fn.__name__, _logged(gpu, fn))
    return mod


def read_floats(gpu: FakeGpu, ptr: int, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    return gpu.region(ptr, count * 4, "device").view(np.float32).reshape(shape)
