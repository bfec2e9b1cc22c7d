"""`overnet export --overscale`: one features graph per model (ONNX, OpenVINO IR), run at any
scale, and the option combinations that cannot work refused with why."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from overnet.cli import main
from overnet.formats.overscale_head import HEAD_KEY, OVERSCALE_OUTPUT
from overnet.runtime import open_session
from overnet.runtime.overscale import OverscaleSession

pytest.importorskip("torch")
pytest.importorskip("onnx")


def _input() -> np.ndarray:
    return np.random.default_rng(0).random((1, 3, 20, 24), dtype=np.float32)


def test_onnx_overscale_serves_a_fractional_scale(tmp_path, x2_weights):
    pytest.importorskip("onnxruntime")
    from overnet.formats.onnx_metadata import read_onnx_metadata

    out = tmp_path / "x2-overscale.onnx"
    args = ["export", "--format", "onnx", "--weights", str(x2_weights), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--overscale"])
    assert result.exit_code == 0, result.output
    assert "overscaled features x3 (serves scales 1..3)" in result.output
    meta = read_onnx_metadata(out)
    assert meta["overnet.output"] == OVERSCALE_OUTPUT and meta[HEAD_KEY]
    assert (meta["overnet.scale"], meta["overnet.upscale"]) == ("3.0", "3")
    with open_session(out, "onnxruntime", scale=1.5) as session:
        assert isinstance(session, OverscaleSession) and session.info.scale == 1.5
        assert session.run_features(_input()).shape == (1, 64, 60, 72)
        y = session.run(_input())
    assert y.shape == (1, 3, 30, 36)
    with open_session(x2_weights, "torch", scale=1.5, precision="fp32") as reference:
        np.testing.assert_allclose(y, reference.run(_input()), rtol=0, atol=1e-4)


def test_openvino_overscale_ir_carries_the_head(tmp_path, x2_weights):
    pytest.importorskip("openvino")
    from overnet.formats.ir_metadata import read_ir_metadata

    out = tmp_path / "ir"
    args = ["export", "--format", "openvino", "--weights", str(x2_weights), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--overscale", "--no-validate"])
    assert result.exit_code == 0, result.output
    assert "overscaled features x3 (serves scales 1..3)" in result.output
    meta = read_ir_metadata(out / "model.xml")
    assert meta["overnet.output"] == OVERSCALE_OUTPUT and meta[HEAD_KEY]
    with open_session(out / "model.xml", "openvino", precision="fp32", scale=2.5) as session:
        assert isinstance(session, OverscaleSession) and session.info.scale == 2.5
        assert session.run(_input()).shape == (1, 3, 50, 60)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "2"], "--overscale exports one graph that serves every scale in [1, upscale]"),
        (["--format", "tensorrt", "--scales", "2,3"], "drop --scales and give the scale when"),
        (["--format", "tensorrt", "--scale", "1.5"], "drop --scale and give the scale when"),
        (["--format", "openvino", "--scale", "2"], "drop --scale"),
        (["--format", "triton"], "--overscale does not apply to --format triton"),
        (["--format", "triton", "--triton-backend", "tensorrt"], "does not apply to --format"),
        (["--int8", "--calibration", "."], "--overscale does not go with --int8"),
        (["--format", "openvino", "--int8"], "--overscale does not go with --int8"),
    ],
)
def test_overscale_with_what_cannot_serve_it_is_a_usage_error(tmp_path, extra, message):
    weights = tmp_path / "w.pth"  # never read: the options are refused first
    weights.write_bytes(b"")
    out = tmp_path / "out"
    args = ["export", "--weights", str(weights), "-o", str(out), "--overscale", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()
