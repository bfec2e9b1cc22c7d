"""TensorRT backend: a serialized engine run through name-based I/O and cuda-python memory.

``run`` takes an Nx3xHxW float32 RGB [0, 1] batch: a numpy array (copied through pinned
host buffers, returns numpy) or a torch CUDA tensor (zero-copy unless it is not 256-byte
aligned: TensorRT reads its memory and writes a new torch CUDA tensor on the session's own
stream, ordered after and before the caller's torch stream by events, returned without a
host sync; see ``tensorrt_torch``). Shapes outside the engine's optimisation profile are
refused (Upscaler tiles within it).

``cuda_graph=True`` captures each input shape's enqueue into a CUDA graph after its first
run and replays it; a shape whose capture TensorRT or CUDA refuses runs without a graph
from then on (one RuntimeWarning per session, a note in ``info.notes``), as trtexec does.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from overnet.config import output_size
from overnet.cuda.buffers import CudaGraph, Stream, TensorBuffers, copy_async
from overnet.cuda.cudart import CudaError, clear_last_error, device_scope, mem_get_info
from overnet.errors import InputError, ModelLoadError
from overnet.formats.overscale_head import HEAD_KEY
from overnet.runtime.base import Session, SessionInfo
from overnet.runtime.model_source import ModelSource
from overnet.runtime.spec import BackendSpec, Variant
from overnet.runtime.tensorrt_loader import LoadedEngine, load_engine
from overnet.runtime.tensorrt_torch import (
    ALIGNMENT,
    StreamOrder,
    caller_stream,
    is_torch_cuda,
    torch_input,
    torch_output,
)

Shape = tuple[int, ...]


@dataclass
class MemoryReport:
    """GPU memory of one session, in bytes (``cudaMemGetInfo`` deltas include everything
    this process allocated meanwhile)."""

    engine_activations: int  # engine.device_memory_size_v2 (the context's scratch memory)
    engine_file: int
    io_device: int  # input + output device buffers held now
    io_pinned_host: int
    gpu_total: int
    gpu_free_before_load: int
    gpu_free_after_load: int
    gpu_free_now: int

    @property
    def load_delta(self) -> int:
        return self.gpu_free_before_load - self.gpu_free_after_load

    @property
    def used_since_load(self) -> int:
        return self.gpu_free_before_load - self.gpu_free_now

    def to_dict(self) -> dict[str, int]:
        data = asdict(self)
        data.update(load_delta=self.load_delta, used_since_load=self.used_since_load)
        return data

    def format(self) -> str:
        mib = 1 << 20
        return (
            f"engine activations {self.engine_activations / mib:.1f} MiB, engine file "
            f"{self.engine_file / mib:.1f} MiB, I/O device {self.io_device / mib:.1f} MiB, "
            f"pinned host {self.io_pinned_host / mib:.1f} MiB; GPU used by loading "
            f"{self.load_delta / mib:.1f} MiB, since loading {self.used_since_load / mib:.1f} MiB "
            f"(free {self.gpu_free_now / mib:.0f} of {self.gpu_total / mib:.0f} MiB)"
        )


def _dims(dims: Any) -> Shape:
    return tuple(int(v) for v in dims)


def _text(shape: Shape) -> str:
    return "x".join(map(str, shape))


def probed_scale(probes: list[tuple[Shape, Shape]], requested: float | None = None) -> float:
    """The scale of an engine without a sidecar, from (input, output) NCHW shapes it reported.

    Output sizes are rounded (``overnet.config.output_size``: 9 px at x2.5 give 23), so
    their ratio is not the scale: ``requested`` when ``output_size`` reproduces every probe
    with it, else the simplest fraction that does (the plain ratio if none does).
    """

    def reproduces(scale: float) -> bool:
        return all(tuple(output_size(i[2], i[3], scale)) == o[2:4] for i, o in probes)

    if requested is not None and reproduces(requested):
        return float(requested)
    # out = floor(n * s + 1/2)  <=>  (out - 1/2) / n <= s < (out + 1/2) / n, for every side
    sides = [(i[k], o[k]) for i, o in probes for k in (2, 3)]
    lo = max(Fraction(2 * out - 1, 2 * n) for n, out in sides)
    hi = min(Fraction(2 * out + 1, 2 * n) for n, out in sides)
    den = 1
    while lo < hi and den <= 1_000_000:  # the first denominator with a fraction inside
        num = math.ceil(lo * den)
        if Fraction(num, den) < hi and reproduces(num / den):
            return num / den
        den += 1
    (_, _, _, w), (_, _, _, out_w) = probes[-1]
    return out_w / w


def _io_names(loaded: LoadedEngine) -> tuple[str, str]:
    """The engine's one input and one output, both float32 (else ModelLoadError)."""
    trt, engine = loaded.trt, loaded.engine
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelLoadError(
            f"{loaded.path} has inputs {inputs} and outputs {outputs}; an overnet engine has "
            "one input (lr) and one output (sr)"
        )
    for name in (inputs[0], outputs[0]):
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
        if dtype != np.float32:
            raise ModelLoadError(
                f"{loaded.path}: tensor '{name}' is {dtype}, expected float32 I/O (the FP16 "
                "export keeps float32 inputs/outputs); re-export with `overnet export`"
            )
    return inputs[0], outputs[0]


