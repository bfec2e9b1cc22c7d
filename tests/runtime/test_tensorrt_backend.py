"""The tensorrt runtime backend against the tensorrt and cuda-python doubles (CPU only)."""

from __future__ import annotations

import json
import sys
import types
import warnings
from typing import Any

import numpy as np
import pytest

from overnet.cuda.cudart import CudaError, NoGpuError
from overnet.errors import InputError, MissingDependencyError, ModelLoadError
from overnet.export.tensorrt import BuildOptions, EngineMismatchError, Profile
from overnet.export.tensorrt.engine_export import build_with_sidecar
from overnet.formats.sidecar import sidecar_path
from overnet.runtime import open_session
from overnet.runtime.ort_backend import resolve_providers
from overnet.runtime.ort_tensorrt import (
    default_ort_trt_providers,
    ort_trt_providers,
    tensorrt_provider,
    with_onnx_precision,
)
from overnet.runtime.registry import backend_status
from overnet.runtime.tensorrt_backend import TensorRTSession
from tests.fakes.fake_cudart import ALIGNMENT
from tests.fakes.fixtures import fake_env, install, write_tiny_onnx

PROFILE = Profile.parse("1x3x8x8", "1x3x16x16", "2x3x32x40")


@pytest.fixture(params=[11, 10], ids=["trt11", "trt10"])
def trt_env(request, monkeypatch):
    """The TensorRT 11.x double, then the 10.x one."""
    yield from fake_env(request.param, monkeypatch)


REBUILD = "overnet export --format tensorrt --weights /w.pth --scales 2 -o /out --overwrite"


@pytest.fixture
def engine(trt_env, tmp_path):
    onnx = write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")
    path = tmp_path / "overnet_x2_fp16_b1-1-2_8x8-16x16-32x40.engine"
    build_with_sidecar(onnx, path, PROFILE, BuildOptions(), rebuild=REBUILD, echo=lambda _: None)
    return path


def nearest_x2(x: np.ndarray) -> np.ndarray:
    return x.repeat(2, axis=2).repeat(2, axis=3)


def edit_sidecar(engine, **changes):
    path = sidecar_path(engine)
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_open_and_run(trt_env, engine):
    with open_session(engine, "tensorrt", device="cuda") as session:
        info = session.info
        assert (info.backend, info.precision, info.scale, info.upscale) == (
            "tensorrt",
            "fp16",
            2.0,
            3,
        )
        assert (info.min_hw, info.max_hw, info.max_batch) == ((8, 8), (32, 40), 2)
        assert "NVIDIA H100" in info.device
        x = np.random.default_rng(0).random((1, 3, 12, 17), dtype=np.float32)
        y = session.run(x)
        assert y.dtype == np.float32 and y.shape == (1, 3, 24, 34)
        np.testing.assert_array_equal(y, nearest_x2(x))
        assert session.last_run_s >= 0


def test_buffers_reused_for_the_same_shape(trt_env, engine):
    gpu = trt_env.gpu
    with TensorRTSession.open(engine) as session:
        x = np.ones((1, 3, 16, 16), np.float32)
        session.run(x)
        allocations = len(gpu.calls) - gpu.calls.count("cudaMemcpyAsync")
        for _ in range(3):
            session.run(x * 0.5)
        session.run(np.ones((1, 3, 8, 8), np.float32))  # smaller: fits, still no allocation
        assert len(gpu.calls) - gpu.calls.count("cudaMemcpyAsync") == allocations
        y = session.run(np.full((2, 3, 32, 40), 0.25, np.float32))  # larger: grows
        assert len(gpu.calls) - gpu.calls.count("cudaMemcpyAsync") == allocations + 4
        assert y.shape == (2, 3, 64, 80) and np.all(y == 0.25)
    assert gpu.device == {} and gpu.pinned == {} and gpu.streams == set()  # close frees all


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 33, 20), r"outside the tensorrt profile \(max 32x40\).*tile it"),
        ((1, 3, 20, 41), "outside the tensorrt profile"),
        ((1, 3, 7, 20), "below the model minimum 8x8"),
        ((3, 3, 16, 16), "batch 3 is above the tensorrt profile maximum 2"),
        ((1, 4, 16, 16), "Nx3xHxW"),
    ],
)
def test_shapes_outside_the_profile_are_refused(trt_env, engine, shape, message):
    with TensorRTSession.open(engine) as session, pytest.raises(InputError, match=message):
        session.run(np.zeros(shape, np.float32))


