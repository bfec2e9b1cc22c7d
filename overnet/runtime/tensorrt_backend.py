"""TensorRT backend: a serialized engine run through name-based I/O and cuda-python memory.

``run`` takes an Nx3xHxW float32 RGB [0, 1] batch: a numpy array (copied through pinned
host buffers, returns numpy) or a torch CUDA tensor (zero-copy: TensorRT reads its memory
and writes a new torch CUDA tensor on torch's current stream, returned without a sync).
Shapes outside the engine's optimisation profile are refused (Upscaler tiles within it).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.cuda.buffers import CudaGraph, Stream, TensorBuffers, copy_async
from overnet.cuda.cudart import (
    CudaError,
    gpu_info,
    load_cudart,
    mem_get_info,
    parse_device,
    set_device,
)
from overnet.errors import InputError
from overnet.runtime.base import Session, SessionInfo

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


def _is_torch_cuda(batch: Any) -> bool:
    return type(batch).__module__.startswith("torch") and bool(getattr(batch, "is_cuda", False))


class TensorRTSession(Session):
    """A ``.engine`` built by ``overnet export --format tensorrt`` (checked against its
    sidecar unless ``verify=False``). ``cuda_graph=True`` replays a captured CUDA graph
    while the input shape stays the same (numpy inputs).

    A version-compatible engine carries its own lean runtime (host code), which TensorRT
    runs only when told to trust the plan (``engine_host_code_allowed``): that is done when
    its sidecar says it was built version-compatible (and its sha256 matches), or when the
    caller passes ``trust_host_code=True`` (an engine without a sidecar, ``verify=False``).
    Only trust engines you built or got from a trusted source."""

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "cuda",
        scale: float | None = None,
        precision: str | None = None,
        threads: int | None = None,
        cuda_graph: bool = False,
        verify: bool = True,
        trust_host_code: bool = False,
    ) -> None:
        from overnet.formats.sidecar import (
            check_compatible,
            check_engine_file,
            read_sidecar,
        )

        trt = require("tensorrt", "the TensorRT backend")
        cudart = load_cudart()
        self._trt, self._cudart = trt, cudart
        self._graph: CudaGraph | None = None
        self._stream: Stream | None = None
        path = Path(path)
        index = parse_device(device)
        gpu = gpu_info(index, cudart)
        set_device(index, cudart)
        self._device_index = index
        sidecar = None
        if verify:
            sidecar = read_sidecar(path)
            check_compatible(path, sidecar, str(trt.__version__), gpu.name, gpu.compute_capability)
            data = check_engine_file(path, sidecar)
        else:
            data = path.read_bytes()
        rebuild = f" Rebuild it with:\n  {sidecar.rebuild_command}" if sidecar else ""
        free_before, total = mem_get_info(cudart)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        version_compatible = bool(sidecar and sidecar.build_options.get("version_compatible"))
        if version_compatible or trust_host_code:
            # a version-compatible plan carries its own lean runtime (host code), which
            # TensorRT loads only when the application says it trusts the plan
            self._runtime.engine_host_code_allowed = True
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            hint = ""
            if sidecar is None and not trust_host_code:
                hint = (
                    " If it was built version-compatible (--version-compatible), TensorRT runs "
                    "it only when its host code is trusted: keep its sidecar beside it (verify="
                    "True), or pass trust_host_code=True if you trust where it came from."
                )
            raise InputError(
                f"TensorRT {trt.__version__} could not deserialize {path} ({len(data)} bytes): "
                "the file is truncated or damaged, not a TensorRT engine, or built by another "
                f"TensorRT version or GPU (see TensorRT's message above).{hint}{rebuild}"
            )
        self._input, self._output = self._io_names(path)
        lo, _opt, hi = (_dims(d) for d in self._engine.get_tensor_profile_shape(self._input, 0))
        self._profile_min, self._profile_max = lo, hi
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise CudaError(
                f"TensorRT could not create an execution context for {path}: it needs "
                f"{self._engine.device_memory_size_v2 / 2**20:.0f} MiB of GPU memory for "
                "activations; free GPU memory or rebuild with a smaller --max shape"
            )
        self._stream = Stream(cudart)
        self._in = TensorBuffers(cudart)
        self._out = TensorBuffers(cudart)
        self._shape: Shape | None = None
        self._out_shape: Shape | None = None
        self._bound: tuple[int, int] | None = None
        self._use_graph = cuda_graph
        self._engine_file = len(data)
        self._free_before, self._total = free_before, total
        self._free_after = mem_get_info(cudart)[0]
        try:  # release the stream and context if the engine is not what was asked for
            engine_scale = sidecar.scale if sidecar else self._probe_scale()
            if scale is not None and abs(float(scale) - engine_scale) > 1e-6:
                raise InputError(
                    f"{path} was built for x{engine_scale:g}, not x{scale:g}; build an engine for "
                    f"that scale (`overnet export --format tensorrt --scales {scale:g}`)"
                )
            engine_precision = sidecar.precision if sidecar else "fp16"
            if precision is not None and precision != engine_precision:
                raise InputError(
                    f"{path} is a {engine_precision} engine; an engine runs in the precision it "
                    "was built with (TensorRT 11 engines are strongly typed: the ONNX sets it)"
                )
        except BaseException:
            self.close()
            raise
        notes = []
        if threads:
            notes.append("threads does not apply to TensorRT (GPU); ignored")
        if not verify:
            notes.append("sidecar not checked (verify=False)")
        if trust_host_code and not version_compatible:
            notes.append("engine host code allowed (trust_host_code=True)")
        self.info = SessionInfo(
            backend="tensorrt",
            device=f"cuda:{index} ({gpu.name}, sm {gpu.compute_capability})",
            device_type="gpu",
            precision=engine_precision,
            scale=engine_scale,
            upscale=(sidecar.upscale or None) if sidecar else None,
            model=str(path),
            providers=[f"TensorRT {trt.__version__}"] + (["cuda-graph"] if cuda_graph else []),
            min_hw=(lo[2], lo[3]),
            max_hw=(hi[2], hi[3]),
            max_batch=hi[0],
            metadata={
                "tensorrt_version": str(trt.__version__),
                "profile": f"{'x'.join(map(str, lo))}..{'x'.join(map(str, hi))}",
            },
            notes=notes,
        )

    # -- engine facts --------------------------------------------------------------------

    def _io_names(self, path: Path) -> tuple[str, str]:
        trt, engine = self._trt, self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(
                f"{path} has inputs {inputs} and outputs {outputs}; an overnet engine has one "
                "input (lr) and one output (sr)"
            )
        for name in (inputs[0], outputs[0]):
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            if dtype != np.float32:
                raise InputError(
                    f"{path}: tensor '{name}' is {dtype}, expected float32 I/O (the FP16 "
                    "export keeps float32 inputs/outputs); re-export with `overnet export`"
                )
        return inputs[0], outputs[0]

    def _probe_scale(self) -> float:
        """Scale from the output shape of the profile's minimum input (no sidecar)."""
        shape = self._profile_min
        out = self._set_shape(shape)
        return out[-1] / shape[-1]

    # -- running -------------------------------------------------------------------------

    def _set_shape(self, shape: Shape) -> Shape:
        """Set the input shape (only when it changes); returns the output shape."""
        if shape != self._shape:
            if not self._context.set_input_shape(self._input, shape):
                raise InputError(
                    f"TensorRT refused input shape {'x'.join(map(str, shape))}: the engine's "
                    f"profile is {'x'.join(map(str, self._profile_min))} .. "
                    f"{'x'.join(map(str, self._profile_max))}; tile the image or rebuild "
                    "with other --min/--max shapes"
                )
            self._drop_graph()
            self._shape = shape
            self._out_shape = _dims(self._context.get_tensor_shape(self._output))
        return self._out_shape

    def _execute(self, stream_handle: int) -> None:
        if not self._context.execute_async_v3(stream_handle):
            raise CudaError("TensorRT execute_async_v3 failed (see TensorRT's message above)")

    def _bind(self, in_ptr: int, out_ptr: int) -> None:
        if self._bound != (in_ptr, out_ptr):
            self._context.set_tensor_address(self._input, in_ptr)
            self._context.set_tensor_address(self._output, out_ptr)
            self._drop_graph()  # a captured graph holds the old addresses
            self._bound = (in_ptr, out_ptr)

    def _check_min_batch(self, n: int) -> None:
        if n < self._profile_min[0]:
            raise InputError(
                f"batch {n} is below the engine profile's minimum {self._profile_min[0]}"
            )

    def _run(self, batch: Any) -> Any:
        if _is_torch_cuda(batch):
            return self._run_torch(batch)
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
        if self._use_graph and self._graph is None:
            # captured after a normal run of this shape, so TensorRT's shape-dependent
            # setup happened outside the capture; replayed from the next call on
            self._graph = CudaGraph(cudart, stream, lambda: self._execute(stream.handle))
        return result

    def _run_torch(self, batch: Any) -> Any:
        torch = sys.modules["torch"]
        if batch.device.index not in (None, self._device_index):
            raise InputError(
                f"the tensor is on {batch.device}, this engine runs on cuda:{self._device_index}"
            )
        x = batch if batch.dtype == torch.float32 else batch.float()
        x = x.contiguous()
        shape = tuple(int(v) for v in x.shape)
        self._check_min_batch(shape[0])
        out_shape = self._set_shape(shape)
        out = torch.empty(out_shape, dtype=torch.float32, device=x.device)
        self._bind(int(x.data_ptr()), int(out.data_ptr()))
        # torch's current stream orders this after whatever produced x, and lets the
        # caller's next torch op see the result without a host sync
        self._execute(int(torch.cuda.current_stream(x.device).cuda_stream))
        self._bound = None  # torch owns these addresses; rebind our buffers next time
        return out

    # -- reporting and cleanup -----------------------------------------------------------

    def memory_report(self) -> MemoryReport:
        """Engine activation memory, I/O buffer bytes and cudaMemGetInfo deltas."""
        self._check_open()
        return MemoryReport(
            engine_activations=int(self._engine.device_memory_size_v2),
            engine_file=self._engine_file,
            io_device=self._in.device.nbytes + self._out.device.nbytes,
            io_pinned_host=self._in.host.nbytes + self._out.host.nbytes,
            gpu_total=self._total,
            gpu_free_before_load=self._free_before,
            gpu_free_after_load=self._free_after,
            gpu_free_now=mem_get_info(self._cudart)[0],
        )

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.destroy()
            self._graph = None

    def close(self) -> None:
        if self.closed:
            return
        self._drop_graph()
        for buffers in (getattr(self, "_in", None), getattr(self, "_out", None)):
            if buffers is not None:
                buffers.free()
        if self._stream is not None:
            self._stream.destroy()
            self._stream = None
        # the context must go before its engine, the engine before its runtime
        self._context = None
        self._engine = None
        self._runtime = None
        super().close()
