"""OpenVINO IR export: model.xml + model.bin with overnet's metadata in rt_info, loaded by
the openvino backend (model kind "ir") and compiled through OpenVINO's model cache."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("openvino")
pytest.importorskip("torch")

from overnet.cli import main
from overnet.errors import InputError
from overnet.formats.ir_metadata import read_ir_metadata
from overnet.runtime import open_session
from overnet.runtime.model_source import detect_source
from overnet.runtime.openvino_backend import compile_cache_dir, compile_onnx


@pytest.fixture(scope="module")
def x2_ir(tmp_path_factory, x2_weights):
    from overnet.export.openvino_ir import export_openvino

    outdir = tmp_path_factory.mktemp("ir")
    return export_openvino(x2_weights, outdir, precision_hint="bf16", validate=False)


def test_xml_is_an_ir_that_only_openvino_loads(x2_ir):
    assert detect_source(x2_ir.xml).kind == "ir"
    with pytest.raises(InputError, match="is an OpenVINO IR model.*use backend openvino"):
        open_session(x2_ir.xml, "onnxruntime")


def test_ir_carries_the_metadata_and_matches_the_onnx(x2_ir, x2_onnx):
    meta = read_ir_metadata(x2_ir.xml)
    assert meta["overnet.scale"] == "2.0" and meta["overnet.upscale"] == "3"
    assert meta["overnet.precision"] == "fp32" and meta["overnet.precision_hint"] == "bf16"
    x = np.random.default_rng(1).random((1, 3, 21, 30), dtype=np.float32)
    with open_session(x2_ir.xml, "openvino", precision="fp32") as ir:
        assert ir.info.scale == 2.0 and ir.info.upscale == 3
        assert ir.info.metadata["overnet.source_sha256"] == meta["overnet.source_sha256"]
        got = ir.run(x)
    with open_session(x2_onnx, "openvino", precision="fp32") as onnx:
        want = onnx.run(x)
    assert got.shape == (1, 3, 42, 60)
    assert float(np.max(np.abs(got - want))) <= 1e-4


def test_the_precision_hint_applies_when_none_is_asked(x2_ir):
    from overnet.runtime.precision import native_bf16

    with open_session(x2_ir.xml, "openvino") as session:
        expected = "bf16" if native_bf16() else "fp32"
        assert session.info.precision == expected
        assert any("hint" in note for note in session.info.notes)
    with pytest.raises(InputError, match="not an INT8 model"):
        open_session(x2_ir.xml, "openvino-int8")


def test_scale_mismatch_is_refused(x2_ir):
    with pytest.raises(InputError, match="exported for x2, not x3"):
        compile_onnx(x2_ir.xml, scale=3.0)


def test_second_compile_uses_the_cache(x2_ir, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path))
    compile_onnx(x2_ir.xml, precision="fp32")
    blobs = list(compile_cache_dir().glob("*.blob"))
    assert compile_cache_dir() == tmp_path / "openvino" and blobs
    compile_onnx(x2_ir.xml, precision="fp32")  # loads the blob: no new one
    assert sorted(compile_cache_dir().glob("*.blob")) == sorted(blobs)
    compile_onnx(x2_ir.xml, precision="fp32", cache=False)
    assert sorted(compile_cache_dir().glob("*.blob")) == sorted(blobs)


def test_cli_writes_the_ir_and_refuses_what_it_would_ignore(x2_weights, tmp_path):
    out = tmp_path / "ir"
    runner = CliRunner()
    args = ["export", "--weights", str(x2_weights), "--format", "openvino", "-o", str(out)]
    result = runner.invoke(main, [*args, "--no-validate"])
    assert result.exit_code == 0, result.output
    assert (out / "model.xml").is_file() and (out / "model.bin").is_file()
    assert "hint fp32" in result.output
    again = runner.invoke(main, [*args, "--no-validate"])
    assert again.exit_code != 0 and "--overwrite" in again.output
    for extra in (["--max-drop", "0.2"], ["--opset", "19"], ["--fp16"]):
        refused = runner.invoke(main, [*args, "--overwrite", *extra])
        assert refused.exit_code == 2, (extra, refused.output)
