import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from overnet.export.trt_lint import lint_tensorrt  # noqa: E402


def _model(node, extra_inputs=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", [x, *extra_inputs], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_antialiased_resize_is_flagged():
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="r", mode="cubic", antialias=1)
    report = lint_tensorrt(_model(node))
    assert not report.passed and "antialias" in report.problems[0]


def test_unknown_op_and_float64_cast_are_flagged():
    assert (
        "not in the checked"
        in lint_tensorrt(
            _model(helper.make_node("Einsum", ["x"], ["y"], name="e", equation="ii"))
        ).problems[0]
    )
    cast = helper.make_node("Cast", ["x"], ["y"], name="c", to=TensorProto.DOUBLE)
    assert "float64" in lint_tensorrt(_model(cast)).problems[0]


def test_runtime_conv_weights_are_flagged():
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 3, 1, 1])
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    assert "not constant" in lint_tensorrt(_model(node, [w])).problems[0]


def test_plain_relu_passes():
    assert lint_tensorrt(_model(helper.make_node("Relu", ["x"], ["y"], name="r"))).passed
