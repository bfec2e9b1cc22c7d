"""Device and pinned host buffers, a stream and a CUDA graph, through cuda-python.

Buffers grow on demand and are reused while a request fits, so repeated calls with the
same shape allocate nothing. Pinned (page-locked) host memory makes the copies truly
asynchronous and about twice as fast as pageable numpy memory.
"""

from __future__ import annotations

import ctypes
from types import ModuleType
from typing import Any

import numpy as np

from overnet.cuda.cudart import check


def native_handle(obj: Any) -> int:
    """The address behind a cuda-python handle object (e.g. ``cudaStream_t``) as an int.

    ``cuda.bindings.utils.get_cuda_native_handle`` is the documented way in newer
    cuda-python releases; older ones (and types it does not know) fall back to ``int(obj)``.
    """
    try:
        from cuda.bindings.utils import get_cuda_native_handle
    except ImportError:
        return int(obj)
    try:
        return int(get_cuda_native_handle(obj))
    except TypeError:  # "Unknown type": a type without a registered getter
        return int(obj)


class Stream:
    """A CUDA stream created by this process (``handle`` is the int TensorRT takes)."""

    def __init__(self, cudart: ModuleType) -> None:
        self._cudart = cudart
        self._stream = check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.handle = native_handle(self._stream)

    @property
    def raw(self) -> Any:
        return self._stream

    def synchronize(self) -> None:
        check(
            self._cudart,
            self._cudart.cudaStreamSynchronize(self._stream),
            "cudaStreamSynchronize (an earlier asynchronous error surfaces here too)",
        )

    def destroy(self) -> None:
        if self._stream is not None:
            check(self._cudart, self._cudart.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
            self._stream = None


class _GrowingBuffer:
    """Memory from a cudart allocator pair that only grows (``ensure``) and is reused."""

    _ALLOC = ""
    _FREE = ""

    def __init__(self, cudart: ModuleType) -> None:
        self._cudart = cudart
        self.ptr = 0
        self.nbytes = 0

    def ensure(self, nbytes: int) -> bool:
        """Make room for ``nbytes``; True when the address changed (reallocated)."""
        if nbytes <= self.nbytes:
            return False
        self.free()
        allocate = getattr(self._cudart, self._ALLOC)
        self.ptr = int(check(self._cudart, allocate(nbytes), f"{self._ALLOC}({nbytes} bytes)"))
        self.nbytes = nbytes
        return True

    def free(self) -> None:
        if self.ptr:
            check(self._cudart, getattr(self._cudart, self._FREE)(self.ptr), self._FREE)
        self.ptr, self.nbytes = 0, 0


class DeviceBuffer(_GrowingBuffer):
    """``nbytes`` of GPU memory (cudaMalloc); grows with ``ensure``."""

    _ALLOC, _FREE = "cudaMalloc", "cudaFree"


class PinnedBuffer(_GrowingBuffer):
    """Page-locked host memory (cudaMallocHost) viewed as numpy arrays."""

    _ALLOC, _FREE = "cudaMallocHost", "cudaFreeHost"

    def view(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A numpy array over the first bytes of the buffer (no copy)."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape)) * dtype.itemsize
        if count > self.nbytes:
            raise ValueError(f"pinned buffer holds {self.nbytes} bytes, {count} requested")
        raw = (ctypes.c_byte * count).from_address(self.ptr)
        return np.frombuffer(raw, dtype=dtype).reshape(shape)


class TensorBuffers:
    """A device buffer and its pinned host staging buffer for one engine I/O tensor."""

    def __init__(self, cudart: ModuleType) -> None:
        self.device = DeviceBuffer(cudart)
        self.host = PinnedBuffer(cudart)

    def ensure(self, nbytes: int) -> bool:
        """True when the device address changed (bound addresses must be set again)."""
        moved = self.device.ensure(nbytes)
        self.host.ensure(nbytes)
        return moved

    @property
    def nbytes(self) -> int:
        return self.device.nbytes + self.host.nbytes

    def free(self) -> None:
        self.device.free()
        self.host.free()


def copy_async(
    cudart: ModuleType, dst: int, src: int, nbytes: int, to_device: bool, stream: Any
) -> None:
    kind = (
        cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        if to_device
        else cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
    )
    what = "host -> device" if to_device else "device -> host"
    check(
        cudart,
        cudart.cudaMemcpyAsync(dst, src, nbytes, kind, stream),
        f"cudaMemcpyAsync {what} ({nbytes} bytes)",
    )


class CudaGraph:
    """Work captured from a stream once and replayed with one launch.

    Valid only while the captured buffer addresses and shapes stay the same; the owner
    drops it whenever either changes.
    """

    def __init__(self, cudart: ModuleType, stream: Stream, work: Any) -> None:
        self._cudart = cudart
        self._graph = None
        self._exec = None
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(cudart, cudart.cudaStreamBeginCapture(stream.raw, mode), "cudaStreamBeginCapture")
        try:
            work()
        finally:
            # always end the capture, or the stream stays unusable
            graph = check(cudart, cudart.cudaStreamEndCapture(stream.raw), "cudaStreamEndCapture")
        self._graph = graph
        self._exec = check(cudart, cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch(self, stream: Stream) -> None:
        check(self._cudart, self._cudart.cudaGraphLaunch(self._exec, stream.raw), "cudaGraphLaunch")

    def destroy(self) -> None:
        if self._exec is not None:
            check(
                self._cudart, self._cudart.cudaGraphExecDestroy(self._exec), "cudaGraphExecDestroy"
            )
            self._exec = None
        if self._graph is not None:
            check(self._cudart, self._cudart.cudaGraphDestroy(self._graph), "cudaGraphDestroy")
            self._graph = None
