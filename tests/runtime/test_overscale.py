"""Any scale at any size: overscale sessions on every CPU backend, tiled against whole."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from overnet.config import output_size
from overnet.errors import InputError
from overnet.formats.overscale_head import HEAD_KEY, OverscaleHead
from overnet.runtime import Upscaler, open_session
from overnet.runtime.overscale import OverscaleSession, owned_outputs
from tests.conftest import read_rgb, to_nchw

torch = pytest.importorskip("torch")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10 * np.log10(1 / mse)


@pytest.fixture(scope="module")
def crop(set5) -> np.ndarray:
    """1x3x120x128 of butterfly (LR x2 input): whole-image inference fits easily."""
    return np.ascontiguousarray(
        to_nchw(read_rgb(set5 / "LR_bicubic" / "X2" / "butterflyx2.png"))[:, :, :120, :128]
    )


def _reference(weights, x: np.ndarray, scale: float) -> np.ndarray:
    from overnet.weights import load_model

    model = load_model(weights)
    with torch.inference_mode():
        return model(torch.from_numpy(x), scale).numpy()


@pytest.mark.parametrize(
    ("weights", "scale"), [("x2", 1.5), ("x2", 1.37), ("x2", 2.0), ("x3", 2.5), ("x3", 1.5)]
)
def test_tiled_any_scale_matches_whole_image_inference(request, crop, weights, scale):
    path = request.getfixturevalue(f"{weights}_weights")
    reference = _reference(path, crop, scale)
    with open_session(path, "openvino", precision="fp32", scale=scale, overscale=True) as s:
        assert isinstance(s, OverscaleSession) and s.info.scale == scale
        whole = s.run(crop)  # the features graph finished on the host, whole image
        upscaler = Upscaler(s, tile=64)
        plan = upscaler.plan(120, 128)
        assert plan.tiled and len(plan.tiles) >= 4
        tiled = upscaler.upscale_array(crop)
    want = (1, 3, *output_size(120, 128, scale))
    assert reference.shape == whole.shape == tiled.shape == want
    assert np.abs(whole - reference).max() < 1e-4  # exact up to float rounding
    assert _psnr(tiled, reference) >= 50


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_a_fractional_scale_on_a_checkpoint_opens_the_overscale_graph(x2_weights, crop, backend):
    with open_session(x2_weights, backend, scale=2.5, precision="fp32") as session:
        assert isinstance(session, OverscaleSession)
        assert session.info.scale == 2.5 and session.info.upscale == 3
        assert any("overscale" in note for note in session.info.notes)
        x = crop[:, :, :20, :27]
        assert session.run_features(x).shape == (1, 64, 60, 81)
        out = session.run(x)
    assert out.shape == (1, 3, 50, 68)
    assert np.abs(out - _reference(x2_weights, x, 2.5)).max() < 1e-4


def test_integer_scales_keep_the_full_graph_unless_asked(x2_weights):
    with open_session(x2_weights, "torch", scale=2) as plain:
        assert not isinstance(plain, OverscaleSession)
    with open_session(x2_weights, "torch", scale=2, overscale=True) as forced:
        assert isinstance(forced, OverscaleSession) and forced.info.scale == 2
        assert HEAD_KEY in forced.inner.info.metadata


def test_a_960x540_image_at_x1_5_runs_within_the_default_budget(x2_weights):
    image = np.random.default_rng(3).random((540, 960, 3), dtype=np.float32)
    with open_session(x2_weights, "openvino", scale=1.5) as session:
        upscaler = Upscaler(session)
        plan = upscaler.plan(540, 960)
        assert plan.tiled
        tile_bytes = plan.batch * plan.tile_h * plan.tile_w * upscaler.bytes_per_pixel
        assert tile_bytes <= upscaler.max_memory
        out = upscaler.upscale(image)
    assert out.shape == (810, 1440, 3)


def test_a_960x540_image_at_x2_5_runs_within_the_default_budget(x3_weights):
    image = (np.random.default_rng(4).random((540, 960, 3)) * 255).astype(np.uint8)
    with open_session(x3_weights, "openvino", scale=2.5) as session:
        out = Upscaler(session).upscale(image)
    assert out.shape == (1350, 2400, 3) and out.dtype == np.uint8


def test_scale_outside_the_model_range_is_refused(x2_weights):
    with pytest.raises(InputError, match="between 1 and the model's upscale 3"):
        open_session(x2_weights, "torch", scale=3.5)


def test_a_file_that_ends_in_rgb_is_not_run_as_overscale(x2_onnx):
    with pytest.raises(InputError, match="--overscale"):
        open_session(x2_onnx, "onnxruntime", overscale=True)


def test_owned_outputs_cover_each_axis_once_with_blends_between_neighbours():
    owned = owned_outputs(100, 150, [(0, 40), (24, 64), (48, 88), (60, 100)])
    ranges = list(owned.values())
    assert ranges[0][0] == 0 and ranges[-1][1] == 150
    for (_, end, _, after), (first, _, before, _) in itertools.pairwise(ranges):
        assert first <= end and after == before == end - first
    with pytest.raises(ValueError, match="overlap"):
        owned_outputs(100, 150, [(0, 52), (50, 100)])  # 2 px overlap: outputs unfinished


def test_head_text_round_trips_and_damage_is_a_load_error():
    from overnet.errors import ModelLoadError

    rng = np.random.default_rng(0)
    head = OverscaleHead(
        3, 2.0, rng.random((3, 64, 3, 3), np.float32), rng.random(3, np.float32),
        -np.ones(3, np.float32), np.ones(3, np.float32),
    )  # fmt: skip
    back = OverscaleHead.from_text(head.to_text())
    assert back.upscale == 3 and back.scale == 2.0 and np.array_equal(back.weight, head.weight)
    with pytest.raises(ModelLoadError, match="--overscale"):
        OverscaleHead.from_text(head.to_text()[:-20])


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime", "torch"])
def test_borrowed_features_equal_the_copied_ones(x2_weights, crop, backend):
    """run_borrowed gives run's values (OpenVINO's without a second copy of the 64-channel
    features), and run's own result is not overwritten by the next call."""
    x = crop[:, :, :24, :30]
    with open_session(x2_weights, backend, scale=1.5, precision="fp32") as session:
        copied = session.run_features(x)
        kept = copied.copy()
        borrowed = session.run_features_borrowed(x)
        assert borrowed.dtype == np.float32 and np.array_equal(borrowed, copied)
        session.run_features_borrowed(crop[:, :, :24, :30] * 0.5)
        assert np.array_equal(copied, kept)
