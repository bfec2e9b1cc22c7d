"""overnet.cuda against the REAL cuda-python (``cuda.bindings.runtime``), without a GPU.

The real binding parses every call's arguments (their number and types) before it asks the
driver anything, so on a machine with no GPU or driver a call overnet makes with the wrong
arity or argument type raises TypeError, and a correct one returns
``cudaErrorInsufficientDriver`` / ``cudaErrorNoDevice``. These tests check that every call
overnet makes is of the second kind and ends in overnet's NoGpuError, and (through
``PretendGpu``) walk overnet's whole TensorRT call sequence with the real argument parsing.

Skipped where cuda-python is not installed. The calls with made-up pointers are skipped
where a GPU is visible (tests/runtime/test_tensorrt_gpu.py covers that machine).
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

rt = pytest.importorskip(
    "cuda.bindings.runtime",
    reason="cuda-python is not installed (pip install -c constraints/ci.txt -e '.[dev]')",
)

from overnet.cuda.buffers import (  # noqa: E402
    CudaGraph,
    DeviceBuffer,
    Event,
    PinnedBuffer,
    Stream,
    TensorBuffers,
    copy_async,
    native_handle,
)
from overnet.cuda.cudart import (  # noqa: E402
    CudaError,
    NoGpuError,
    check,
    clear_last_error,
    cuda_versions,
    device_scope,
    error_text,
    get_device,
    gpu_info,
    load_cudart,
    mem_get_info,
    set_device,
)
from overnet.errors import InputError  # noqa: E402
from tests.fakes.fake_cudart import FakeGpu, make_fake_cudart  # noqa: E402

SUCCESS = rt.cudaError_t.cudaSuccess
NO_GPU_ERRORS = (rt.cudaError_t.cudaErrorInsufficientDriver, rt.cudaError_t.cudaErrorNoDevice)
NO_GPU_MESSAGE = r"no usable CUDA GPU/driver is visible"
H2D = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
D2H = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
THREAD_LOCAL = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal

_ERR, _COUNT = rt.cudaGetDeviceCount()
HAS_GPU = _ERR == SUCCESS and bool(_COUNT)
no_gpu_only = pytest.mark.skipif(
    _ERR not in NO_GPU_ERRORS,
    reason=(
        f"a CUDA GPU is visible ({_COUNT} device(s)): these tests check the no-GPU paths "
        "and pass made-up pointers"
        if HAS_GPU
        else f"cudaGetDeviceCount returned {_ERR!r}, neither 'no driver' nor 'no device'"
    ),
)

# The cudart functions overnet calls (overnet/cuda/*), each with arguments in the exact
# forms overnet passes: Python ints for sizes, device indexes and addresses, cuda-python
# handle objects for streams and graphs, cuda-python enums for kinds and modes.
STREAM = rt.cudaStream_t(0x5001)
EVENT = rt.cudaEvent_t(0x5002)
#: the torch path passes the caller's stream as torch gives it: an int
TORCH_STREAM = 0x7777
OVERNET_CALLS = {
    "cudaGetDeviceCount": (),
    "cudaGetDeviceProperties": (0,),
    "cudaSetDevice": (0,),
    "cudaGetDevice": (),
    "cudaMemGetInfo": (),
    "cudaMalloc": (1024,),
    "cudaMallocHost": (1024,),
    "cudaFree": (0x7F0000001000,),
    "cudaFreeHost": (0x7F0000002000,),
    "cudaMemcpyAsync": (0x7F0000001000, 0x7F0000002000, 1024, H2D, STREAM),
    "cudaStreamCreate": (),
    "cudaStreamSynchronize": (STREAM,),
    "cudaStreamDestroy": (STREAM,),
    "cudaStreamBeginCapture": (STREAM, THREAD_LOCAL),
    "cudaStreamEndCapture": (STREAM,),
    "cudaGraphInstantiate": (rt.cudaGraph_t(0x6001), 0),
    "cudaGraphLaunch": (rt.cudaGraphExec_t(0x6002), STREAM),
    "cudaGraphExecDestroy": (rt.cudaGraphExec_t(0x6002),),
    "cudaGraphDestroy": (rt.cudaGraph_t(0x6001),),
    "cudaGetLastError": (),
    "cudaEventCreate": (),
    "cudaEventRecord": (EVENT, STREAM),
    "cudaStreamWaitEvent": (STREAM, EVENT, 0),
    "cudaEventSynchronize": (EVENT,),
    "cudaEventDestroy": (EVENT,),
    "cudaDriverGetVersion": (),
    "cudaRuntimeGetVersion": (),
}
#: the calls that answer without a driver: they succeed, with an int (0: no driver)
VERSION_QUERIES = ("cudaDriverGetVersion", "cudaRuntimeGetVersion")


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning of the block; garbage left by earlier tests is collected first so that
    its ResourceWarnings land outside."""
    gc.collect()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def _resource_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ResourceWarning)]


