"""The network with the upstream checkpoints matches the upstream ONNX export."""

import numpy as np
import pytest
import torch

from overnet.weights import load_model
from tests.conftest import read_rgb, shared_file, to_nchw

ort = pytest.importorskip("onnxruntime")
TOLERANCE = 5e-5


def _upstream(scale: int):
    path = shared_file("weights", "upstream-onnx", f"OverNet_x{scale}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"inputs": x, "scale": np.array(scale, np.int64)})[0]


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("shape", [(1, 3, 17, 17), (1, 3, 24, 41), (2, 3, 31, 20)])
def test_random_inputs_match_upstream_onnx(scale, shape):
    model = load_model(shared_file("weights", f"OverNet_x{scale}.pth.tar"))
    x = np.random.default_rng(scale).random(shape, dtype=np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    ref = _upstream(scale)(x)
    assert ours.shape == ref.shape == (shape[0], 3, shape[2] * scale, shape[3] * scale)
    assert np.abs(ours - ref).max() <= TOLERANCE


@pytest.mark.parametrize("scale", [2, 3])
def test_set5_lr_images_match_upstream_onnx(scale, set5):
    model = load_model(shared_file("weights", f"OverNet_x{scale}.pth.tar"))
    upstream = _upstream(scale)
    lr_files = sorted((set5 / "LR_bicubic" / f"X{scale}").glob("*.png"))
    assert len(lr_files) == 5
    for lr in lr_files:
        x = to_nchw(read_rgb(lr))
        with torch.no_grad():
            ours = model(torch.from_numpy(x)).numpy()
        diff = np.abs(ours - upstream(x)).max()
        assert diff <= TOLERANCE, f"{lr.name}: max abs diff {diff}"
