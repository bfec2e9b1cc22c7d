"""Static check that an ONNX graph stays within what TensorRT's ONNX parser imports.

Checked (TensorRT 10.x/11.x parser): every op is in the supported list below; no
float64/complex/string tensors (TensorRT has none); Resize mode nearest/linear/cubic
with a supported coordinate transform, ``antialias`` 0 and ``keep_aspect_ratio_policy``
stretch; DepthToSpace mode DCR/CRD; Conv weights are initializers (constant);
ReduceMean axes constant; dynamic dims only on batch/height/width of the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Ops this project's graphs use that the TensorRT ONNX parser imports (10.x and 11.x).
TRT_SUPPORTED_OPS = frozenset(
    {
        "Add",
        "Cast",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "DepthToSpace",
        "Div",
        "Expand",
        "Floor",
        "Ceil",
        "Gather",
        "GlobalAveragePool",
        "Identity",
        "Mul",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Resize",
        "Shape",
        "Sigmoid",
        "Split",
        "Slice",
        "Squeeze",
        "Sub",
        "Unsqueeze",
        "Round",
        "Clip",
        "Max",
        "Min",
    }
)
_RESIZE_MODES = {"nearest", "linear", "cubic"}
_RESIZE_TRANSFORMS = {
    "half_pixel",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
}
_UNSUPPORTED_DTYPES = {11: "float64", 14: "complex64", 15: "complex128", 8: "string"}


@dataclass
class LintReport:
    problems: list[str] = field(default_factory=list)
    checked_nodes: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def lint_tensorrt(proto) -> LintReport:
    """Lint ``proto`` (an onnx ModelProto) for TensorRT's ONNX parser."""
    report = LintReport(checked_nodes=len(proto.graph.node))
    constants = {t.name for t in proto.graph.initializer}
    constants |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    for node in proto.graph.node:
        where = f"node '{node.name}' ({node.op_type})"
        if node.domain not in ("", "ai.onnx"):
            report.problems.append(f"{where}: custom domain '{node.domain}' needs a plugin")
            continue
        if node.op_type not in TRT_SUPPORTED_OPS:
            report.problems.append(f"{where}: op not in the checked TensorRT parser list")
        if node.op_type == "Resize":
            mode = _attr(node, "mode", "nearest")
            transform = _attr(node, "coordinate_transformation_mode", "half_pixel")
            if mode not in _RESIZE_MODES:
                report.problems.append(f"{where}: mode '{mode}' unsupported")
            if transform not in _RESIZE_TRANSFORMS:
                report.problems.append(f"{where}: coordinate transform '{transform}' unsupported")
            if _attr(node, "antialias", 0):
                report.problems.append(f"{where}: antialias=1 is not supported by TensorRT")
            if _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
                report.problems.append(f"{where}: keep_aspect_ratio_policy must be 'stretch'")
        elif node.op_type == "DepthToSpace" and _attr(node, "mode", "DCR") not in ("DCR", "CRD"):
            report.problems.append(f"{where}: unknown DepthToSpace mode")
        elif node.op_type == "Conv" and len(node.input) > 1 and node.input[1] not in constants:
            report.problems.append(f"{where}: weights are computed at run time, not constant")
        elif (
            node.op_type == "ReduceMean" and len(node.input) > 1 and node.input[1] not in constants
        ):
            report.problems.append(f"{where}: ReduceMean axes must be constant")
        elif node.op_type == "Cast" and _attr(node, "to") in _UNSUPPORTED_DTYPES:
            report.problems.append(f"{where}: casts to {_UNSUPPORTED_DTYPES[_attr(node, 'to')]}")
    for tensor in list(proto.graph.initializer):
        if tensor.data_type in _UNSUPPORTED_DTYPES:
            report.problems.append(
                f"initializer '{tensor.name}' is {_UNSUPPORTED_DTYPES[tensor.data_type]}"
            )
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.type.tensor_type.elem_type in _UNSUPPORTED_DTYPES:
            report.problems.append(f"graph I/O '{value.name}' has an unsupported type")
    return report
