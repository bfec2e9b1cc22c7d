"""overnet.cuda buffers, streams, graphs and device scopes against the fake CUDA runtime."""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from overnet.cuda.buffers import (
    CudaGraph,
    DeviceBuffer,
    Event,
    PinnedBuffer,
    Stream,
    TensorBuffers,
    copy_async,
)
from overnet.cuda.cudart import CudaError, DeviceScope, clear_last_error, device_scope
from tests.fakes.fake_cudart import FakeGpu, make_fake_cudart


@pytest.fixture
def gpu() -> FakeGpu:
    return FakeGpu(count=2)


@pytest.fixture
def cudart(gpu):
    return make_fake_cudart(gpu)


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning of the block; garbage left by earlier tests is collected first so that
    its ResourceWarnings land outside."""
    gc.collect()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def _notes(exc: BaseException) -> str:
    return "\n".join(getattr(exc, "__notes__", []))


needs_notes = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="exception notes (add_note) need Python 3.11"
)


# --- CudaGraph --------------------------------------------------------------------------


def _staged_copy(cudart, stream):
    """A device buffer filled from pinned memory by an async copy on ``stream``."""
    buf = TensorBuffers(cudart)
    buf.ensure(16)
    buf.host.view((4,), np.float32)[:] = [1, 2, 3, 4]

    def work():
        copy_async(cudart, buf.device.ptr, buf.host.ptr, 16, True, stream.raw)

    return buf, work


def test_graph_captures_then_replays_and_destroy_releases_everything(gpu, cudart):
    stream = Stream(cudart)
    buf, work = _staged_copy(cudart, stream)
    graph = CudaGraph(cudart, stream, work)
    assert not gpu.capturing and len(gpu.graphs) == 1 and len(gpu.graph_execs) == 1
    assert not gpu.region(buf.device.ptr, 16).any()  # captured, not run
    graph.launch(stream)
    assert gpu.region(buf.device.ptr, 16).view(np.float32).tolist() == [1, 2, 3, 4]
    graph.destroy()
    graph.destroy()  # idempotent
    assert not gpu.graphs and not gpu.graph_execs
    with pytest.raises(CudaError, match="already destroyed"):
        graph.launch(stream)
    buf.free()
    stream.destroy()


def test_graph_work_error_ends_capture_and_destroys_the_captured_graph(gpu, cudart):
    stream = Stream(cudart)
    buf, copy = _staged_copy(cudart, stream)

    def work():
        copy()
        raise ValueError("enqueue failed")

    with pytest.raises(ValueError, match="enqueue failed"):
        CudaGraph(cudart, stream, work)
    assert not gpu.capturing, "the capture must be ended, or the stream stays unusable"
    assert not gpu.graphs and not gpu.graph_execs, "the captured graph leaked"
    buf.free()
    stream.destroy()


@needs_notes
def test_graph_work_error_is_not_hidden_by_a_failing_end_capture(gpu, cudart):
    stream = Stream(cudart)
    gpu.invalidate_capture = True  # what a failed enqueue does to a real capture

    def work():
        raise RuntimeError("TensorRT enqueue failed during capture")

    with pytest.raises(RuntimeError, match="enqueue failed during capture") as info:
        CudaGraph(cudart, stream, work)
    assert "cudaStreamEndCapture" in _notes(info.value)
    assert "cudaErrorStreamCaptureInvalidated" in _notes(info.value)
    assert not gpu.capturing and not gpu.graphs
    stream.destroy()


def test_graph_keyboard_interrupt_in_work_still_ends_capture(gpu, cudart):
    stream = Stream(cudart)

    def work():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CudaGraph(cudart, stream, work)
    assert not gpu.capturing and not gpu.graphs
    stream.destroy()


def test_graph_invalidated_capture_without_work_error_raises_cuda_error(gpu, cudart):
    stream = Stream(cudart)
    gpu.invalidate_capture = True
    with pytest.raises(CudaError, match="cudaStreamEndCapture failed"):
        CudaGraph(cudart, stream, lambda: None)
    assert not gpu.capturing and not gpu.graphs
    stream.destroy()


def test_graph_instantiate_failure_destroys_the_captured_graph(gpu, cudart):
    stream = Stream(cudart)
    gpu.fail_instantiate = True
    with pytest.raises(CudaError, match="cudaGraphInstantiate failed"):
        CudaGraph(cudart, stream, lambda: None)
    assert not gpu.capturing and not gpu.graphs and not gpu.graph_execs
    stream.destroy()


def test_graph_destroy_attempts_both_handles_even_if_one_fails(gpu, cudart, monkeypatch):
    stream = Stream(cudart)
    graph = CudaGraph(cudart, stream, lambda: None)
    monkeypatch.setattr(cudart, "cudaGraphExecDestroy", lambda graphExec: (cudart.cudaError_t(1),))
    with pytest.raises(CudaError, match="cudaGraphExecDestroy"):
        graph.destroy()
    assert not gpu.graphs, "the graph must be destroyed even when the exec destroy fails"
    graph.destroy()  # nothing left to release: no second error
    stream.destroy()


# --- buffers and streams ----------------------------------------------------------------


def test_free_is_idempotent_and_empties_the_buffer_even_if_the_free_fails(gpu, cudart):
    buf = DeviceBuffer(cudart)
    buf.ensure(64)
    ptr = buf.ptr
    gpu.device.pop(ptr)  # the next cudaFree of it fails (cudaErrorInvalidValue)
    with pytest.raises(CudaError, match="cudaFree"):
        buf.free()
    assert (buf.ptr, buf.nbytes) == (0, 0)
    buf.free()


def test_stream_refuses_use_after_destroy(cudart):
    stream = Stream(cudart)
    stream.synchronize()
    stream.destroy()
    stream.destroy()
    with pytest.raises(CudaError, match="already destroyed"):
        stream.synchronize()


def test_event_orders_one_stream_after_another(gpu, cudart):
    ours = Stream(cudart)
    event = Event(cudart)
    event.record(0x7777)  # a stream created elsewhere (torch's): its int handle
    event.stream_wait(ours.raw)
    event.synchronize()
    assert gpu.event_records == [(event.handle, 0x7777)]
    assert gpu.stream_waits == [(ours.handle, event.handle)]
    event.destroy()
    event.destroy()  # idempotent
    assert not gpu.events
    with pytest.raises(CudaError, match="already destroyed"):
        event.record(ours.raw)
    ours.destroy()


def test_clear_last_error_returns_and_resets_it(gpu, cudart):
    assert cudart.cudaFree(0x1234)[0] != 0  # a failed call becomes the last error
    assert clear_last_error(cudart) == cudart.cudaError_t.cudaErrorInvalidValue
    assert gpu.last_error == 0 and clear_last_error(cudart) == 0


# --- ResourceWarning for objects collected without free()/destroy() ---------------------


def _device_buffer(cudart):
    buf = DeviceBuffer(cudart, "weights")
    buf.ensure(1000)
    return buf, buf.free


def _pinned_buffer(cudart):
    buf = PinnedBuffer(cudart)
    buf.ensure(2048)
    return buf, buf.free


def _tensor_buffers(cudart):
    buf = TensorBuffers(cudart, "input")
    buf.ensure(512)
    return buf, buf.free


def _stream(cudart):
    stream = Stream(cudart)
    return stream, stream.destroy


def _event(cudart):
    event = Event(cudart)
    return event, event.destroy


def _graph(cudart):
    stream = Stream(cudart)
    graph = CudaGraph(cudart, stream, lambda: None)
    stream.destroy()
    return graph, graph.destroy


LEAKY = [
    pytest.param(_device_buffer, r"DeviceBuffer 'weights' of 1000 bytes .*without free\(\)"),
    pytest.param(_pinned_buffer, r"PinnedBuffer of 2048 bytes .*without free\(\)"),
    pytest.param(_tensor_buffers, r"'input \((device|pinned host)\)' of 512 bytes"),
    pytest.param(_stream, r"CUDA stream 0x[0-9a-f]+ .*without destroy\(\)"),
    pytest.param(_graph, r"CUDA graph .*without destroy\(\)"),
    pytest.param(_event, r"CUDA event 0x[0-9a-f]+ .*without destroy\(\)"),
]
IDS = ["device", "pinned", "tensor", "stream", "graph", "event"]


@pytest.mark.parametrize(("make", "pattern"), LEAKY, ids=IDS)
def test_collected_without_release_warns(cudart, make, pattern):
    def drop():
        make(cudart)  # created and dropped without free()/destroy()

    with pytest.warns(ResourceWarning, match=pattern) as record:
        drop()
        gc.collect()
    assert all("stays allocated" in str(w.message) for w in record)


@pytest.mark.parametrize(("make", "pattern"), LEAKY, ids=IDS)
def test_released_objects_do_not_warn(cudart, make, pattern):
    with recorded_warnings() as record:
        obj, release = make(cudart)
        release()
        del obj
        gc.collect()
    assert not [w for w in record if issubclass(w.category, ResourceWarning)]


def test_tensor_buffers_warn_once_per_half_naming_both(cudart):
    def drop():
        _tensor_buffers(cudart)

    with recorded_warnings() as record:
        drop()
        gc.collect()
    messages = sorted(str(w.message) for w in record if w.category is ResourceWarning)
    assert len(messages) == 2
    assert "DeviceBuffer 'input (device)'" in messages[0]
    assert "PinnedBuffer 'input (pinned host)'" in messages[1]


def test_no_warning_and_no_cuda_call_while_the_interpreter_shuts_down(gpu, cudart):
    buf = DeviceBuffer(cudart)
    buf.ensure(64)
    stream = Stream(cudart)
    calls = list(gpu.calls)
    with recorded_warnings() as record:
        buf.__del__(_finalizing=lambda: True)
        stream.__del__(_finalizing=lambda: True)
    assert not record and gpu.calls == calls and buf.ptr in gpu.device
    buf.free()
    stream.destroy()


def test_objects_whose_creation_failed_do_not_warn(gpu, cudart, monkeypatch):
    monkeypatch.setattr(cudart, "cudaStreamCreate", lambda: (cudart.cudaError_t(2), None))
    gpu.fail_malloc_over = 0

    def attempt():
        with pytest.raises(CudaError):
            Stream(cudart)
        with pytest.raises(CudaError):
            DeviceBuffer(cudart).ensure(64)

    with recorded_warnings() as record:
        attempt()
        gc.collect()
    assert not [w for w in record if issubclass(w.category, ResourceWarning)]


# --- DeviceScope ------------------------------------------------------------------------


def test_device_scope_sets_and_restores_the_device(gpu, cudart):
    assert gpu.current_device == 0
    with device_scope(1, cudart) as scope:
        assert isinstance(scope, DeviceScope) and scope.index == 1
        assert gpu.current_device == 1
    assert gpu.current_device == 0
    assert gpu.set_device_calls == 2


def test_device_scope_is_one_get_device_when_already_current(gpu, cudart):
    gpu.current_device = 1
    with device_scope(1, cudart):
        assert gpu.current_device == 1
    assert gpu.current_device == 1
    assert gpu.set_device_calls == 0


def test_device_scope_restores_after_an_error_in_the_block(gpu, cudart):
    with pytest.raises(ValueError, match="inside"), device_scope(1, cudart):
        raise ValueError("inside")
    assert gpu.current_device == 0


def test_device_scope_nests_and_reenters(gpu, cudart):
    on0, on1 = device_scope(0, cudart), device_scope(1, cudart)
    with on1:
        with on0:
            assert gpu.current_device == 0
            with on1:  # the same object entered again while it is active
                assert gpu.current_device == 1
            assert gpu.current_device == 0
        assert gpu.current_device == 1
    assert gpu.current_device == 0
    with on1:  # reusable after exit
        assert gpu.current_device == 1
    assert gpu.current_device == 0


def test_device_scope_is_per_thread(gpu, cudart):
    scope = device_scope(1, cudart)
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def other():
        with scope:
            seen["other"] = gpu.current_device
            inside.set()
            release.wait(5)
        seen["other after"] = gpu.current_device

    thread = threading.Thread(target=other)
    thread.start()
    assert inside.wait(5)
    assert gpu.current_device == 0  # this thread's device is untouched
    with scope:
        assert gpu.current_device == 1
    assert gpu.current_device == 0
    release.set()
    thread.join(5)
    assert seen == {"other": 1, "other after": 0}


def test_device_scope_bad_device_raises_and_leaves_nothing_entered(gpu, cudart):
    scope = device_scope(5, cudart)
    with pytest.raises(CudaError, match=r"cudaSetDevice\(5\)"), scope:
        pass
    assert gpu.current_device == 0
    assert scope._stack() == []


def test_device_scope_failed_restore_raises_when_the_block_succeeded(gpu, cudart):
    with pytest.raises(CudaError, match=r"cudaSetDevice\(0\)"), device_scope(1, cudart):
        gpu.fail_set_device = True


@needs_notes
def test_device_scope_failed_restore_does_not_hide_the_block_error(gpu, cudart):
    with pytest.raises(ValueError, match="inside") as info, device_scope(1, cudart):
        gpu.fail_set_device = True
        raise ValueError("inside")
    assert "restoring CUDA device 0 also failed" in _notes(info.value)
