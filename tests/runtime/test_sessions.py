"""Every CPU backend behind one Session interface, checked against PyTorch on Set5."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from overnet.errors import (
    InputError,
    MissingDependencyError,
    ModelLoadError,
    OverNetError,
    SessionClosedError,
)
from overnet.imaging import read_rgb8, rgb8_to_nchw
from overnet.runtime import backend_status, choose_backend, detect_source, open_session
from tests.conftest import shared_file

torch = pytest.importorskip("torch")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")


@pytest.fixture(scope="module")
def set5_lr(set5) -> list[np.ndarray]:
    return [
        rgb8_to_nchw(read_rgb8(p)[0]) for p in sorted((set5 / "LR_bicubic" / "X2").glob("*.png"))
    ]


@pytest.fixture(scope="module")
def reference(x2_weights, set5_lr) -> list[np.ndarray]:
    with open_session(x2_weights, "torch") as session:
        assert session.info.precision == "fp32" and session.info.backend == "torch"
        return [session.run(x) for x in set5_lr]


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_onnx_backends_match_torch_fp32_on_set5(backend, x2_onnx, set5_lr, reference):
    with open_session(x2_onnx, backend) as session:
        assert session.info.backend == backend
        assert session.info.scale == 2 and session.info.upscale == 3
        assert session.info.precision == "fp32"
        for x, ref in zip(set5_lr, reference, strict=True):
            out = session.run(x)
            assert out.dtype == np.float32 and out.shape == ref.shape
            assert np.abs(out - ref).max() <= 1e-4


def test_torch_channels_last_matches_nchw(x2_weights, set5_lr, reference):
    with open_session(x2_weights, "torch-cl") as session:
        assert session.info.backend == "torch-cl"
        assert np.abs(session.run(set5_lr[1]) - reference[1]).max() <= 1e-4


def test_torch_bf16_is_close_to_fp32(x2_weights, set5_lr):
    # bf16 convolutions are emulated on CPUs without AVX512-BF16/AMX (several times slower
    # than fp32 here: benchmarks/results/torch-bf16-cpu.txt), so this compares 40x40 centre
    # crops of each Set5 image.
    crops = [
        x[:, :, x.shape[2] // 2 - 20 :, x.shape[3] // 2 - 20 :][:, :, :40, :40] for x in set5_lr
    ]
    with (
        open_session(x2_weights, "torch") as fp32,
        open_session(x2_weights, "torch", precision="bf16") as bf16,
    ):
        assert bf16.info.precision == "bf16"
        for crop in crops:
            assert _psnr(bf16.run(crop), fp32.run(crop)) >= 45.0


def test_fp16_onnx_in_onnxruntime_is_close_to_fp32(x2_weights, set5_lr, reference, tmp_path):
    from overnet.export import export_onnx

    path = export_onnx(x2_weights, tmp_path / "x2_fp16.onnx", fp16=True, validate=False).path
    with open_session(path, "onnxruntime") as session:
        assert session.info.precision == "fp16"
        for x, ref in zip(set5_lr, reference, strict=True):
            assert _psnr(session.run(x), ref) >= 45.0


def test_openvino_bf16_runs_or_is_refused_never_mislabelled(x2_onnx, set5_lr, reference):
    try:
        session = open_session(x2_onnx, "openvino-bf16")
    except InputError as exc:  # this CPU lacks bf16: said plainly, no silent f32
        assert "bf16" in str(exc) and "capabilities" in str(exc)
        return
    with session:
        assert session.info.precision == "bf16"
        assert _psnr(session.run(set5_lr[0]), reference[0]) >= 45.0


def test_upstream_onnx_with_scale_input(set5_lr, reference):
    path = shared_file("weights", "upstream-onnx", "OverNet_x2.onnx")
    with pytest.raises(InputError, match="scale"):
        open_session(path, "onnxruntime")
    with open_session(path, "onnxruntime", scale=2) as session:
        assert session.info.upscale is None  # the upstream file does not record it
        assert np.abs(session.run(set5_lr[2]) - reference[2]).max() <= 1e-4


def test_info_close_and_context_manager(x2_onnx):
    session = open_session(x2_onnx, "onnxruntime")
    info = session.info.to_dict()
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["metadata"]["overnet.scale"] == "2.0"
    assert "onnxruntime on CPU" in session.info.describe()
    x = np.zeros((2, 3, 5, 7), np.float32)
    assert session.run(x).shape == (2, 3, 10, 14)
    assert session.last_run_s > 0
    session.close()
    with pytest.raises(SessionClosedError, match="onnxruntime session is closed") as info:
        session.run(x)
    assert not isinstance(info.value, InputError)  # not the caller's input


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((3, 8, 8), np.float32), "Nx3xHxW"),
        (np.zeros((1, 4, 8, 8), np.float32), "Nx3xHxW"),
        (np.zeros((1, 3, 8, 8), np.uint8), "float32"),
        (np.zeros((1, 3, 0, 8), np.float32), "minimum"),
    ],
)
def test_bad_batches_are_refused_clearly(x2_onnx, batch, message):
    with open_session(x2_onnx, "openvino") as session, pytest.raises(InputError, match=message):
        session.run(batch)


def test_missing_provider_is_an_error_not_a_fallback(x2_onnx):
    with pytest.raises(MissingDependencyError, match="CUDAExecutionProvider.*overnet\\[gpu\\]"):
        open_session(x2_onnx, "onnxruntime", providers=["cuda", "cpu"])


def test_model_for_another_backend_is_refused(x2_onnx, x2_weights, tmp_path):
    with pytest.raises(InputError, match="ONNX model.*openvino or onnxruntime"):
        open_session(x2_onnx, "torch")
    engine = tmp_path / "x2.engine"
    engine.write_bytes(b"not really an engine")
    with pytest.raises(OverNetError, match="tensorrt|TensorRT"):
        open_session(engine, "openvino")
    empty = tmp_path / "empty.onnx"
    empty.touch()
    with pytest.raises(InputError, match="empty"):
        open_session(empty, "onnxruntime")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + b"\xff" * 50)
    with pytest.raises(ModelLoadError, match="not a readable ONNX") as info:
        open_session(garbage, "openvino")
    assert isinstance(info.value.__cause__, ValueError)  # the parser's own error is kept
    # a file that parses as protobuf but is no model: the runtime's refusal, cause kept
    for backend in ("openvino", "onnxruntime"):
        hollow = tmp_path / f"hollow-{backend}.onnx"
        hollow.write_bytes(b"\x08\x07\x3a\x02\x0a\x00")  # ir_version 7, an empty graph
        with pytest.raises(
            ModelLoadError,
            match=f"{'OpenVINO' if backend == 'openvino' else 'onnxruntime'} could not load",
        ) as info:
            open_session(hollow, backend, scale=2)
        assert info.value.__cause__ is not None


def test_unknown_backend_lists_the_choices(x2_onnx):
    with pytest.raises(InputError, match="unknown backend 'tflite'.*openvino"):
        open_session(x2_onnx, "tflite")


def test_auto_prefers_openvino_on_cpu_and_says_so(x2_onnx):
    assert choose_backend(detect_source(x2_onnx), "cpu") == "openvino"
    with open_session(x2_onnx) as session:
        assert session.info.backend == "openvino"
    status = {s.name: s for s in backend_status()}
    assert status["openvino"].available and not status["tensorrt"].available
    assert "overnet[tensorrt]" in status["tensorrt"].reason


def test_torch_module_and_tensor_input(x2_weights, set5_lr, reference):
    from overnet.weights import load_model

    with open_session(load_model(x2_weights), "torch", scale=2) as session:
        out = session.run_tensor(torch.from_numpy(set5_lr[4]))
        assert isinstance(out, torch.Tensor)
        assert np.abs(out.numpy() - reference[4]).max() <= 1e-5


def test_checkpoint_on_openvino_uses_a_cached_export(x2_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path))
    with open_session(x2_weights, "openvino") as session:
        assert session.info.scale == 2
        cached = list((tmp_path / "onnx").glob("*.onnx"))
        assert len(cached) == 1 and session.info.model == str(cached[0])


def test_integer_tensors_are_refused_like_integer_arrays(x2_onnx):
    with open_session(x2_onnx, "onnxruntime") as session, pytest.raises(InputError, match="float"):
        session.run(torch.zeros((1, 3, 4, 4), dtype=torch.uint8))


def test_openvino_leaves_cpu_pinning_off_when_it_uses_fewer_cpus_than_it_may(x2_onnx, monkeypatch):
    """Pinned, two 1-thread processes share the first CPU of their mask and each runs
    at half speed (benchmarks/openvino_pinning.py); unpinned, the OS spreads them."""
    monkeypatch.setattr("overnet.runtime.openvino_backend.usable_cpus", lambda: 2)
    with open_session(x2_onnx, "openvino", precision="fp32", threads=1) as session:
        assert session._compiled.get_property("ENABLE_CPU_PINNING") is False
        assert "CPU pinning off (1 of 2 CPUs)" in session.info.notes
    for threads in (2, None):  # all the CPUs it may use: pinning as OpenVINO decides
        with open_session(x2_onnx, "openvino", precision="fp32", threads=threads) as session:
            assert not any("pinning" in note for note in session.info.notes)


def test_openvino_release_memory_gives_back_the_largest_runs_buffers(x2_onnx):
    """A long-lived session (a service replica) that ran one large input keeps buffers
    of that size; release_memory frees them and the session still runs."""
    pytest.importorskip("openvino")
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("resident memory is read from /proc/self/statm (Linux)")

    def resident_mb() -> float:
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6

    with open_session(x2_onnx, "openvino", precision="fp32", threads=1) as session:
        small = np.zeros((1, 3, 32, 32), np.float32)
        session.run(small)
        before = resident_mb()
        session.run(np.random.default_rng(0).random((1, 3, 192, 192), dtype=np.float32))
        grown = resident_mb() - before
        session.release_memory()
        kept = resident_mb() - before
        assert grown > 200 and kept < grown / 2, (grown, kept)
        assert session.run(small).shape == (1, 3, 64, 64)
