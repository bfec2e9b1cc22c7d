"""ONNX export: numerics against PyTorch, metadata, fp16, sizes and bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from overnet.errors import InputError
from overnet.eval import discover, evaluate
from overnet.export import export_onnx
from overnet.formats.onnx_metadata import ModelMetadata
from overnet.weights import load_model
from tests.conftest import read_rgb, to_nchw

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, x2_weights, x3_weights):
    out = tmp_path_factory.mktemp("onnx")
    return {
        "x2": export_onnx(x2_weights, out / "x2.onnx"),
        "x3": export_onnx(x3_weights, out / "x3.onnx"),
        "x2_fp16": export_onnx(x2_weights, out / "x2_fp16.onnx", fp16=True),
    }


def _session(result):
    return ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", ["x2", "x3"])
def test_fp32_validation_passed_on_all_sizes(name, exported):
    report = exported[name].validation
    assert report.passed and not report.lint_problems
    shapes = {c.shape for c in report.comparisons}
    assert {(1, 3, 17, 23), (1, 3, 24, 41), (2, 3, 31, 20)} <= shapes
    assert max(c.max_abs for c in report.comparisons) <= 1e-4


@pytest.mark.parametrize("scale", [2, 3])
def test_fp32_matches_pytorch_on_set5(scale, exported, set5):
    from tests.conftest import shared_file

    model = load_model(shared_file("weights", f"OverNet_x{scale}.pth.tar"))
    session = _session(exported[f"x{scale}"])
    for lr in sorted((set5 / "LR_bicubic" / f"X{scale}").glob("*.png"))[:2]:
        x = to_nchw(read_rgb(lr))
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        assert np.abs(session.run(None, {"lr": x})[0] - ref).max() <= 1e-4


def test_graph_interface_and_metadata(exported, x2_weights):
    proto = onnx.load(str(exported["x2"].path))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("lr", "sr")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    assert (meta.scale, meta.upscale, meta.precision, meta.opset) == (2.0, 3, "fp32", 18)
    assert meta.color_order == "RGB" and meta.value_range == "0,1"
    from overnet.formats.digest import sha256_file

    assert meta.source_sha256 == sha256_file(x2_weights)
    ops = {n.op_type for n in proto.graph.node}
    assert "Resize" in ops and "DepthToSpace" in ops
    # Weight norm and the MeanShift convs are folded away: 62 convs remain.
    assert sum(n.op_type == "Conv" for n in proto.graph.node) == 62


def test_fp16_file_keeps_float32_io_and_resizes(exported):
    proto = onnx.load(str(exported["x2_fp16"].path))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    conv_weights = {n.input[1] for n in proto.graph.node if n.op_type == "Conv"}
    inits = {t.name: t.data_type for t in proto.graph.initializer}
    assert all(inits[w] == onnx.TensorProto.FLOAT16 for w in conv_weights if w in inits)
    assert exported["x2_fp16"].validation.passed


def test_fp16_on_set5_x2_psnr_and_eval(exported, x2_weights, set5):
    """FP16 through onnxruntime CPU vs FP32 PyTorch: output PSNR >= 50 dB, PSNR-Y within 0.02."""
    model = load_model(x2_weights)
    session = _session(exported["x2_fp16"])

    def fp16(x):
        return session.run(None, {"lr": x})[0]

    def fp32(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    for lr in sorted((set5 / "LR_bicubic" / "X2").glob("*.png")):
        x = to_nchw(read_rgb(lr))
        mse = float(np.mean((fp16(x).astype(np.float64) - fp32(x)) ** 2))
        assert 10 * np.log10(1 / mse) >= 50, lr.name
    dataset = discover(set5, 2)
    a = evaluate(dataset, fp16, progress=False).mean("psnr_y")
    b = evaluate(dataset, fp32, progress=False).mean("psnr_y")
    assert abs(a - b) <= 0.02


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 2, 3), (3, 3, 7, 5)])
def test_one_file_serves_tiny_inputs(shape, exported):
    y = _session(exported["x2"]).run(None, {"lr": np.random.rand(*shape).astype(np.float32)})[0]
    assert y.shape == (shape[0], 3, shape[2] * 2, shape[3] * 2) and np.isfinite(y).all()


@pytest.mark.slow
def test_one_file_serves_a_1080p_output(exported):
    # Input 960x540 -> output 1920x1080. A whole 1920x1080 *input* needs more than the
    # 24 GB of these machines (384-channel maps of 3.2 GB each; OOM-killed here):
    # such images go through the tiling runtime instead.
    ov = pytest.importorskip("openvino")
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(exported["x2"].path)), "CPU")
    for h, w in ((180, 320), (540, 960)):
        y = compiled(np.random.rand(1, 3, h, w).astype(np.float32))[0]
        assert y.shape == (1, 3, 2 * h, 2 * w) and np.isfinite(y).all()


def test_static_shape_export(tmp_path, x2_weights):
    result = export_onnx(
        x2_weights, tmp_path / "s.onnx", static_shape=(20, 30), dynamic_batch=False, validate=False
    )
    dims = [
        d.dim_value for d in onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    ]
    assert dims == [1, 3, 20, 30]


def test_wrong_scale_for_the_weights(tmp_path, x2_weights):
    with pytest.raises(InputError, match="between 1 and the model's upscale 3"):
        export_onnx(x2_weights, tmp_path / "a.onnx", scale=4)


def test_existing_output_is_refused_without_overwrite(tmp_path, x2_weights):
    target = tmp_path / "a.onnx"
    target.write_bytes(b"keep me")
    with pytest.raises(InputError, match="--overwrite"):
        export_onnx(x2_weights, target)
    assert target.read_bytes() == b"keep me"


def test_unwritable_output_folder(tmp_path, x2_weights):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        export_onnx(x2_weights, tmp_path / "file" / "a.onnx")


def test_unsupported_opset(tmp_path, x2_weights):
    with pytest.raises(InputError, match="opset 99 is not available"):
        export_onnx(x2_weights, tmp_path / "a.onnx", opset=99)


def test_interrupted_export_leaves_no_file(tmp_path, x2_weights, monkeypatch):
    import overnet._atomic as mod

    class InterruptedOs:
        """os for the atomic writer only, whose rename is interrupted (Ctrl-C)."""

        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def replace(*args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(mod, "os", InterruptedOs())
    with pytest.raises(KeyboardInterrupt):
        export_onnx(x2_weights, tmp_path / "a.onnx", validate=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scale", [2.5, 2.3])
def test_fractional_scale_export_validates_and_rounds_half_up(tmp_path, x2_weights, scale):
    # 17x23 at x2.5 is 42.5x57.5: the network rounds half up (43x58), so validation
    # must predict the same size instead of Python's round-half-even (42x58). At x2.3,
    # 25 px is 57.5 px: float32 (the ONNX graph) and float64 (PyTorch) products of 2.3
    # round to different sides unless the size is computed exactly.
    from overnet.config import output_size

    result = export_onnx(x2_weights, tmp_path / "frac.onnx", scale=scale, slim=False)
    assert result.path.exists() and result.validation.passed
    assert result.metadata.scale == scale
    session = _session(result)
    model = load_model(x2_weights)
    for h, w in ((5, 7), (17, 23), (1, 1), (25, 45), (15, 55)):
        x = np.random.rand(1, 3, h, w).astype(np.float32)
        y = session.run(None, {"lr": x})[0]
        with torch.no_grad():
            ref = model(torch.from_numpy(x), scale)
        assert y.shape[2:] == tuple(ref.shape[2:]) == output_size(h, w, scale), (h, w)


def test_exporters_write_through_the_shared_atomic_writer():
    # one-line renames of overnet._atomic.write_bytes_atomic were removed, not kept as aliases
    from overnet.export import onnx_export
    from overnet.export.tensorrt import build

    assert not hasattr(onnx_export, "_write_atomic")
    assert not hasattr(build, "write_atomic")