def test_cuda_graph_replays_a_fixed_shape(trt_env, engine):
    gpu = trt_env.gpu
    rng = np.random.default_rng(1)
    with TensorRTSession.open(engine, cuda_graph=True) as session:
        for _ in range(3):
            x = rng.random((1, 3, 10, 12), dtype=np.float32)
            np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert gpu.graph_launches == 2  # first call runs and captures, then replays
        x = rng.random((1, 3, 9, 9), dtype=np.float32)  # new shape: plain run, recapture
        np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert gpu.graph_launches == 2
        np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert gpu.graph_launches == 3
        assert "cuda-graph" in session.info.providers


def test_stream_handle_via_get_cuda_native_handle(trt_env, engine, monkeypatch):
    """cuda-python's documented handle getter is used when it exists, int() otherwise."""
    seen = []

    def get_cuda_native_handle(obj):
        seen.append(type(obj).__name__)
        if type(obj).__name__ != "cudaStream_t":
            raise TypeError(f"Unknown type: {type(obj)}")
        return int(obj)

    utils = types.ModuleType("cuda.bindings.utils")
    utils.get_cuda_native_handle = get_cuda_native_handle
    monkeypatch.setitem(sys.modules, "cuda.bindings.utils", utils)
    x = np.ones((1, 3, 8, 8), np.float32)
    with TensorRTSession.open(engine) as session:
        np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert session._stream.handle in trt_env.gpu.streams
    assert seen == ["cudaStream_t"]
    from overnet.cuda.buffers import native_handle

    class Handle:
        def __int__(self) -> int:
            return 1234

    assert native_handle(Handle()) == 1234  # a type the getter does not know


def test_memory_report(trt_env, engine):
    with TensorRTSession.open(engine) as session:
        session.run(np.zeros((1, 3, 16, 16), np.float32))
        report = session.memory_report()
        assert report.engine_activations == 64 << 20
        in_bytes, out_bytes = 3 * 16 * 16 * 4, 3 * 32 * 32 * 4
        assert report.io_device == report.io_pinned_host == in_bytes + out_bytes
        assert report.used_since_load == in_bytes + out_bytes  # the fake counts device mallocs
        assert report.engine_file == engine.stat().st_size
        assert "engine activations 64.0 MiB" in report.format()
        assert set(report.to_dict()) >= {"load_delta", "used_since_load", "gpu_total"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tensorrt_version": "9.9.9"}, "built with TensorRT 9.9.9, this is TensorRT 1"),
        ({"gpu_name": "NVIDIA A10", "compute_capability": "8.6"}, "built on NVIDIA A10"),
    ],
)
def test_engine_from_another_tensorrt_or_gpu_is_refused(trt_env, engine, changes, message):
    edit_sidecar(engine, **changes)
    with pytest.raises(EngineMismatchError, match=message) as info:
        open_session(engine, "tensorrt", device="cuda")
    assert REBUILD in str(info.value)


def test_truncated_engine(trt_env, engine):
    data = engine.read_bytes()
    engine.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or damaged") as info:
        TensorRTSession.open(engine)
    assert REBUILD in str(info.value)
    # without the sidecar check, TensorRT's own refusal becomes a clear error too
    with pytest.raises(ModelLoadError, match=r"could not deserialize .* truncated or damaged"):
        TensorRTSession.open(engine, verify=False)


def test_no_sidecar_needs_verify_false(trt_env, engine):
    sidecar_path(engine).unlink()
    with pytest.raises(InputError, match="no sidecar"):
        TensorRTSession.open(engine)
    with TensorRTSession.open(engine, verify=False) as session:  # scale read from the engine
        assert session.info.scale == 2.0 and session.info.upscale is None
        assert "sidecar not checked" in session.info.notes[0]


