"""`overnet export --format tensorrt` end to end with the real x2 weights and the doubles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from overnet.cli import main
from overnet.runtime import open_session
from tests.fakes.fixtures import assert_no_deprecated, install

pytest.importorskip("onnx")
pytest.importorskip("torch")

ARGS = ["--min", "1x3x8x8", "--opt", "1x3x16x16", "--max", "1x3x32x32", "--no-validate"]
ENGINE = "overnet_x2_fp16_b1-1-1_8x8-16x16-32x32.engine"


def test_export_builds_engine_sidecar_and_runs(monkeypatch, tmp_path, x2_weights):
    env = install(monkeypatch, 11)
    out = tmp_path / "engines"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--format",
            "tensorrt",
            "--weights",
            str(x2_weights),
            "-o",
            str(out),
            "--opt-level",
            "2",
            "--workspace",
            "1GiB",
            *ARGS,
        ],
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"trtexec --onnx={out}/overnet_x2_fp16.onnx --saveEngine={out}/{ENGINE}" in text
    assert "--stronglyTyped --minShapes=lr:1x3x8x8" in text
    assert "--memPoolSize=workspace:1024M --builderOptimizationLevel=2" in text
    assert "[tensorrt] Building engine done in" in text
    assert "creating timing cache" in text
    sidecar = json.loads((out / (ENGINE + ".json")).read_text())
    assert sidecar["scale"] == 2.0 and sidecar["upscale"] == 3
    assert sidecar["precision"] == "fp16" and sidecar["weights_sha256"]
    assert sidecar["build_options"]["opt_level"] == 2
    assert sidecar["build_options"]["workspace"] == 1 << 30
    assert "--workspace 1GiB" in sidecar["rebuild_command"]  # the same syntax, read back
    assert (out / "overnet.timing-cache").is_file()
    assert env.trt.networks[-1].inputs[0].dtype.name == "FLOAT"  # float32 I/O of the FP16 ONNX
    with open_session(out / ENGINE, "tensorrt", device="cuda") as session:
        y = session.run(np.zeros((1, 3, 10, 12), np.float32))
        assert y.shape == (1, 3, 20, 24)
    # a second run without --overwrite refuses; with it, the timing cache is reused
    again = CliRunner().invoke(
        main,
        ["export", "--format", "tensorrt", "--weights", str(x2_weights), "-o", str(out), *ARGS],
    )
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert_no_deprecated(env)


def test_overwrite_rebuild_reuses_the_timing_cache(monkeypatch, tmp_path, x2_weights):
    env = install(monkeypatch, 11)
    out = tmp_path / "engines"
    args = ["export", "--format", "tensorrt", "--weights", str(x2_weights), "-o", str(out), *ARGS]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "creating timing cache" in first.output and "timing cache reused" not in first.output
    assert json.loads((out / (ENGINE + ".json")).read_text())["timing_cache_reused"] is False
    # the ONNX the builder parsed holds float16 weights: a silent FP32 export fails here
    weights = env.trt.networks[-1].initializer_types
    assert weights["FLOAT16"] > 0 and weights["FLOAT16"] > weights["FLOAT"], weights
    again = CliRunner().invoke(main, [*args, "--overwrite"])
    assert again.exit_code == 0, again.output
    assert f"reusing timing cache {out}/overnet.timing-cache" in again.output
    assert "timing cache reused" in again.output
    sidecar = json.loads((out / (ENGINE + ".json")).read_text())
    assert sidecar["timing_cache_reused"] is True
    assert "--timing-cache" not in sidecar["rebuild_command"]
    assert env.trt.configs[-1].timing_cache.loaded
    assert_no_deprecated(env)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--opset", "17"], "--opset would be ignored: --format tensorrt exports its own"),
        (["--static-shape", "64x64"], "--static-shape would be ignored"),
        (["--static-batch"], "--static-batch would be ignored"),
        (["--sample-image", "x.png"], "--sample-image would be ignored"),
        (["--scale", "2", "--scales", "2,3"], "--scale or --scales, not both"),
    ],
)
def test_onnx_only_options_are_refused(monkeypatch, tmp_path, x2_weights, extra, message):
    install(monkeypatch, 11)
    out = tmp_path / "e"
    args = ["export", "--format", "tensorrt", "--weights", str(x2_weights), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()


def test_tensorrt_only_options_are_refused_for_onnx(tmp_path, x2_weights):
    out = tmp_path / "x2.onnx"
    args = ["export", "--weights", str(x2_weights), "-o", str(out), "--scales", "2", "--opt"]
    result = CliRunner().invoke(main, [*args, "1x3x64x64"])
    assert result.exit_code == 2 and "--scales, --opt would be ignored" in result.output
    assert "--format tensorrt only" in result.output and not out.exists()


def test_fp16_is_implied(monkeypatch, tmp_path, x2_weights):
    install(monkeypatch, 11)
    out = tmp_path / "engines"
    args = ["export", "--format", "tensorrt", "--weights", str(x2_weights), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--fp16", *ARGS])
    assert result.exit_code == 0, result.output
    assert "--fp16 is implied by --format tensorrt" in result.output
    assert (out / ENGINE).is_file()


def test_scales_beyond_the_upscale_are_refused(monkeypatch, tmp_path, x2_weights):
    install(monkeypatch, 11)
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--format",
            "tensorrt",
            "--weights",
            str(x2_weights),
            "--scales",
            "2,4",
            "-o",
            str(tmp_path / "e"),
            *ARGS,
        ],
    )
    assert result.exit_code == 2
    assert "upscale 3, so it serves scales 1..3; scale 4 is outside" in result.output
    assert not (tmp_path / "e").exists()


def test_missing_tensorrt_fails_before_exporting(monkeypatch, tmp_path, x2_weights):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)
    result = CliRunner().invoke(
        main,
        ["export", "--format", "tensorrt", "--weights", str(x2_weights), "-o", str(tmp_path / "e")],
    )
    assert result.exit_code == 2
    assert "https://pypi.nvidia.com" in result.output
    assert not (tmp_path / "e").exists()