# --- the binding and overnet's entry points ---------------------------------------------


def test_load_cudart_is_the_real_module():
    assert load_cudart() is rt


@no_gpu_only
def test_tensorrt_entry_points_raise_no_gpu_error_with_a_clear_message():
    """What ``overnet export tensorrt`` and the TensorRT backend call first."""
    for call in (
        lambda: gpu_info(),
        lambda: gpu_info(0, load_cudart()),
        lambda: set_device(0),
        lambda: mem_get_info(),
    ):
        with pytest.raises(NoGpuError, match=NO_GPU_MESSAGE) as info:
            call()
        assert isinstance(info.value, CudaError)
        assert "cudaError" in str(info.value)  # names the CUDA error too


@no_gpu_only
@pytest.mark.parametrize(("name", "args"), OVERNET_CALLS.items(), ids=list(OVERNET_CALLS))
def test_real_binding_accepts_the_arguments_overnet_passes(name, args):
    """A TypeError here means overnet calls ``name`` with the wrong arity or types."""
    result = getattr(rt, name)(*args)
    if name in VERSION_QUERIES:
        assert result[0] == SUCCESS and isinstance(result[1], int), result
        return
    assert isinstance(result, tuple) and result[0] in NO_GPU_ERRORS, result
    with pytest.raises(NoGpuError, match=NO_GPU_MESSAGE):
        check(rt, result, name)


@pytest.mark.parametrize("name", sorted(OVERNET_CALLS))
def test_the_fake_cudart_takes_the_real_parameters(name):
    """tests/fakes/fake_cudart.py mimics the real signatures, so fake-only tests would also
    catch a call the real binding refuses."""
    fake = make_fake_cudart(FakeGpu())
    real = list(inspect.signature(getattr(rt, name)).parameters)
    assert list(inspect.signature(getattr(fake, name)).parameters) == real


@no_gpu_only
def test_real_binding_takes_torch_int_stream_handles():
    """The torch path records and waits on the caller's stream by its int handle."""
    for result in (
        rt.cudaEventRecord(EVENT, TORCH_STREAM),
        rt.cudaStreamWaitEvent(TORCH_STREAM, EVENT, 0),
    ):
        assert result[0] in NO_GPU_ERRORS, result


@no_gpu_only
def test_insufficient_driver_names_the_driver_and_runtime_versions():
    """The real binding here: cudaDriverGetVersion answers 0 (no driver) and the message
    says so, with the CUDA version of the runtime this cuda-python links."""
    err, driver = rt.cudaDriverGetVersion()
    _, runtime = rt.cudaRuntimeGetVersion()
    assert err == SUCCESS and runtime >= 12000
    if (_ERR, driver) != (rt.cudaError_t.cudaErrorInsufficientDriver, 0):
        pytest.skip(f"a driver is installed (CUDA {driver}) or the error is {_ERR!r}")
    with pytest.raises(NoGpuError) as info:
        gpu_info(0, rt)
    message = str(info.value)
    assert "no NVIDIA driver was found (cudaDriverGetVersion returned 0)" in message
    assert f"CUDA {runtime // 1000}.{runtime % 1000 // 10} runtime" in message
    assert "cudaErrorInsufficientDriver" in message