def test_version_compatible_engine_loads_and_runs(trt_env, tmp_path):
    """The plan carries host code (its lean runtime): TensorRT deserializes it only with
    engine_host_code_allowed, which the sidecar (or trust_host_code=True) grants."""
    onnx = write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")
    path = tmp_path / "vc.engine"
    options = BuildOptions(version_compatible=True)
    build_with_sidecar(onnx, path, PROFILE, options, rebuild=REBUILD, echo=lambda _: None)
    major = trt_env.version.split(".")[0]
    edit_sidecar(path, tensorrt_version=f"{major}.0.0.1")  # built by an older release
    x = np.random.default_rng(3).random((1, 3, 9, 11), dtype=np.float32)
    with open_session(path, "tensorrt", device="cuda") as session:
        np.testing.assert_array_equal(session.run(x), nearest_x2(x))
    assert trt_env.trt.runtimes[-1].engine_host_code_allowed is True
    sidecar_path(path).unlink()
    with pytest.raises(ModelLoadError, match=r"version-compatible.*sidecar.*trust_host_code=True"):
        TensorRTSession.open(path, verify=False)
    assert trt_env.gpu.streams == set()
    with TensorRTSession.open(path, verify=False, trust_host_code=True) as session:
        np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert "trust_host_code=True" in " ".join(session.info.notes)


def test_plain_engine_does_not_allow_host_code(trt_env, engine):
    with TensorRTSession.open(engine):
        assert trt_env.trt.runtimes[-1].engine_host_code_allowed is False


def test_scale_and_precision_requests_are_checked(trt_env, engine):
    with pytest.raises(InputError, match="built for x2, not x3"):
        TensorRTSession.open(engine, scale=3)
    with pytest.raises(InputError, match="is a fp16 engine"):
        TensorRTSession.open(engine, precision="fp32")
    assert trt_env.gpu.streams == set()  # a refused session releases its stream
    with pytest.raises(InputError, match="'cuda' or 'cuda:N'"):
        TensorRTSession.open(engine, device="cpu:0")
    with pytest.raises(InputError, match=r"cuda:3 does not exist.*1 GPU"):
        TensorRTSession.open(engine, device="cuda:3")


def test_out_of_memory_is_a_clear_error(trt_env, engine):
    trt_env.gpu.fail_malloc_over = 1000
    with TensorRTSession.open(engine) as session, pytest.raises(CudaError) as info:
        session.run(np.zeros((1, 3, 16, 16), np.float32))
    message = str(info.value)
    assert "cudaMalloc(3072 bytes) failed: cudaErrorMemoryAllocation: out of memory" in message
    assert "smaller batch/tile" in message


def test_no_gpu(monkeypatch, tmp_path):
    install(monkeypatch, 11, count=0)
    path = tmp_path / "x.engine"
    path.write_bytes(b"FAKETRT1{}")
    with pytest.raises(NoGpuError, match="no usable CUDA GPU"):
        TensorRTSession.open(path)


@pytest.mark.parametrize(
    ("driver", "runtime", "expected"),
    [
        (
            12040,
            13000,
            r"driver supports CUDA 12\.4.*CUDA 13\.0 runtime.*"
            r"pip install 'cuda-python>=12\.6\.1,<13'",
        ),
        (0, 12090, r"no NVIDIA driver .*cudaDriverGetVersion returned 0.*CUDA 12\.9 runtime"),
        (11080, 12090, r"driver supports CUDA 11\.8.*upgrade the NVIDIA driver"),
    ],
)
def test_cuda_python_newer_than_the_driver(monkeypatch, tmp_path, driver, runtime, expected):
    """cudaErrorInsufficientDriver names the CUDA version the driver supports, the one the
    installed cuda-python's runtime needs, and what to install."""
    install(monkeypatch, 11, driver_version=driver, runtime_version=runtime)
    path = tmp_path / "x.engine"
    path.write_bytes(b"FAKETRT1{}")
    with pytest.raises(NoGpuError, match=expected) as info:
        TensorRTSession.open(path)
    assert "cudaErrorInsufficientDriver" in str(info.value)


