"""Device and pinned host buffers, a stream, an event and a CUDA graph, through cuda-python.

Buffers grow on demand and are reused while a request fits, so repeated calls with the
same shape allocate nothing. Pinned (page-locked) host memory makes the copies truly
asynchronous and about twice as fast as pageable numpy memory.

Every object here owns CUDA resources that only ``free()`` / ``destroy()`` release. One
that is garbage-collected still holding them emits a ResourceWarning naming it, and frees
nothing: a CUDA call from ``__del__`` could run on any thread at any moment (in the middle
of another thread's graph capture, on the wrong current device, during interpreter
shutdown), so the leak is reported rather than repaired.
"""

from __future__ import annotations

import ctypes
import sys
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from overnet.cuda.cudart import CudaError, add_note, check


def _warn_unreleased(obj: object, what: str, release: str) -> None:
    """The ResourceWarning of an object collected while still holding CUDA resources."""
    warnings.warn(
        f"{what} was garbage-collected without {release}(): it stays allocated until the "
        f"process exits; call {release}() (or close the session that owns it)",
        ResourceWarning,
        stacklevel=2,
        source=obj,
    )


def _is_null(handle: Any) -> bool:
    """True for None and for a cuda-python handle whose address is 0."""
    if handle is None:
        return True
    try:
        return int(handle) == 0
    except (TypeError, ValueError):
        return False


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
        self._stream: Any = None  # set first: __del__ may see an object whose create failed
        self.handle = 0
        self._stream = check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.handle = native_handle(self._stream)

    @property
    def raw(self) -> Any:
        return self._stream

    def _live(self) -> Any:
        if self._stream is None:
            # cuda-python reads None as stream 0, the legacy default stream: refuse instead
            raise CudaError("the CUDA stream was already destroyed")
        return self._stream

    def synchronize(self) -> None:
        check(
            self._cudart,
            self._cudart.cudaStreamSynchronize(self._live()),
            "cudaStreamSynchronize (an earlier asynchronous error surfaces here too)",
        )

    def destroy(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            check(self._cudart, self._cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def __del__(self, _warn: Any = _warn_unreleased, _finalizing: Any = sys.is_finalizing) -> None:
        if getattr(self, "_stream", None) is not None and not _finalizing():
            _warn(self, f"CUDA stream {self.handle:#x}", "destroy")


class Event:
    """A CUDA event: orders work on one stream after work enqueued on another, on the GPU.

    Streams are cuda-python handles or ints (torch's ``cuda_stream``). One event may be
    recorded again: a wait orders after the record that preceded it.
    """

    def __init__(self, cudart: ModuleType) -> None:
        self._cudart = cudart
        self._event: Any = None  # set first: __del__ may see an object whose create failed
        self.handle = 0
        self._event = check(cudart, cudart.cudaEventCreate(), "cudaEventCreate")
        self.handle = native_handle(self._event)

    def _live(self) -> Any:
        if self._event is None:
            raise CudaError("the CUDA event was already destroyed")
        return self._event

    def record(self, stream: Any) -> None:
        """Mark the point ``stream`` has reached: everything enqueued on it so far."""
        check(self._cudart, self._cudart.cudaEventRecord(self._live(), stream), "cudaEventRecord")

    def stream_wait(self, stream: Any) -> None:
        """Make work enqueued on ``stream`` from now on wait for the recorded point."""
        result = self._cudart.cudaStreamWaitEvent(stream, self._live(), 0)
        check(self._cudart, result, "cudaStreamWaitEvent")

    def synchronize(self) -> None:
        """Block the calling thread until the recorded point is reached."""
        check(
            self._cudart,
            self._cudart.cudaEventSynchronize(self._live()),
            "cudaEventSynchronize (an earlier asynchronous error surfaces here too)",
        )

    def destroy(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            check(self._cudart, self._cudart.cudaEventDestroy(event), "cudaEventDestroy")

    def __del__(self, _warn: Any = _warn_unreleased, _finalizing: Any = sys.is_finalizing) -> None:
        if getattr(self, "_event", None) is not None and not _finalizing():
            _warn(self, f"CUDA event {self.handle:#x}", "destroy")


class _GrowingBuffer:
    """Memory from a cudart allocator pair that only grows (``ensure``) and is reused."""

    _ALLOC = ""
    _FREE = ""

    def __init__(self, cudart: ModuleType, name: str = "") -> None:
        self._cudart = cudart
        self.name = name  # shown in the ResourceWarning of a buffer never freed
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
        """Release the memory (idempotent; the buffer is empty even if the free call fails)."""
        ptr, self.ptr, self.nbytes = self.ptr, 0, 0
        if ptr:
            check(self._cudart, getattr(self._cudart, self._FREE)(ptr), self._FREE)

    def __del__(self, _warn: Any = _warn_unreleased, _finalizing: Any = sys.is_finalizing) -> None:
        if getattr(self, "ptr", 0) and not _finalizing():
            label = f" {self.name!r}" if self.name else ""
            _warn(self, f"{type(self).__name__}{label} of {self.nbytes} bytes", "free")


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

    def __init__(self, cudart: ModuleType, name: str = "tensor") -> None:
        # each half warns on its own (naming this tensor) if collected without free()
        self.device = DeviceBuffer(cudart, f"{name} (device)")
        self.host = PinnedBuffer(cudart, f"{name} (pinned host)")

    def ensure(self, nbytes: int) -> bool:
        """True when the device address changed (bound addresses must be set again)."""
        moved = self.device.ensure(nbytes)
        self.host.ensure(nbytes)
        return moved

    @property
    def nbytes(self) -> int:
        return self.device.nbytes + self.host.nbytes

    def free(self) -> None:
        try:
            self.device.free()
        finally:
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
    drops it whenever either changes. Construction either succeeds or leaves nothing
    behind: the capture is always ended (or the stream stays unusable) and any graph it
    produced is destroyed; an exception from ``work`` is the one raised, with a failed end
    of capture added as a note.
    """

    def __init__(self, cudart: ModuleType, stream: Stream, work: Any) -> None:
        self._cudart = cudart
        self._graph: Any = None
        self._exec: Any = None
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(cudart, cudart.cudaStreamBeginCapture(stream.raw, mode), "cudaStreamBeginCapture")
        try:
            work()
        except BaseException as exc:
            try:
                self._release(self._end_capture(stream))
            except CudaError as end_error:
                add_note(exc, f"(ending the CUDA stream capture also failed: {end_error})")
            raise
        graph = self._end_capture(stream)
        try:
            graph_exec = check(
                cudart, cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate"
            )
        except BaseException as exc:
            try:
                self._release(graph)
            except CudaError as destroy_error:
                add_note(exc, f"(destroying the captured graph also failed: {destroy_error})")
            raise
        self._graph, self._exec = graph, graph_exec

    def _end_capture(self, stream: Stream) -> Any:
        """The captured graph; CudaError (after destroying any graph returned) on failure."""
        result = self._cudart.cudaStreamEndCapture(stream.raw)
        try:
            return check(self._cudart, result, "cudaStreamEndCapture")
        except CudaError as end_error:
            # the runtime returns no graph with an error; destroy one should a binding do so
            try:
                self._release(result[1] if len(result) > 1 else None)
            except CudaError as destroy_error:
                add_note(end_error, f"(destroying the returned graph failed: {destroy_error})")
            raise

    def _release(self, graph: Any) -> None:
        """Destroy a captured graph not (or no longer) owned by this object."""
        if not _is_null(graph):
            check(self._cudart, self._cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def launch(self, stream: Stream) -> None:
        if self._exec is None:
            raise CudaError("the CUDA graph was already destroyed")
        check(self._cudart, self._cudart.cudaGraphLaunch(self._exec, stream.raw), "cudaGraphLaunch")

    def destroy(self) -> None:
        """Release the executable graph and the graph (idempotent; both are attempted)."""
        graph_exec, graph = self._exec, self._graph
        self._exec = self._graph = None
        try:
            if graph_exec is not None:
                check(
                    self._cudart,
                    self._cudart.cudaGraphExecDestroy(graph_exec),
                    "cudaGraphExecDestroy",
                )
        finally:
            self._release(graph)

    def __del__(self, _warn: Any = _warn_unreleased, _finalizing: Any = sys.is_finalizing) -> None:
        held = getattr(self, "_exec", None) is not None or getattr(self, "_graph", None) is not None
        if held and not _finalizing():
            _warn(self, "CUDA graph", "destroy")