class TensorRTSession(Session):
    """Runs an engine loaded by ``load_engine`` (or ``TensorRTSession.open(path)``).

    Sets up the execution context, stream and I/O buffers; every call runs with the
    engine's GPU made current (and the caller's restored), so sessions on different GPUs
    can share a thread. ``cuda_graph=True`` replays a captured CUDA graph while the input
    shape stays the same (numpy inputs; a shape whose capture fails runs without one).
    ``scale``/``precision``, when given, must match the engine's.
    """

    def __init__(
        self,
        loaded: LoadedEngine,
        *,
        scale: float | None = None,
        precision: str | None = None,
        threads: int | None = None,
        cuda_graph: bool = False,
    ) -> None:
        self._loaded, self._trt, self._cudart = loaded, loaded.trt, loaded.cudart
        self._device_index = loaded.device_index
        self._graph: CudaGraph | None = None
        self._no_graph: set[Shape] = set()  # shapes whose capture failed: plain enqueue
        self._stream: Stream | None = None
        self._order: StreamOrder | None = None
        self._shape: Shape | None = None
        self._out_shape: Shape | None = None
        self._bound: tuple[int, int] | None = None
        self._use_graph = cuda_graph
        with self._on_device():
            self._input, self._output = _io_names(loaded)
            lo, _opt, hi = (
                _dims(d) for d in loaded.engine.get_tensor_profile_shape(self._input, 0)
            )
            self._profile_min, self._profile_max = lo, hi
            self._context = loaded.engine.create_execution_context()
            if self._context is None:
                raise CudaError(
                    f"TensorRT could not create an execution context for {loaded.path}: it "
                    f"needs {loaded.engine.device_memory_size_v2 / 2**20:.0f} MiB of GPU memory "
                    "for activations; free GPU memory or rebuild with a smaller --max shape"
                )
            self._stream = Stream(self._cudart)
            self._order = StreamOrder(self._cudart, self._stream)
            self._in, self._out = TensorBuffers(self._cudart), TensorBuffers(self._cudart)
            self._free_after = mem_get_info(self._cudart)[0]
            try:  # release the stream and context if the engine is not what was asked for
                engine_scale, engine_precision = self._check_request(scale, precision)
            except BaseException:
                self.close()
                raise
        self.info = self._describe(engine_scale, engine_precision, threads)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        device: str = "cuda",
        verify: bool = True,
        trust_host_code: bool = False,
        **session_options: Any,
    ) -> TensorRTSession:
        """``load_engine(path, ...)`` then a session on it (``session_options``: scale,
        precision, threads, cuda_graph)."""
        loaded = load_engine(path, device=device, verify=verify, trust_host_code=trust_host_code)
        try:
            return cls(loaded, **session_options)
        except BaseException:
            loaded.release()
            raise

    def _on_device(self) -> Any:
        return device_scope(self._device_index, self._cudart)

    # -- engine facts --------------------------------------------------------------------

    def _check_request(self, scale: float | None, precision: str | None) -> tuple[float, str]:
        """The engine's scale and precision; InputError when the caller asked for others.

        The output shapes of the profile's smallest and largest inputs are probed first
        (ModelLoadError for a data-dependent one), and give the scale without a sidecar.
        """
        loaded = self._loaded
        sidecar = loaded.sidecar
        probes = [(s, self._set_shape(s)) for s in (self._profile_min, self._profile_max)]
        engine_scale = sidecar.scale if sidecar else probed_scale(probes, scale)
        if scale is not None and abs(float(scale) - engine_scale) > 1e-6:
            raise InputError(
                f"{loaded.path} was built for x{engine_scale:g}, not x{scale:g}; build an engine "
                f"for that scale (`overnet export --format tensorrt --scales {scale:g}`), or one "
                "that serves every scale of its model (`... --format tensorrt --overscale`)"
            )
        engine_precision = sidecar.precision if sidecar else "fp16"
        if precision is not None and precision != engine_precision:
            raise InputError(
                f"{loaded.path} is a {engine_precision} engine; an engine runs in the precision "
                "it was built with (TensorRT 11 engines are strongly typed: the ONNX sets it)"
            )
        return engine_scale, engine_precision

    def _describe(self, scale: float, precision: str, threads: int | None) -> SessionInfo:
        loaded, lo, hi = self._loaded, self._profile_min, self._profile_max
        version = str(self._trt.__version__)
        notes = list(loaded.notes)
        if threads:
            notes.insert(0, "threads does not apply to TensorRT (GPU); ignored")
        sidecar = loaded.sidecar
        return SessionInfo(
            backend="tensorrt",
            device=f"cuda:{loaded.device_index} ({loaded.gpu.name}, sm "
            f"{loaded.gpu.compute_capability})",
            device_type="gpu",
            precision=precision,
            scale=scale,
            upscale=(sidecar.upscale or None) if sidecar else None,
            model=str(loaded.path),
            providers=[f"TensorRT {version}"] + (["cuda-graph"] if self._use_graph else []),
            min_hw=(lo[2], lo[3]),
            max_hw=(hi[2], hi[3]),
            max_batch=hi[0],
            metadata={
                "tensorrt_version": version,
                "profile": f"{'x'.join(map(str, lo))}..{'x'.join(map(str, hi))}",
                # a features engine (--overscale): what finishes its output, as ONNX says it
                **({HEAD_KEY: sidecar.head} if sidecar and sidecar.head else {}),
            },
            notes=notes,
        )

    # -- running -------------------------------------------------------------------------

    def _set_shape(self, shape: Shape) -> Shape:
        """Set the input shape (only when it changes); returns the output shape.

        ModelLoadError for a data-dependent output shape (-1 dims: known only after the
        run), which an overnet engine never has and this session does not handle.
        """
        if shape != self._shape:
            self._shape = None
            self._drop_graph()
            if not self._context.set_input_shape(self._input, shape):
                raise InputError(
                    f"TensorRT refused input shape {_text(shape)}: the engine's profile is "
                    f"{_text(self._profile_min)} .. {_text(self._profile_max)}; tile the image "
                    "or rebuild with other --min/--max shapes"
                )
            out = _dims(self._context.get_tensor_shape(self._output))
            if any(d < 0 for d in out):
                raise ModelLoadError(
                    f"{self._loaded.path}: TensorRT reports a data-dependent output shape "
                    f"{_text(out)} for input {_text(shape)} (-1: known only after running); an "
                    "overnet engine's output size follows from its input size, so this engine "
                    "is not one: build one with `overnet export --format tensorrt`"
                )
            self._shape, self._out_shape = shape, out
        return self._out_shape

    def _execute(self, stream_handle: int) -> None:
        if not self._context.execute_async_v3(stream_handle):
            raise CudaError("TensorRT execute_async_v3 failed (see TensorRT's message above)")

    def _bind(self, in_ptr: int, out_ptr: int) -> None:
        if self._bound == (in_ptr, out_ptr):
            return
        self._drop_graph()  # a captured graph holds the old addresses
        self._bound = None
        for name, ptr in ((self._input, in_ptr), (self._output, out_ptr)):
            if not self._context.set_tensor_address(name, ptr):
                raise CudaError(
                    f"TensorRT refused the address {ptr:#x} of tensor '{name}' (see its "
                    f"message above); it takes device memory aligned to {ALIGNMENT} bytes"
                )
        self._bound = (in_ptr, out_ptr)

    def _check_min_batch(self, n: int) -> None:
        if n < self._profile_min[0]:
            raise InputError(
                f"batch {n} is below the engine profile's minimum {self._profile_min[0]}"
            )

    def _run(self, batch: Any) -> Any:
        with self._on_device():
            return self._run_on_device(batch)

    def _run_on_device(self, batch: Any) -> Any:
        if is_torch_cuda(batch):
            return self._run_torch(batch)
        self._order.wait()  # a torch enqueue still pending uses the same context
        if not isinstance(batch, np.ndarray):  # a torch CPU tensor
            batch = np.ascontiguousarray(batch.detach().float().numpy())
        shape = tuple(int(v) for v in batch.shape)
        self._check_min_batch(shape[0])
        out_shape = self._set_shape(shape)
        in_bytes, out_bytes = batch.nbytes, int(np.prod(out_shape)) * 4
        self._in.ensure(in_bytes)
        self._out.ensure(out_bytes)
        self._bind(self._in.device.ptr, self._out.device.ptr)
        cudart, stream = self._cudart, self._stream
        np.copyto(self._in.host.view(shape, np.float32), batch)
        copy_async(cudart, self._in.device.ptr, self._in.host.ptr, in_bytes, True, stream.raw)
        if self._use_graph and self._graph is not None:
            self._graph.launch(stream)
        else:
            self._execute(stream.handle)
        copy_async(cudart, self._out.host.ptr, self._out.device.ptr, out_bytes, False, stream.raw)
        stream.synchronize()
        result = self._out.host.view(out_shape, np.float32).copy()
        if self._use_graph and self._graph is None and shape not in self._no_graph:
            self._capture(shape)
        return result

    def _capture(self, shape: Shape) -> None:
        """Capture this shape's enqueue into a CUDA graph, replayed from the next call on.

        Captured after a plain run of the shape, so TensorRT's shape-dependent setup
        happened outside the capture and this call's result is already computed. A
        capture TensorRT or CUDA refuses leaves nothing behind (CudaGraph ends it and
        destroys its graph); as trtexec does, the CUDA error is cleared and the shape runs
        without a graph from then on.
        """
        stream = self._stream
        try:
            self._graph = CudaGraph(self._cudart, stream, lambda: self._execute(stream.handle))
        except CudaError as exc:
            clear_last_error(self._cudart)
            first = not self._no_graph
            self._no_graph.add(shape)
            self.info.notes.append(
                f"input {_text(shape)} runs without a CUDA graph: its capture failed ({exc})"
            )
            if first:
                warnings.warn(
                    f"CUDA graph capture failed for input {_text(shape)} ({exc}); that shape "
                    "(and any other whose capture fails) runs without a CUDA graph",
                    RuntimeWarning,
                    stacklevel=5,  # run() -> _run -> _run_on_device -> here
                )

    def _run_torch(self, batch: Any) -> Any:
        torch = sys.modules["torch"]
        x = torch_input(torch, batch, self._device_index)
        shape = tuple(int(v) for v in x.shape)
        self._check_min_batch(shape[0])
        out_shape = self._set_shape(shape)
        out = torch_output(torch, out_shape, x.device)
        caller = caller_stream(torch, x.device)
        self._bind(int(x.data_ptr()), int(out.data_ptr()))
        self._order.before(caller)  # x was written on the caller's stream
        self._execute(self._stream.handle)
        self._order.after(caller)  # the caller's next op sees out, without a host sync
        self._bound = None  # torch owns these addresses; rebind our buffers next time
        return out

    # -- reporting and cleanup -----------------------------------------------------------

    def memory_report(self) -> MemoryReport:
        """Engine activation memory, I/O buffer bytes and cudaMemGetInfo deltas."""
        self._check_open()
        loaded = self._loaded
        with self._on_device():
            free_now = mem_get_info(self._cudart)[0]
        return MemoryReport(
            engine_activations=int(loaded.engine.device_memory_size_v2),
            engine_file=loaded.file_bytes,
            io_device=self._in.device.nbytes + self._out.device.nbytes,
            io_pinned_host=self._in.host.nbytes + self._out.host.nbytes,
            gpu_total=loaded.total,
            gpu_free_before_load=loaded.free_before,
            gpu_free_after_load=self._free_after,
            gpu_free_now=free_now,
        )

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.destroy()
            self._graph = None

    def close(self) -> None:
        if self.closed:
            return
        try:
            with self._on_device():  # memory is freed on the device it was allocated on
                try:
                    if self._order is not None:
                        self._order.wait()  # a pending torch enqueue still uses all this
                finally:
                    self._release_cuda()
        finally:
            # the context must go before its engine, the engine before its runtime
            self._context = None
            self._loaded.release()
            super().close()

    def _release_cuda(self) -> None:
        self._drop_graph()
        for buffers in (getattr(self, "_in", None), getattr(self, "_out", None)):
            if buffers is not None:
                buffers.free()
        if self._order is not None:
            self._order.destroy()
            self._order = None
        if self._stream is not None:
            self._stream.destroy()
            self._stream = None


def _open(source: ModelSource, options: dict[str, Any]) -> TensorRTSession:
    device = options.pop("device", "cuda")
    return TensorRTSession.open(
        source.path,
        device=device if device != "cpu" else "cuda",
        verify=options.pop("verify", True),
        trust_host_code=options.pop("trust_host_code", False),
        **options,
    )


BACKEND = BackendSpec(
    name="tensorrt",
    module="tensorrt",
    extra="tensorrt",
    also_needs=(("cuda.bindings.runtime", "tensorrt"),),
    loads=("engine",),
    options=frozenset({"cuda_graph", "verify", "trust_host_code"}),
    factory=_open,
    rank={"cpu": 0, "cuda": 0},  # engines run only here (on a GPU whatever device says)
    # not measured (GPU memory): the largest CPU figure keeps tiles conservative
    memory=(8_200, 545),
    variants=(Variant("tensorrt", {"device": "cuda"}, summary="TensorRT engine (FP16)"),),
    summary="serialized TensorRT engines from `overnet export --format tensorrt`",
)
