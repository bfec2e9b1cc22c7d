"""FP32 -> FP16 ONNX conversion for strongly typed TensorRT builds (onnx + onnxconverter-common).

Weights and activations become float16; inputs and outputs stay float32. Kept in
float32: both bicubic Resizes (TensorRT's cubic border behaviour is only checked
in fp32), the final residual Add (the output's precision), and the global average
pools (ReduceMean / GlobalAveragePool), whose sums over a 1080p map would lose
precision in float16. Shape arithmetic is int64 and untouched.
"""

from __future__ import annotations

from overnet._optional import require
from overnet.formats.onnx_metadata import OUTPUT_NAME

FP32_OPS = ("Resize", "ReduceMean", "GlobalAveragePool")


def convert_to_fp16(proto):
    """Return a float16 copy of an fp32 ModelProto with float32 I/O."""
    float16 = require("onnxconverter_common.float16", "FP16 export")
    final = [n.name for n in proto.graph.node if OUTPUT_NAME in n.output]
    # Passing op_block_list replaces the library's default list, so extend it.
    block_ops = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(FP32_OPS))
    converted = float16.convert_float_to_float16(
        proto,
        keep_io_types=True,
        op_block_list=block_ops,
        node_block_list=final,
        disable_shape_infer=False,
    )
    _tidy_casts(converted)
    return converted


def _tidy_casts(proto) -> None:
    """Undo two converter artefacts: Casts that only feed Shape (a full-size cast
    for nothing), and a float16 Cast after the float32 final Add that would turn
    the float32 output into float16."""
    onnx = require("onnx", "FP16 export")
    nodes = proto.graph.node
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    drop = []
    for node in nodes:
        if node.op_type != "Cast":
            continue
        users = consumers.get(node.output[0], [])
        if users and all(u.op_type == "Shape" for u in users):
            for user in users:
                user.input[0] = node.input[0]
            drop.append(node)
        elif node.output[0] == OUTPUT_NAME:
            producer = next(n for n in nodes if node.input[0] in n.output)
            if producer.op_type == "Add":  # the float32 final residual add
                producer.output[list(producer.output).index(node.input[0])] = OUTPUT_NAME
                drop.append(node)
    for node in drop:
        nodes.remove(node)
    for output in proto.graph.output:
        if output.name == OUTPUT_NAME:
            output.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