def test_fake_cudart_has_every_function_overnet_calls():
    fake = make_fake_cudart(FakeGpu())
    missing = [name for name in OVERNET_CALLS if not hasattr(fake, name)]
    assert not missing


def test_graph_instantiate_takes_graph_and_flags():
    """cuda-python 12.x and 13.x: ``cudaGraphInstantiate(graph, flags)`` (11.x differed)."""
    assert list(inspect.signature(rt.cudaGraphInstantiate).parameters) == ["graph", "flags"]
    with pytest.raises(TypeError):
        rt.cudaGraphInstantiate(rt.cudaGraph_t(0))


def test_error_text_names_the_error_and_describes_it():
    for err in NO_GPU_ERRORS:
        text = error_text(rt, err)
        assert text.startswith(f"{err.name}: ") and len(text) > len(err.name) + 10
    assert error_text(rt, object()) != ""  # a lookup that fails falls back to str()


def test_native_handle_of_real_handles():
    assert native_handle(rt.cudaStream_t(0x1234)) == 0x1234
    assert native_handle(rt.cudaStream_t()) == 0
    assert native_handle(rt.cudaGraph_t(0x99)) == 0x99


# --- overnet's own functions and classes on the real binding, no GPU ---------------------


@no_gpu_only
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: gpu_info(0, rt), id="gpu_info"),
        pytest.param(lambda: gpu_info(3, rt), id="gpu_info-3"),
        pytest.param(lambda: set_device(0, rt), id="set_device"),
        pytest.param(lambda: get_device(rt), id="get_device"),
        pytest.param(lambda: mem_get_info(rt), id="mem_get_info"),
        pytest.param(lambda: Stream(rt), id="Stream"),
        pytest.param(lambda: DeviceBuffer(rt).ensure(4096), id="DeviceBuffer.ensure"),
        pytest.param(lambda: PinnedBuffer(rt).ensure(4096), id="PinnedBuffer.ensure"),
        pytest.param(lambda: TensorBuffers(rt, "input").ensure(4096), id="TensorBuffers.ensure"),
        pytest.param(
            lambda: copy_async(rt, 0x7F0000001000, 0x7F0000002000, 64, True, STREAM),
            id="copy_async-h2d",
        ),
        pytest.param(
            lambda: copy_async(rt, 0x7F0000002000, 0x7F0000001000, 64, False, STREAM),
            id="copy_async-d2h",
        ),
        pytest.param(lambda: device_scope(1, rt).__enter__(), id="device_scope"),
        pytest.param(lambda: device_scope(0).__enter__(), id="device_scope-default-cudart"),
    ],
)
def test_overnet_calls_end_in_no_gpu_error(call):
    with recorded_warnings() as record, pytest.raises(NoGpuError, match=NO_GPU_MESSAGE):
        call()
    # nothing was allocated, so nothing may warn about a leak
    assert not _resource_warnings(record)


@no_gpu_only
def test_cuda_graph_begin_capture_ends_in_no_gpu_error():
    stream = Stream(PretendGpu(rt))  # a real cudaStream_t handle held by overnet's Stream
    ran = []
    with pytest.raises(NoGpuError, match=r"cudaStreamBeginCapture failed .*" + NO_GPU_MESSAGE):
        CudaGraph(rt, stream, lambda: ran.append(1))
    assert not ran
    stream.destroy()


# --- the whole TensorRT call sequence with the real argument parsing ---------------------


