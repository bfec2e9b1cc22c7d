"""The torch CUDA tensor path of the TensorRT backend: aligned addresses and stream order.

TensorRT takes only tensor addresses aligned to 256 bytes (``set_tensor_address`` returns
False otherwise). torch's allocator aligns the tensors it allocates, but a view at an
offset (``big[1:3]``) need not be aligned: such an input is copied (``clone``) to fresh,
aligned memory. Outputs are always fresh ``torch.empty`` tensors.

The engine runs on the session's own stream, never on torch's current stream (which is the
legacy default stream unless the caller set one; TensorRT adds device syncs there). The
session's stream first waits for the caller's current stream, which produced the input,
and the caller's stream then waits for the session's, with one event each way, so the
output returns without a host sync and the caller's next torch op sees it. A later numpy
run, and ``close()``, wait on the host for that enqueue before reusing the execution
context and its memory. torch is never imported here: the caller's tensors bring it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from overnet.cuda.buffers import Event, Stream
from overnet.cuda.cudart import CudaError
from overnet.errors import InputError

#: the alignment TensorRT requires of every tensor address
ALIGNMENT = 256


def is_torch_cuda(batch: Any) -> bool:
    return type(batch).__module__.startswith("torch") and bool(getattr(batch, "is_cuda", False))


def _check_aligned(tensor: Any, what: str) -> None:
    ptr = int(tensor.data_ptr())
    if ptr % ALIGNMENT:
        raise CudaError(
            f"the {what} tensor's address {ptr:#x} is not {ALIGNMENT}-byte aligned, which "
            "TensorRT requires of every tensor address"
        )


def torch_input(torch: ModuleType, batch: Any, device_index: int) -> Any:
    """``batch`` as a float32, contiguous, 256-byte aligned tensor (copied when it is not);
    InputError when it is on another GPU than the engine."""
    if batch.device.index not in (None, device_index):
        raise InputError(
            f"the tensor is on {batch.device}, this engine runs on cuda:{device_index}"
        )
    x = batch if batch.dtype == torch.float32 else batch.float()
    x = x.contiguous()
    if int(x.data_ptr()) % ALIGNMENT:
        x = x.clone()  # fresh memory from torch's allocator, which aligns its blocks
    _check_aligned(x, "input")
    return x


def torch_output(torch: ModuleType, shape: tuple[int, ...], device: Any) -> Any:
    """A new float32 tensor for the engine's output (aligned, as torch allocates)."""
    out = torch.empty(shape, dtype=torch.float32, device=device)
    _check_aligned(out, "output")
    return out


def caller_stream(torch: ModuleType, device: Any) -> int:
    """The handle of torch's current stream on ``device`` (0: the legacy default stream)."""
    return int(torch.cuda.current_stream(device).cuda_stream)


class StreamOrder:
    """Orders the session's stream after the caller's torch stream, and the caller's after
    it, with two events (made on first use); ``wait`` blocks until the last enqueue is done.
    """

    def __init__(self, cudart: ModuleType, stream: Stream) -> None:
        self._cudart, self._stream = cudart, stream
        self._ready: Event | None = None  # recorded on the caller's stream
        self._done: Event | None = None  # recorded on the session's stream
        self._pending = False

    def before(self, caller: int) -> None:
        """Before the enqueue: the session's stream waits for the caller's work so far."""
        if self._ready is None:
            self._ready = Event(self._cudart)
        self._ready.record(caller)
        self._ready.stream_wait(self._stream.raw)

    def after(self, caller: int) -> None:
        """After the enqueue: the caller's stream waits for it, on the GPU (no host sync)."""
        if self._done is None:
            self._done = Event(self._cudart)
        self._done.record(self._stream.raw)
        self._pending = True
        self._done.stream_wait(caller)

    def wait(self) -> None:
        """Block until the last torch enqueue finished (before its context or memory is
        used again by a numpy run, or freed)."""
        if self._pending and self._done is not None:
            self._done.synchronize()
        self._pending = False

    def destroy(self) -> None:
        events, self._ready, self._done = (self._ready, self._done), None, None
        try:
            if events[0] is not None:
                events[0].destroy()
        finally:
            if events[1] is not None:
                events[1].destroy()
