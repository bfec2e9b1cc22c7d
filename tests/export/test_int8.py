"""INT8 behind a PSNR-Y gate, on tiny data (crops of Set5; calibration and held-out
images are different pictures): plain INT8 loses more than the gate allows, the command
refuses a gate it cannot meet and writes nothing, refuses to calibrate on the gate's own
images, and a passing INT8 IR loads in the openvino backend (also through the
checkpoint's `openvino-int8` registration) with its sets' hashes and interval recorded."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("nncf")
pytest.importorskip("openvino")
pytest.importorskip("torch")

from overnet.cli import main
from overnet.errors import InputError
from overnet.eval import dataset_psnr_y
from overnet.export.int8 import Int8Options, check_gate, quantize_gated, search
from overnet.export.int8_data import calibration_pairs
from overnet.export.int8_layers import FUSION_MODULES, keep_float_names, module_scopes
from overnet.export.openvino_ir import onnx_props, save_ir
from overnet.runtime import open_session

TINY = {"crops": 8, "crop_size": 24, "max_reverts": 0, "score": dataset_psnr_y}


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory, set5):
    """Calibration: three Set5 HR pictures; held-out: 64x64 crops of the other two."""
    root = tmp_path_factory.mktemp("int8-data")
    cal, val = root / "cal", root / "val"
    cal.mkdir()
    val.mkdir()
    pictures = sorted((set5 / "HR").glob("*.png"))
    for path in pictures[:3]:
        Image.open(path).save(cal / path.name)
    for i, path in enumerate([*pictures[3:], pictures[3]]):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        y, x = (rgb.shape[0] // 3) * (i // 2 + 1) - 32, rgb.shape[1] // 2 - 32
        Image.fromarray(rgb[y : y + 64, x : x + 64]).save(val / f"{i}-{path.name}")
    return cal, val


def test_plain_int8_loses_more_than_the_gate(tiny_sets, x2_onnx, tmp_path):
    import openvino as ov

    cal, val = tiny_sets
    options = Int8Options(cal, val, keep_float="none", **TINY)
    model = search(ov.Core().read_model(str(x2_onnx)), calibration_pairs(cal, 2, 8, 24), 2, options)
    xml, _ = save_ir(model, tmp_path, {**onnx_props(x2_onnx), "overnet.precision": "int8"})
    report = check_gate(xml, x2_onnx, 2, val, options, "fp32")
    assert report.drop > 0.1, report.format()
    assert not report.passed


def test_the_image_path_is_never_quantised(tiny_sets, x2_onnx):
    """Even with no convolution kept in float, the picture itself stays float: no quantiser
    on the input, nor before the ops that read it (the mean subtraction, the bicubic skip)
    or the output's residual Add."""
    import openvino as ov

    cal, _ = tiny_sets
    options = Int8Options(cal, keep_float="none", **TINY)
    model = search(ov.Core().read_model(str(x2_onnx)), calibration_pairs(cal, 2, 8, 24), 2, options)
    ops = model.get_ordered_ops()
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 0  # the rest is INT8

    def inputs(op):
        return [v.get_node() for v in op.input_values()]

    readers = [o for o in ops if any(i.get_type_name() == "Parameter" for i in inputs(o))]
    assert "FakeQuantize" not in {o.get_type_name() for o in readers}
    # the input feeds the mean subtraction (then the body) and the bicubic skip
    assert sorted(o.get_type_name() for o in readers if o.get_type_name() != "ShapeOf") == [
        "Interpolate",
        "Subtract",
    ]
    (out,) = [inputs(o)[0] for o in ops if o.get_type_name() == "Result"]
    assert out.get_type_name() == "Add"
    for op in (*readers, out):
        assert not [i for i in inputs(op) if i.get_type_name() == "FakeQuantize"], op


def test_fusion_keeps_the_body_fusion_convolutions_in_float(x2_onnx):
    import openvino as ov

    model = ov.Core().read_model(str(x2_onnx))
    scopes = module_scopes(x2_onnx)
    names = keep_float_names(model, "fusion", scopes)
    ends = keep_float_names(model, "ends")
    assert set(ends) < set(names) and len(names) == len(ends) + len(FUSION_MODULES)
    added = [scopes[n.removesuffix("/WithoutBiases")] for n in set(names) - set(ends)]
    assert {m for scope in added for m in scope} >= set(FUSION_MODULES)
    assert not any(".GDG" in m for scope in added for m in scope)  # none inside the groups
    with pytest.raises(InputError, match="fusion"):  # a file without module names
        keep_float_names(model, "fusion", {})


def test_a_search_set_needs_the_search(tiny_sets, tmp_path):
    cal, val = tiny_sets
    options = Int8Options(cal, val, search_set=val, score=dataset_psnr_y)  # max_reverts 0
    with pytest.raises(InputError, match="--max-reverts N"):
        quantize_gated(tmp_path / "unused.onnx", 2, options, tmp_path / "stage")


def test_without_a_held_out_score_nothing_runs(tiny_sets, x2_weights, tmp_path):
    from overnet.export.int8 import export_openvino_int8

    cal, val = tiny_sets
    with pytest.raises(InputError, match="overnet.eval.dataset_psnr_y"):
        export_openvino_int8(x2_weights, tmp_path / "ir", Int8Options(cal, val))
    assert not (tmp_path / "ir").exists()


