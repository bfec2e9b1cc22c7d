"""Real TensorRT on a real GPU: x2/x3 FP16 engines vs the FP32 PyTorch model on Set5.

Marked ``tensorrt``; skipped (with the reason) where TensorRT, cuda-python or a GPU is
missing, which is every machine this project has run on so far. Run on a GPU machine with
``pytest -m tensorrt tests/runtime/test_tensorrt_gpu.py -s`` or ``benchmarks/tensorrt_gpu.sh``.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
import pytest

pytestmark = pytest.mark.tensorrt

PSNR_FLOOR_DB = 45.0
# Set5 LR images are at most 256x256 (x2) and 171x171 (x3); the profile covers them
PROFILE = ("1x3x16x16", "1x3x256x256", "2x3x512x512")


def _missing() -> str | None:
    try:
        import tensorrt  # noqa: F401
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        return f"needs TensorRT and cuda-python (pip install 'overnet[tensorrt]'): {exc}"
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or not count:
        return f"needs a CUDA GPU (cudaGetDeviceCount: {err}, {count})"
    return None


_REASON = _missing()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def engines(tmp_path_factory, x2_weights, x3_weights):
    from overnet.export.tensorrt import BuildOptions, Profile, export_tensorrt

    out = tmp_path_factory.mktemp("engines")
    profile = Profile.parse(*PROFILE)
    built = {}
    for name, weights, scale in (("x2", x2_weights, 2), ("x3", x3_weights, 3)):
        result = export_tensorrt(
            weights,
            out / name,
            scales=[scale],
            profile=profile,
            options=BuildOptions(opt_level=3),
            validate=False,
        )
        built[name] = (weights, result[0])
    return built


def _reference(weights, scale):
    import torch

    from overnet.weights import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(weights, scale, device=device)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    return run


def _set5_inputs(set5, scale):
    from overnet.eval import discover
    from overnet.imaging import read_rgb8, rgb8_to_nchw

    dataset = discover(set5, scale)
    return [(s.name, rgb8_to_nchw(read_rgb8(s.lr_path)[0])) for s in dataset.samples]


@pytest.mark.parametrize(("name", "scale"), [("x2", 2), ("x3", 3)])
def test_fp16_engine_matches_fp32_pytorch_on_set5(engines, set5, name, scale):
    from overnet.metrics.quality import psnr
    from overnet.runtime import open_session

    weights, result = engines[name]
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["precision"] == "fp16" and sidecar["scale"] == scale
    reference = _reference(weights, scale)
    with open_session(result.engine, "tensorrt", device="cuda") as session:
        scores = {}
        for image, lr in _set5_inputs(set5, scale):
            sr = session.run(lr)
            ref = reference(lr)
            assert sr.shape == ref.shape
            scores[image] = psnr(np.clip(sr, 0, 1), np.clip(ref, 0, 1), 1.0)
        print(
            f"\n{name} TensorRT FP16 vs PyTorch FP32 PSNR (dB):",
            {k: round(v, 2) for k, v in scores.items()},
        )
        print(session.memory_report().format())
    assert min(scores.values()) >= PSNR_FLOOR_DB, scores


def test_torch_zero_copy_and_cuda_graph_agree(engines):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA build of torch for the zero-copy path")
    from overnet.runtime.tensorrt_backend import TensorRTSession

    _, result = engines["x2"]
    x = np.random.default_rng(0).random((1, 3, 96, 128), dtype=np.float32)
    with TensorRTSession.open(result.engine) as plain:
        expected = plain.run(x)
        y = plain.run(torch.from_numpy(x).cuda())
        torch.cuda.synchronize()
        np.testing.assert_allclose(y.cpu().numpy(), expected, atol=1e-3)
    with TensorRTSession.open(result.engine, cuda_graph=True) as graphed:
        for _ in range(3):  # run + capture, then two replays
            np.testing.assert_allclose(graphed.run(x), expected, atol=1e-3)


def test_shape_outside_profile_and_mismatch_refused(engines, tmp_path):
    from overnet.errors import InputError
    from overnet.export.tensorrt import EngineMismatchError, sidecar_path
    from overnet.runtime.tensorrt_backend import TensorRTSession

    _, result = engines["x2"]
    with TensorRTSession.open(result.engine) as session, pytest.raises(InputError, match="profile"):
        session.run(np.zeros((1, 3, 600, 64), np.float32))
    copy = tmp_path / result.engine.name
    copy.write_bytes(result.engine.read_bytes())
    data = json.loads(sidecar_path(result.engine).read_text())
    data["gpu_name"] = "Some Other GPU"
    sidecar_path(copy).write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match="overnet export --format tensorrt"):
        TensorRTSession.open(copy)


def test_benchmark(engines):
    """Median latency of a 256x256 -> 512x512 x2 run (numpy in/out, CUDA graph)."""
    from overnet.runtime.tensorrt_backend import TensorRTSession

    _, result = engines["x2"]
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    for graph in (False, True):
        with TensorRTSession.open(result.engine, cuda_graph=graph) as session:
            for _ in range(5):
                session.run(x)
            times = []
            for _ in range(20):
                start = time.perf_counter()
                session.run(x)
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"\nx2 256x256 FP16 TensorRT (cuda_graph={graph}): median {median * 1e3:.2f} ms")
        assert 0 < median < 10


def test_onnxruntime_tensorrt_provider_route(engines, set5, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu with the TensorRT provider is not installed")
    from overnet.metrics.quality import psnr
    from overnet.runtime import open_session

    weights, result = engines["x2"]
    profile = {"min_shape": PROFILE[0], "opt_shape": PROFILE[1], "max_shape": PROFILE[2]}
    reference = _reference(weights, 2)
    with open_session(
        result.onnx,
        "ort-trt",
        device="cuda",
        trt_cache_dir=tmp_path / "ort-cache",
        trt_profile=profile,
    ) as session:
        assert session.info.providers[0] == "TensorrtExecutionProvider"
        high = [int(v) for v in PROFILE[2].split("x")]
        assert session.info.max_hw == (high[2], high[3])
        for _, lr in _set5_inputs(set5, 2)[:2]:
            score = psnr(np.clip(session.run(lr), 0, 1), np.clip(reference(lr), 0, 1), 1.0)
            assert score >= PSNR_FLOOR_DB
    assert any((tmp_path / "ort-cache").iterdir())  # engine/timing caches were written