def test_missing_tensorrt_or_cuda_python(monkeypatch, tmp_path):
    path = tmp_path / "x.engine"
    path.write_bytes(b"plan")
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError) as info:
        TensorRTSession.open(path)
    assert "overnet[tensorrt]' --extra-index-url https://pypi.nvidia.com" in str(info.value)
    status = {s.name: s for s in backend_status()}["tensorrt"]
    assert not status.available and "pypi.nvidia.com" in status.reason
    with pytest.raises(MissingDependencyError, match="backend 'tensorrt' is not available"):
        open_session(path, "tensorrt", device="cuda")
    install(monkeypatch, 11)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    with pytest.raises(
        MissingDependencyError, match=r"cuda\.bindings\.runtime.*overnet\[tensorrt\]"
    ) as info:
        TensorRTSession.open(path)
    message = str(info.value)
    assert "tensorrt-cu12 needs cuda-python 12.x (12.6.1 or newer" in message
    assert "tensorrt-cu13 needs cuda-python 13.x" in message


#: the caller's torch stream (``torch.cuda.current_stream(device).cuda_stream``)
CALLER_STREAM = 0x7777


class FakeCudaTensor:
    """Just enough of a torch CUDA tensor for the TensorRT backend: float32 memory in the fake
    GPU, ``misalign`` bytes past a 256-byte boundary; ``t[a:b]`` is a view sharing that memory
    (unaligned when the rows before it are not a multiple of 256 bytes, as in torch), and
    ``clone()`` an aligned copy (torch's caching allocator aligns to 512 bytes)."""

    __module__ = "torch"

    def __init__(self, gpu, array: np.ndarray, *, misalign: int = 0) -> None:
        array = np.asarray(array, np.float32)
        raw = np.zeros(array.nbytes + 2 * ALIGNMENT, np.uint8)
        start = -raw.ctypes.data % ALIGNMENT + misalign
        memory = raw[start : start + array.nbytes]
        gpu.external[memory.ctypes.data] = memory
        view = memory.view(np.float32).reshape(array.shape)
        view[...] = array
        self._share(gpu, view)

    def _share(self, gpu, view: np.ndarray) -> None:
        self._gpu, self._array = gpu, view
        self.shape, self.dtype, self.is_cuda = view.shape, "float32", True
        self.device = types.SimpleNamespace(index=0, type="cuda")

    def __getitem__(self, index: Any) -> FakeCudaTensor:
        view = object.__new__(FakeCudaTensor)
        view._share(self._gpu, self._array[index])
        return view

    def contiguous(self):
        return self

    def clone(self) -> FakeCudaTensor:
        self._gpu.log.append("torch.Tensor.clone")
        return FakeCudaTensor(self._gpu, self._array.copy())

    def data_ptr(self) -> int:
        return self._array.ctypes.data

    def numpy(self) -> np.ndarray:
        return self._array


