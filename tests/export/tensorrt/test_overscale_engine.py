"""TensorRT engines built from the ``--overscale`` ONNX: one engine serves every scale of its
model (the tensorrt and cuda-python doubles; CPU only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from overnet.config import output_size
from overnet.errors import InputError
from overnet.export.tensorrt import BuildOptions, Profile
from overnet.export.tensorrt.engine_export import (
    build_with_sidecar,
    export_tensorrt,
    file_names,
    rebuild_command,
)
from overnet.formats.overscale_head import HEAD_KEY, OVERSCALE_OUTPUT, OverscaleHead, head_of
from overnet.formats.sidecar import SIDECAR_FORMAT, read_sidecar, sidecar_path, write_sidecar
from overnet.runtime import Upscaler, open_session
from overnet.runtime.overscale import OverscaleSession, finish_window
from tests.fakes.fixtures import assert_no_deprecated, fake_env, install
from tests.formats.test_sidecar import make_sidecar

PROFILE = Profile.parse("1x3x8x8", "1x3x16x16", "2x3x32x40")
CHANNELS, UPSCALE = 64, 3


@pytest.fixture(params=[11, 10], ids=["trt11", "trt10"])
def trt_env(request, monkeypatch):
    """The TensorRT 11.x double, then the 10.x one."""
    yield from fake_env(request.param, monkeypatch)


def make_head(seed: int = 0) -> OverscaleHead:
    rng = np.random.default_rng(seed)
    return OverscaleHead(
        upscale=UPSCALE,
        scale=2.0,
        weight=rng.normal(0, 0.05, (3, CHANNELS, 3, 3)).astype(np.float32),
        bias=rng.normal(0, 0.1, 3).astype(np.float32),
        input_shift=np.array([-0.45, -0.44, -0.40], np.float32),
        output_shift=np.array([0.45, 0.44, 0.40], np.float32),
    )


def write_features_onnx(path, head: OverscaleHead):
    """A small ONNX shaped like an ``--overscale`` export: lr N x 3 x H x W -> sr N x 64 x
    uH x uW, with the metadata ``export_onnx(overscale=True)`` writes (the parser double
    reads the declared shapes and the metadata; its kernel does the rest)."""
    import onnx
    from onnx import TensorProto, helper

    lr = helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    sr = helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["batch", CHANNELS, "oh", "ow"])
    node = helper.make_node("Identity", ["lr"], ["sr"], name="Identity_0")
    model = helper.make_model(
        helper.make_graph([node], "features", [lr], [sr]),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    for key, value in {
        "overnet.scale": str(float(UPSCALE)),
        "overnet.upscale": str(UPSCALE),
        "overnet.precision": "fp16",
        "overnet.output": OVERSCALE_OUTPUT,
        HEAD_KEY: head.to_text(),
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


@pytest.fixture
def features_engine(trt_env, tmp_path):
    head = make_head()
    onnx = write_features_onnx(tmp_path / "overnet_x2_overscale_fp16.onnx", head)
    name = file_names(2, PROFILE, overscale=True)[1]
    path = tmp_path / name
    rebuild = rebuild_command(tmp_path / "w.pth", [2], PROFILE, BuildOptions(), tmp_path)
    build_with_sidecar(onnx, path, PROFILE, BuildOptions(), rebuild=rebuild, echo=lambda _: None)
    return path, head


def nearest_features(x: np.ndarray) -> np.ndarray:
    """What the double's kernel computes for a 64-channel x3 output: nearest x3 of input
    channel k mod 3."""
    return x[:, np.arange(CHANNELS) % 3].repeat(UPSCALE, axis=2).repeat(UPSCALE, axis=3)


# -- sidecar -----------------------------------------------------------------------------


def test_sidecar_round_trips_the_head(tmp_path):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"engine-bytes")
    text = make_head().to_text()
    sidecar = make_sidecar()
    sidecar.head = text
    write_sidecar(engine, sidecar)
    data = json.loads(sidecar_path(engine).read_text())
    assert data["format"] == SIDECAR_FORMAT == 2 and data["head"] == text
    back = read_sidecar(engine)
    assert back.head == text and back.format == 2
    np.testing.assert_array_equal(OverscaleHead.from_text(back.head).weight, make_head().weight)


def test_a_format_1_sidecar_still_reads_with_no_head(tmp_path):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"engine-bytes")
    data = json.loads(make_sidecar().to_json())
    data.pop("head")
    data["format"] = 1
    sidecar_path(engine).write_text(json.dumps(data))
    sidecar = read_sidecar(engine)
    assert sidecar.format == 1 and sidecar.head == ""
    assert make_sidecar().head == ""  # an RGB engine's sidecar has none either


# -- build and run -----------------------------------------------------------------------


def test_file_names_and_rebuild_command_say_overscale(tmp_path):
    assert file_names(2, PROFILE) == (
        "overnet_x2_fp16.onnx",
        "overnet_x2_fp16_b1-1-2_8x8-16x16-32x40.engine",
    )
    assert file_names(2, PROFILE, overscale=True) == (
        "overnet_x2_overscale_fp16.onnx",
        "overnet_x2_overscale_fp16_b1-1-2_8x8-16x16-32x40.engine",
    )
    line = rebuild_command(
        tmp_path / "w.pth", [2], PROFILE, BuildOptions(), tmp_path, overscale=True
    )
    assert "--overscale" in line and "--scales" not in line
    assert "--min 1x3x8x8 --opt 1x3x16x16 --max 2x3x32x40" in line


def test_the_sidecar_of_a_features_engine_carries_the_head(features_engine, trt_env):
    path, head = features_engine
    sidecar = read_sidecar(path)
    assert sidecar.head == head.to_text()
    assert (sidecar.scale, sidecar.upscale, sidecar.format) == (3.0, 3, SIDECAR_FORMAT)
    assert trt_env.trt.networks[-1].outputs[0].shape[1] == CHANNELS


def test_a_features_engine_serves_any_scale(features_engine, trt_env):
    path, head = features_engine
    x = np.random.default_rng(1).random((2, 3, 10, 12), dtype=np.float32)
    with open_session(path, "tensorrt", device="cuda", scale=1.5) as session:
        assert isinstance(session, OverscaleSession)
        assert (session.info.scale, session.info.upscale) == (1.5, 3)
        assert session.info.backend == "tensorrt"
        inner = session.inner.info
        assert inner.scale == 3.0 and inner.metadata[HEAD_KEY] == head.to_text()
        assert head_of(inner.metadata).upscale == 3
        features = session.run_features(x)
        assert features.shape == (2, CHANNELS, 30, 36)
        np.testing.assert_array_equal(features, nearest_features(x))
        out = session.run(x)
    assert out.shape == (2, 3, 15, 18) == (2, 3, *output_size(10, 12, 1.5))
    want = finish_window(features[1], (0, 0), x[1], head, 1.5, (0, 15), (0, 18))
    np.testing.assert_allclose(out[1], want, rtol=0, atol=1e-6)


def test_the_upscaler_tiles_a_features_engine_within_its_profile(features_engine, trt_env):
    path, head = features_engine
    x = np.random.default_rng(2).random((1, 3, 50, 70), dtype=np.float32)  # > max 32x40
    with open_session(path, "tensorrt", device="cuda", scale=2.5) as session:
        upscaler = Upscaler(session, tile=32)
        plan = upscaler.plan(50, 70)
        assert plan.tiled
        tiled = upscaler.upscale_array(x)
    out_h, out_w = output_size(50, 70, 2.5)
    assert tiled.shape == (1, 3, out_h, out_w)
    # the double's features are local (nearest x3), so tiles finish to the whole image's
    whole = finish_window(nearest_features(x)[0], (0, 0), x[0], head, 2.5, (0, out_h), (0, out_w))
    np.testing.assert_allclose(tiled[0], whole, rtol=0, atol=1e-5)


def test_an_rgb_engine_is_not_run_as_overscale(trt_env, tmp_path):
    from tests.fakes.fixtures import write_tiny_onnx

    onnx = write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")
    path = tmp_path / "rgb.engine"
    build_with_sidecar(onnx, path, PROFILE, BuildOptions(), rebuild="x", echo=lambda _: None)
    assert read_sidecar(path).head == ""
    with open_session(path, "tensorrt", device="cuda") as session:
        assert not isinstance(session, OverscaleSession)
        assert HEAD_KEY not in session.info.metadata
    with pytest.raises(InputError, match=r"built for x2, not x1\.5.*--overscale"):
        open_session(path, "tensorrt", device="cuda", scale=1.5)


def test_overscale_with_scales_is_refused(trt_env, tmp_path):
    with pytest.raises(InputError, match="serves every scale.*leave out --scale/--scales"):
        export_tensorrt(tmp_path / "w.pth", tmp_path / "out", scales=[2], overscale=True)
    assert not (tmp_path / "out").exists()


# -- end to end with the real x2 weights -------------------------------------------------

ARGS = ["--min", "1x3x8x8", "--opt", "1x3x16x16", "--max", "1x3x32x32", "--no-validate"]
ENGINE = "overnet_x2_overscale_fp16_b1-1-1_8x8-16x16-32x32.engine"


def test_cli_builds_one_features_engine_for_every_scale(monkeypatch, tmp_path, x2_weights):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from overnet.cli import main
    from overnet.formats.onnx_metadata import read_onnx_metadata

    env = install(monkeypatch, 11)
    out = tmp_path / "engines"
    args = ["export", "--format", "tensorrt", "--weights", str(x2_weights), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--overscale", *ARGS])
    assert result.exit_code == 0, result.output
    assert "x2 overscale: exporting FP16 ONNX" in result.output
    assert f"overscaled features x3 (serves scales 1..3): {out / ENGINE}" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "overnet.timing-cache",
        "overnet_x2_overscale_fp16.onnx",
        ENGINE,
        ENGINE + ".json",
    ]
    meta = read_onnx_metadata(out / "overnet_x2_overscale_fp16.onnx")
    assert meta["overnet.output"] == OVERSCALE_OUTPUT
    sidecar = read_sidecar(out / ENGINE)
    assert sidecar.head == meta[HEAD_KEY] and sidecar.head
    assert (sidecar.scale, sidecar.upscale, sidecar.precision) == (3.0, 3, "fp16")
    assert "--overscale" in sidecar.rebuild_command and "--scales" not in sidecar.rebuild_command
    assert env.trt.networks[-1].outputs[0].shape[1] == CHANNELS
    x = np.random.default_rng(3).random((1, 3, 10, 12), dtype=np.float32)
    for scale in (1.5, 2, 3):
        with open_session(out / ENGINE, "tensorrt", device="cuda", scale=scale) as session:
            assert isinstance(session, OverscaleSession) and session.info.scale == scale
            assert session.run_features(x).shape == (1, CHANNELS, 30, 36)
            assert session.run(x).shape == (1, 3, *output_size(10, 12, scale))
    assert_no_deprecated(env)