class PretendGpu:
    """The real ``cuda.bindings.runtime`` with the missing GPU papered over.

    Each call goes to the real binding, which parses the arguments as it would with a GPU
    (a wrong arity or type raises TypeError right there); when the call then fails only
    for want of a GPU/driver, this returns success with a stand-in value of the type the
    real call returns. Handles are made-up addresses: use without a GPU only.
    """

    STAND_INS: dict[str, Any] = {  # noqa: RUF012
        "cudaGetDeviceCount": lambda: (1,),
        "cudaGetDevice": lambda: (0,),
        "cudaGetDeviceProperties": lambda: (rt.cudaDeviceProp(),),
        "cudaMemGetInfo": lambda: (6 << 30, 8 << 30),
        "cudaMalloc": lambda: (0x7F0000100000,),
        "cudaMallocHost": lambda: (0x7F0000200000,),
        "cudaStreamCreate": lambda: (rt.cudaStream_t(0x5001),),
        "cudaStreamEndCapture": lambda: (rt.cudaGraph_t(0x6001),),
        "cudaGraphInstantiate": lambda: (rt.cudaGraphExec_t(0x6002),),
        "cudaEventCreate": lambda: (rt.cudaEvent_t(0x6003),),
    }

    def __init__(self, real: types.ModuleType) -> None:
        self._real = real
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not name.startswith("cuda") or isinstance(attr, type) or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> tuple:
            result = attr(*args, **kwargs)  # TypeError here: overnet passed a wrong argument
            self.calls.append(name)
            if result[0] not in NO_GPU_ERRORS:
                return result
            values = self.STAND_INS[name]() if len(result) > 1 else ()
            assert len(values) == len(result) - 1, f"stand-in for {name} has the wrong arity"
            return (SUCCESS, *values)

        return call


@no_gpu_only
def test_tensorrt_backend_call_sequence_against_the_real_binding():
    """gpu_info, set_device, device_scope, mem_get_info, Stream, TensorBuffers, both copies,
    a graph capture, instantiate, launch and destroy, then every release: each reaches the
    real binding with arguments it accepts."""
    cudart = PretendGpu(rt)
    with recorded_warnings() as record:
        info = gpu_info(0, cudart)
        assert info.index == 0 and info.compute_capability == "0.0"
        set_device(0, cudart)
        with device_scope(0, cudart):
            free, total = mem_get_info(cudart)
            assert (free, total) == (6 << 30, 8 << 30)
            stream = Stream(cudart)
            assert stream.handle == 0x5001 == native_handle(stream.raw)
            assert isinstance(stream.raw, rt.cudaStream_t)
            tensors = TensorBuffers(cudart, "input")
            assert tensors.ensure(1024) and not tensors.ensure(512)
            device, host = tensors.device.ptr, tensors.host.ptr

            def work():
                copy_async(cudart, device, host, 1024, True, stream.raw)
                copy_async(cudart, host, device, 1024, False, stream.raw)

            work()
            graph = CudaGraph(cudart, stream, work)
            graph.launch(stream)
            stream.synchronize()
            graph.destroy()
            clear_last_error(cudart)
            # the torch path: our stream after the caller's, the caller's after ours
            event = Event(cudart)
            event.record(TORCH_STREAM)
            event.stream_wait(stream.raw)
            event.record(stream.raw)
            event.stream_wait(TORCH_STREAM)
            event.synchronize()
            event.destroy()
            assert cuda_versions(cudart) == (0, rt.cudaRuntimeGetVersion()[1])
            tensors.free()
            stream.destroy()
    assert not _resource_warnings(record)
    assert sorted(set(OVERNET_CALLS) - set(cudart.calls)) == []  # every call was made
    assert cudart.calls.count("cudaMemcpyAsync") == 4


@no_gpu_only
def test_cuda_graph_failure_paths_against_the_real_binding():
    """work() raising ends the capture and destroys the graph, with real handle types."""
    cudart = PretendGpu(rt)
    stream = Stream(cudart)

    def work():
        copy_async(cudart, 0x7F0000100000, 0x7F0000200000, 64, True, stream.raw)
        raise ValueError("enqueue failed")

    with pytest.raises(ValueError, match="enqueue failed"):
        CudaGraph(cudart, stream, work)
    assert cudart.calls[-2:] == ["cudaStreamEndCapture", "cudaGraphDestroy"]
    stream.destroy()


@no_gpu_only
def test_gpu_info_with_a_bad_index_is_an_input_error():
    with pytest.raises(InputError, match=r"cuda:2 does not exist"):
        gpu_info(2, PretendGpu(rt))