@pytest.fixture
def fake_torch(trt_env, monkeypatch):
    """A ``torch`` module with fake CUDA tensors; the caller's current stream is
    CALLER_STREAM (``fake_torch.streams`` lists the devices it was asked for)."""
    gpu = trt_env.gpu
    streams: list[Any] = []

    def current_stream(device=None):
        streams.append(device)
        return types.SimpleNamespace(cuda_stream=CALLER_STREAM)

    torch = types.SimpleNamespace(
        float32="float32",
        empty=lambda shape, dtype, device: FakeCudaTensor(gpu, np.zeros(shape, np.float32)),
        cuda=types.SimpleNamespace(current_stream=current_stream),
        streams=streams,
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


def test_torch_cuda_tensors_are_zero_copy(trt_env, engine, fake_torch):
    gpu = trt_env.gpu
    x = np.random.default_rng(2).random((1, 3, 8, 10), dtype=np.float32)
    with TensorRTSession.open(engine) as session:
        out = session.run(FakeCudaTensor(gpu, x))
        assert isinstance(out, FakeCudaTensor) and out.shape == (1, 3, 16, 20)
        np.testing.assert_array_equal(out.numpy(), nearest_x2(x))
        assert "cudaMemcpyAsync" not in gpu.calls and fake_torch.streams  # no copies
        y = session.run(x)  # numpy again: our own buffers are bound back
        np.testing.assert_array_equal(y, nearest_x2(x))


def _calls(gpu, names=("cudaEventRecord", "cudaStreamWaitEvent", "execute_async_v3")):
    return [c for c in gpu.log if c in names]


def test_torch_path_runs_on_the_session_stream_ordered_by_events(trt_env, engine, fake_torch):
    """The enqueue goes to the session's own stream (never the legacy default stream), after
    the caller's stream (which produced the input); the caller's stream then waits for it
    on the GPU: no host sync. A later numpy run, and close(), wait for it first."""
    gpu = trt_env.gpu
    x = np.random.default_rng(6).random((1, 3, 8, 10), dtype=np.float32)
    session = TensorRTSession.open(engine)
    ours = session._stream.handle
    gpu.log.clear()
    out = session.run(FakeCudaTensor(gpu, x))
    np.testing.assert_array_equal(out.numpy(), nearest_x2(x))
    assert gpu.kernels_on == [ours]
    (ready, on_caller), (done, on_ours) = gpu.event_records
    assert (on_caller, on_ours) == (CALLER_STREAM, ours)
    assert gpu.stream_waits == [(ours, ready), (CALLER_STREAM, done)]
    assert _calls(gpu) == [
        "cudaEventRecord",  # ready: recorded on the caller's stream
        "cudaStreamWaitEvent",  # ... and waited for by ours
        "execute_async_v3",
        "cudaEventRecord",  # done: recorded on ours
        "cudaStreamWaitEvent",  # ... and waited for by the caller's
    ]
    session.run(FakeCudaTensor(gpu, x))  # torch after torch: still no host sync
    assert not {"cudaEventSynchronize", "cudaStreamSynchronize"} & set(gpu.log)
    gpu.log.clear()
    np.testing.assert_array_equal(session.run(x), nearest_x2(x))
    assert gpu.log.index("cudaEventSynchronize") < gpu.log.index("cudaMemcpyAsync")
    session.run(FakeCudaTensor(gpu, x))
    gpu.log.clear()
    session.close()
    assert gpu.log.index("cudaEventSynchronize") < gpu.log.index("cudaFree")
    assert gpu.events == set() and gpu.streams == set() and gpu.device == {}


def test_unaligned_torch_views_are_copied_to_aligned_memory(trt_env, engine, fake_torch):
    """TensorRT refuses tensor addresses that are not 256-byte aligned (set_tensor_address
    returns False); a view such as ``big[1:3]`` is copied to aligned memory first."""
    gpu = trt_env.gpu
    x = np.random.default_rng(7).random((4, 3, 8, 10), dtype=np.float32)
    big = FakeCudaTensor(gpu, x)
    view = big[1:3]  # 3*8*10*4 = 960 bytes in
    assert view.data_ptr() % ALIGNMENT
    with TensorRTSession.open(engine) as session:
        session.run(np.zeros((1, 3, 8, 10), np.float32))  # our own buffers are bound
        np.testing.assert_array_equal(session.run(view).numpy(), nearest_x2(x[1:3]))
        odd = FakeCudaTensor(gpu, x[:1], misalign=4)
        np.testing.assert_array_equal(session.run(odd).numpy(), nearest_x2(x[:1]))
        assert not trt_env.trt.errors  # no address was refused
        assert gpu.log.count("torch.Tensor.clone") == 2
        aligned = FakeCudaTensor(gpu, x[:1])
        gpu.log.clear()
        session.run(aligned)  # aligned: used in place, no copy
        assert "torch.Tensor.clone" not in gpu.log


def test_a_refused_tensor_address_is_an_error(trt_env, engine, monkeypatch):
    with TensorRTSession.open(engine) as session:
        context_class = type(session._context)
        monkeypatch.setattr(context_class, "set_tensor_address", lambda self, name, ptr: False)
        with pytest.raises(CudaError, match=r"TensorRT refused the address .* of tensor 'lr'"):
            session.run(np.zeros((1, 3, 8, 8), np.float32))


@pytest.mark.parametrize("failure", ["enqueue", "end-capture", "instantiate"])
def test_failed_graph_capture_falls_back_to_plain_enqueue(trt_env, engine, failure):
    """As trtexec does: the capture is ended, its graph destroyed, the CUDA error cleared;
    the run returns its result, the shape runs without a graph from then on (one warning),
    and another shape still tries its own capture."""
    gpu = trt_env.gpu
    if failure == "enqueue":  # TensorRT returns False inside the capture (invalidating it)
        trt_env.trt.fail_in_capture = True
    elif failure == "end-capture":
        gpu.invalidate_capture = True
    else:
        gpu.fail_instantiate = True
    rng = np.random.default_rng(8)
    with (
        TensorRTSession.open(engine, cuda_graph=True) as session,
        warnings.catch_warnings(record=True) as record,
    ):
        warnings.simplefilter("always")
        for _ in range(3):
            x = rng.random((1, 3, 10, 12), dtype=np.float32)
            np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert gpu.log.count("cudaStreamBeginCapture") == 1  # remembered for this shape
        assert gpu.graph_launches == 0 and not gpu.graphs and not gpu.graph_execs
        assert not gpu.capturing and gpu.last_error == 0  # error cleared
        x = rng.random((1, 3, 9, 9), dtype=np.float32)
        for _ in range(2):
            np.testing.assert_array_equal(session.run(x), nearest_x2(x))
        assert gpu.log.count("cudaStreamBeginCapture") == 2
        assert "without a CUDA graph" in " ".join(session.info.notes)
    runtime = [w for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1, [str(w.message) for w in runtime]
    assert "CUDA graph capture failed" in str(runtime[0].message)


def test_data_dependent_output_shapes_are_refused(trt_env, engine):
    """-1 output dims (a shape known only after running) are a foreign engine's: refused
    when opening, never turned into negative buffer sizes."""
    trt_env.trt.data_dependent_output = True
    with pytest.raises(ModelLoadError, match=r"data-dependent output shape 1x3x-1x-1"):
        TensorRTSession.open(engine)
    sidecar_path(engine).unlink()
    with pytest.raises(ModelLoadError, match="data-dependent"):
        TensorRTSession.open(engine, verify=False)
    assert trt_env.gpu.streams == set()


@pytest.mark.parametrize("scale", [2.5, 7 / 3])
def test_fractional_scale_without_sidecar(trt_env, tmp_path, scale):
    """The probed output size is rounded: the scale is the one whose output_size reproduces
    it (9 px at x2.5 -> 23 px, not 23/9)."""
    onnx = write_tiny_onnx(tmp_path / "overnet_frac_fp16.onnx", scale=scale)
    path = tmp_path / "frac.engine"
    profile = Profile.parse("1x3x9x9", "1x3x16x16", "2x3x32x40")
    build_with_sidecar(onnx, path, profile, BuildOptions(), rebuild=REBUILD, echo=lambda _: None)
    sidecar_path(path).unlink()
    with TensorRTSession.open(path, verify=False, scale=scale) as session:
        assert session.info.scale == scale
    with TensorRTSession.open(path, verify=False) as session:  # none asked: the simplest
        assert session.info.scale == pytest.approx(scale, abs=1e-12)
    with pytest.raises(InputError, match=r"built for x2\.(5|33333), not x3"):
        TensorRTSession.open(path, verify=False, scale=3)


def test_build_and_load_share_one_tensorrt_logger(trt_env, engine):
    """TensorRT wants one logger per process: the build (fixture) and both loads use it."""
    with TensorRTSession.open(engine), TensorRTSession.open(engine):
        pass
    assert len(trt_env.trt.loggers) == 1
    assert {id(r.logger) for r in trt_env.trt.runtimes} == {id(trt_env.trt.loggers[0])}


def test_ort_tensorrt_provider_options(tmp_path):
    name, options = tensorrt_provider(
        tmp_path / "cache", opt_shape="1x3x48x48", max_shape="2x3x64x64", opt_level=4
    )
    assert name == "TensorrtExecutionProvider"
    assert options["trt_profile_min_shapes"] == "lr:1x3x32x32"
    assert options["trt_profile_opt_shapes"] == "lr:1x3x48x48"
    assert options["trt_profile_max_shapes"] == "lr:2x3x64x64"
    assert options["trt_engine_cache_enable"] is True
    assert options["trt_timing_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tmp_path / "cache")
    assert options["trt_timing_cache_path"] == str(tmp_path / "cache")
    assert options["trt_builder_optimization_level"] == 4
    assert "trt_fp16_enable" not in options  # no ONNX named: the provider's default (off)
    with pytest.raises(InputError, match="min <= opt <= max"):
        tensorrt_provider(tmp_path, min_shape="1x3x64x64", opt_shape="1x3x32x32")
    providers = ort_trt_providers(tmp_path / "cache")
    assert [p[0] for p in providers] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert providers[1][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(providers, "cuda", available) == providers
    with pytest.raises(MissingDependencyError, match="onnxruntime-gpu"):
        resolve_providers(providers, "cuda", ["CPUExecutionProvider"])


def test_ort_tensorrt_fp16_follows_the_onnx(tmp_path):
    """The provider builds weakly typed networks: an FP16 ONNX needs trt_fp16_enable (else
    TensorRT refuses its float16 layers), an FP32 one keeps FP32 (no silent FP16)."""
    fp16 = write_tiny_onnx(tmp_path / "x2_fp16.onnx", precision="fp16")
    fp32 = write_tiny_onnx(tmp_path / "x2.onnx", precision="fp32")
    assert tensorrt_provider(tmp_path / "c", onnx=fp16)[1]["trt_fp16_enable"] is True
    assert "trt_fp16_enable" not in tensorrt_provider(tmp_path / "c", onnx=fp32)[1]
    providers = default_ort_trt_providers("cuda:1", tmp_path / "c", onnx=fp16)
    assert providers[0][1]["trt_fp16_enable"] is True and providers[0][1]["device_id"] == 1
    # providers made before the file was known get the flag from it
    plain = default_ort_trt_providers("cuda", tmp_path / "c")
    chosen = with_onnx_precision(plain, fp16)
    assert chosen[0][1]["trt_fp16_enable"] is True and "trt_fp16_enable" not in plain[0][1]
    assert "trt_fp16_enable" not in with_onnx_precision(plain, fp32)[0][1]
    assert with_onnx_precision(["TensorrtExecutionProvider"], fp16) == ["TensorrtExecutionProvider"]
    mine = [("TensorrtExecutionProvider", {"trt_fp16_enable": False})]  # the caller's word
    assert with_onnx_precision(mine, fp16) == mine


class FakeOrt:
    """Just enough of onnxruntime-gpu for OnnxRuntimeSession: records the providers and the
    input shapes, upsamples x2 by nearest neighbour."""

    def __init__(self) -> None:
        self.sessions: list[Any] = []
        self.shapes: list[tuple[int, ...]] = []
        fake = self

        class InferenceSession:
            def __init__(self, path, options, providers):
                self.providers = providers
                fake.sessions.append(self)

            def get_providers(self):
                return [p if isinstance(p, str) else p[0] for p in self.providers]

            def get_inputs(self):
                return [types.SimpleNamespace(name="lr", shape=["batch", 3, "h", "w"])]

            def get_outputs(self):
                return [types.SimpleNamespace(name="sr")]

            def run(self, names, feeds):
                x = feeds["lr"]
                fake.shapes.append(x.shape)
                return [nearest_x2(x)]

        self.module = types.ModuleType("onnxruntime")
        self.module.InferenceSession = InferenceSession
        self.module.SessionOptions = lambda: types.SimpleNamespace(intra_op_num_threads=0)
        self.module.GraphOptimizationLevel = types.SimpleNamespace(ORT_ENABLE_ALL=99)
        self.module.get_available_providers = lambda: [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ]


@pytest.fixture
def fake_ort(monkeypatch, tmp_path):
    fake = FakeOrt()
    monkeypatch.setitem(sys.modules, "onnxruntime", fake.module)
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    return fake


def test_ort_trt_backend_name_uses_profile_and_caches(fake_ort, tmp_path):
    """open_session(onnx, "ort-trt") gets the TensorRT provider with its profile and engine +
    timing caches under cache_dir()/ort-trt, and the session's limits follow the profile."""
    from overnet.runtime.upscaler import Upscaler

    onnx = write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")
    with open_session(onnx, "ort-trt", device="cuda") as session:
        providers = fake_ort.sessions[-1].providers
        assert [p[0] for p in providers] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
        trt = providers[0][1]
        cache = str(tmp_path / "cache" / "ort-trt")
        assert trt["trt_engine_cache_path"] == trt["trt_timing_cache_path"] == cache
        assert trt["trt_engine_cache_enable"] and trt["trt_timing_cache_enable"]
        assert trt["trt_profile_max_shapes"] == "lr:1x3x1080x1920"
        assert trt["trt_fp16_enable"] is True  # the file is an FP16 export
        assert (tmp_path / "cache" / "ort-trt").is_dir()
        info = session.info
        assert (info.min_hw, info.max_hw, info.max_batch) == ((32, 32), (1080, 1920), 1)
    fp32 = write_tiny_onnx(tmp_path / "overnet_x2_fp32.onnx", precision="fp32")
    with open_session(fp32, "ort-trt", device="cuda"):
        assert "trt_fp16_enable" not in fake_ort.sessions[-1].providers[0][1]
    profile = {"min_shape": "1x3x8x8", "opt_shape": "1x3x16x16", "max_shape": "2x3x24x32"}
    with open_session(
        onnx, "ort-trt", device="cuda:1", trt_cache_dir=tmp_path / "mine", trt_profile=profile
    ) as session:
        trt = fake_ort.sessions[-1].providers[0][1]
        assert trt["trt_engine_cache_path"] == str(tmp_path / "mine")
        assert trt["device_id"] == 1 and fake_ort.sessions[-1].providers[1][1]["device_id"] == 1
        assert (session.info.min_hw, session.info.max_hw) == ((8, 8), (24, 32))
        assert session.info.max_batch == 2
        fake_ort.shapes.clear()
        x = np.random.default_rng(4).random((1, 3, 40, 50), dtype=np.float32)
        y = Upscaler(session, overlap=2).upscale_array(x)
        assert y.shape == (1, 3, 80, 100)
        np.testing.assert_allclose(y, nearest_x2(x), atol=1e-6)  # blended tile overlaps
        assert fake_ort.shapes and all(
            n <= 2 and 8 <= h <= 24 and 8 <= w <= 32 for n, _, h, w in fake_ort.shapes
        ), fake_ort.shapes
        with pytest.raises(InputError, match="outside the onnxruntime profile"):
            session.run(np.zeros((1, 3, 30, 30), np.float32))
    # explicit providers still win; the cache/profile options then make no sense
    with open_session(onnx, "ort-trt", device="cuda", providers=["tensorrt", "cuda"]) as s:
        assert fake_ort.sessions[-1].providers == [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
        ]
        assert s.info.max_hw is None
    with pytest.raises(InputError, match="either providers= or trt_cache_dir"):
        open_session(onnx, "ort-trt", device="cuda", providers=["tensorrt"], trt_cache_dir="x")
    with pytest.raises(InputError, match="ort-trt backend only"):
        open_session(onnx, "ort-cuda", device="cuda", trt_cache_dir="x")


def test_modules_import_without_torch_tensorrt_or_cuda():
    """Importing the TensorRT code needs none of its heavy dependencies (they load on use)."""
    import subprocess
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        for name in ("torch", "tensorrt", "cuda", "cuda.bindings", "cuda.bindings.runtime"):
            sys.modules[name] = None  # importing any of them now raises ImportError
        import overnet.export.tensorrt
        import overnet.export.tensorrt.progress
        import overnet.cuda.buffers
        import overnet.runtime.ort_tensorrt
        import overnet.runtime.tensorrt_backend
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_sessions_on_two_gpus_share_a_thread(monkeypatch, tmp_path):
    """Every call runs on the session's own GPU, whatever device the thread has current."""
    env = install(monkeypatch, 11, count=2)
    onnx = write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")
    path = tmp_path / "overnet_x2_fp16_b1-1-2_8x8-16x16-32x40.engine"
    build_with_sidecar(onnx, path, PROFILE, BuildOptions(), rebuild=REBUILD, echo=lambda _: None)
    gpu, cudart = env.gpu, env.cudart
    x = np.random.default_rng(5).random((1, 3, 10, 12), dtype=np.float32)
    with (
        TensorRTSession.open(path, device="cuda:0") as first,
        TensorRTSession.open(path, device="cuda:1") as second,
    ):
        assert gpu.current_device == 0  # opening cuda:1 left the caller's device current
        gpu.copies_on.clear()
        cudart.cudaSetDevice(0)
        np.testing.assert_array_equal(second.run(x), nearest_x2(x))
        cudart.cudaSetDevice(1)
        np.testing.assert_array_equal(first.run(x), nearest_x2(x))
        assert gpu.current_device == 1  # restored after the call
        allocated = {gpu.made_on[ptr] for ptr in gpu.device}
        assert allocated == {0, 1}
        assert gpu.copies_on and all(now == stream for now, stream in gpu.copies_on)
    assert gpu.device == {} and gpu.streams == set()