def test_the_command_refuses_a_gate_it_cannot_meet(tiny_sets, x2_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    cal, val = tiny_sets
    out = tmp_path / "int8"
    args = [
        "export", "--weights", str(x2_weights), "--format", "openvino", "--int8",
        "--calibration", str(cal), "--validation", str(val), "--max-drop", "0.0001",
        "--max-reverts", "0", "--calibration-crops", "8", "--crop-size", "24",
        "--no-validate", "-o", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "quality gate failed, nothing written" in result.output
    assert "exceeds the gate 0.0001 dB by" in result.output
    assert "upper bound of the mean drop" in result.output
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "cache" / "openvino-int8").exists()


def test_calibrating_on_the_gates_images_is_refused(set5, x2_weights, tmp_path):
    """The issue's first case: --calibration Set5/HR with the gate on Set5."""
    out = tmp_path / "int8"
    args = [
        "export", "--weights", str(x2_weights), "--format", "openvino", "--int8",
        "--calibration", str(set5 / "HR"), "--validation", str(set5), "--no-validate",
        "-o", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "calibration set has 0 image(s) left" in result.output
    assert "kept for validation only" in result.output
    assert not out.exists()


def test_a_passing_int8_ir_loads_and_is_registered(tiny_sets, x2_weights, tmp_path, monkeypatch):
    from overnet.export.int8 import export_openvino_int8

    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    cal, val = tiny_sets
    options = Int8Options(cal, val, max_drop=5.0, speed_size=(32, 24), **TINY)
    result, report = export_openvino_int8(x2_weights, tmp_path / "ir", options, validate=False)
    assert report.passed and report.quantizers > 0 and set(report.seconds) >= {"fp32", "int8"}
    # the defaults: plain INT8, keep "fusion" (ends and the body's four fusion convs), float
    # layers in fp32, no search set
    fusion = {"node_conv2d_19", "node_conv2d_38", "node_conv2d_57", "node_conv2d_58"}
    assert {"node_conv2d", "node_conv2d_61", *fusion} <= set(report.float_layers)
    assert report.precision_hint == "fp32" and not report.searched
    assert result.metadata["overnet.precision_hint"] == "fp32"
    assert "no search set (plain INT8)" in report.format()
    assert result.metadata["overnet.precision"] == "int8"
    assert float(result.metadata["overnet.int8_drop_upper_db"]) >= report.drop
    hashes = json.loads(result.metadata["overnet.int8_image_hashes"])
    assert [len(hashes[r]) for r in ("calibration", "search", "validation")] == [3, 0, 3]
    assert "warning: only 3 validation images" in report.format()
    x = np.random.default_rng(0).random((1, 3, 20, 20), dtype=np.float32)
    with open_session(result.xml, "openvino-int8") as session:
        assert session.info.precision == "int8"
        assert session.info.metadata["overnet.int8_drop_db"] == f"{report.drop:.4f}"
        assert any("INT8 model" in note for note in session.info.notes)
        direct = session.run(x)
    with open_session(x2_weights, "openvino-int8", scale=2) as session:  # the registered IR
        np.testing.assert_array_equal(session.run(x), direct)
    # the run-time guard: a Set5 picture stays in INT8, uniform noise runs in float (the
    # float twin beside the IR, in the file's hint), and the counts say so
    assert (result.xml.parent / "float" / "model.xml").is_file()
    picture = np.asarray(Image.open(tiny_sets[1] / sorted(os.listdir(tiny_sets[1]))[0]))
    natural = (picture[:32, :32].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    noise = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    with open_session(result.xml, "openvino-int8") as guarded:
        with open_session(result.xml, "openvino-int8", guard=False) as plain:
            np.testing.assert_array_equal(guarded.run(natural), plain.run(natural))
            assert guarded.counts.float_tiles == 0 and guarded.counts.tiles == 1
            out = guarded.run(noise)
            assert guarded.counts.float_tiles == 1 and guarded.counts.whole_float_images == 1
            assert not np.array_equal(out, plain.run(noise))
        assert any("INT8 guard" in note for note in guarded.info.notes)
        with open_session(result.xml.parent / "float" / "model.xml", "openvino") as twin:
            np.testing.assert_allclose(out, twin.run(noise), atol=0.02)
    # `overnet upscale` says how many tiles ran in float
    Image.fromarray((noise[0].transpose(1, 2, 0) * 255).astype(np.uint8)).save(tmp_path / "n.png")
    args = ["upscale", str(tmp_path / "n.png"), "-o", str(tmp_path / "up"), "--model",
            str(result.xml), "--backend", "openvino-int8"]  # fmt: skip
    upscaled = CliRunner().invoke(main, args)
    assert upscaled.exit_code == 0, upscaled.output
    assert "INT8 guard: 1 of 1 tiles ran in float (100%)" in upscaled.output


def test_int8_onnx_is_qdq_and_checked_in_onnxruntime(tiny_sets, x2_weights, tmp_path):
    import onnx

    from overnet.export.int8_onnx import export_onnx_int8

    cal, val = tiny_sets
    options = Int8Options(cal, val, max_drop=5.0, **TINY)
    path, _, ort_report = export_onnx_int8(
        x2_weights, tmp_path / "x2_int8.onnx", options, validate=False
    )
    proto = onnx.load(str(path))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert ort_report.runtime == "onnxruntime" and ort_report.passed
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["overnet.precision"] == "int8" and "overnet.int8_drop_db" in props
    with open_session(path, "onnxruntime") as session:
        assert session.info.precision == "int8"
        assert session.run(np.zeros((1, 3, 16, 16), np.float32)).shape == (1, 3, 32, 32)
