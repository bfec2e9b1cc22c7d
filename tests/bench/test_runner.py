"""Row statuses: a session that cannot be created is an error (or oom), not a refusal."""

from __future__ import annotations

import pytest

from overnet.bench.runner import STATUSES, RowSpec, is_oom, run_row
from overnet.errors import InputError, MissingDependencyError, ModelLoadError
from overnet.runtime.base import Session, SessionInfo


class _Nearest(Session):
    def __init__(self, **limits):
        self.info = SessionInfo("onnxruntime", "CPU", "fp32", 2.0, 3, **limits)

    def _run(self, batch):
        return batch.repeat(2, axis=2).repeat(2, axis=3)


def _spec(**kw) -> RowSpec:
    fields = dict(warmup=0, iters=1)
    fields.update(kw)
    return RowSpec("onnxruntime", "onnxruntime", "m", "m.onnx", 2.0, 16, 16, 1, **fields)


def _failing_opener(exc: BaseException):
    def opener(spec):
        raise exc

    return opener


@pytest.mark.parametrize(
    "exc",
    [
        InputError("model file m.onnx does not exist"),
        ModelLoadError("onnxruntime could not load m.onnx: [ONNXRuntimeError] INVALID_PROTOBUF"),
        InputError("precision must be one of f32, bf16, got 'fp16'"),
        ValueError("boom"),
    ],
)
def test_a_session_that_cannot_be_created_is_an_error(exc):
    result, output = run_row(_spec(), _failing_opener(exc))
    assert result.status == "error" and output is None
    assert result.error.endswith(f"{type(exc).__name__}: {exc}")
    assert "session" in result.error  # says where it failed


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        ModelLoadError(
            "onnxruntime could not load m.onnx: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : "
            "Failed to allocate memory for requested buffer of size 1073741824"
        ),
        ModelLoadError("OpenVINO could not load m.onnx: Exception from src/inference: bad_alloc"),
        InputError("CUDA out of memory while building the session"),
        RuntimeError("[GPU] clEnqueueNDRangeKernel: CL_OUT_OF_RESOURCES"),
        RuntimeError("bad allocation"),
        RuntimeError("Requested amount of GPU memory (4294967296 bytes) could not be allocated"),
    ],
)
def test_memory_failures_while_creating_the_session_are_oom(exc):
    result, _ = run_row(_spec(), _failing_opener(exc))
    assert result.status == "oom", result.error
    assert "out of memory" in result.error and type(exc).__name__ in result.error


def test_an_oom_kept_as_the_cause_is_found():
    try:
        try:
            raise MemoryError()
        except MemoryError as inner:
            raise ModelLoadError("the runtime could not load m.onnx") from inner
    except ModelLoadError as exc:
        assert is_oom(exc)


def test_a_missing_runtime_is_unavailable():
    exc = MissingDependencyError("onnxruntime is not installed: pip install 'overnet[onnx]'")
    result, _ = run_row(_spec(), _failing_opener(exc))
    assert result.status == "unavailable"


def test_a_backend_declining_the_shape_is_refused():
    result, _ = run_row(_spec(), lambda spec: _Nearest(max_hw=(8, 8)))
    assert result.status == "refused" and "profile" in result.error

    class Declines(_Nearest):
        def _run(self, batch):
            raise InputError("TensorRT refused input shape 1x3x16x16")

    result, _ = run_row(_spec(), lambda spec: Declines())
    assert result.status == "refused"


def test_a_good_row_is_ok_and_every_status_is_known():
    result, output = run_row(_spec(), lambda spec: _Nearest())
    assert result.status == "ok" and output.shape == (1, 3, 32, 32)
    assert set(STATUSES) == {"ok", "unavailable", "refused", "oom", "killed", "error"}


def test_bench_input_is_a_deterministic_photo_like_field():
    """1/f spectrum, like photographs: far smoother than uniform noise (which the INT8
    guard would send to float whole), the full [0, 1] range, the same every time."""
    import numpy as np

    from overnet.bench.runner import make_input
    from overnet.runtime.int8_guard import tile_statistics

    spec = RowSpec("openvino", "openvino", "m", "m.onnx", 2.0, 160, 90, 2)  # 160 wide
    x = make_input(spec)
    assert x.shape == (2, 3, 90, 160) and x.dtype == np.float32
    assert np.array_equal(x, make_input(spec)) and not np.array_equal(x[0], x[1])
    assert x.min() == 0.0 and x.max() == 1.0
    noise = np.random.default_rng(0).random(x.shape, dtype=np.float32)
    smooth, rough = (tile_statistics(a, "laplacian", 32) for a in (x, noise))
    assert smooth.max() < rough.min() / 3
