"""An explicit Q/DQ INT8 ONNX for TensorRT from the same calibration as the INT8 IR.

The accuracy-aware search runs in OpenVINO (``overnet.export.int8.quantize_gated``, gate
included); the layers it left in float are left in float here too, with three more that
no INT8 engine should take in INT8: both bicubic Resizes, the input's mean subtraction
(quantising ``lr`` would quantise the bicubic skip path) and the final residual Add (it
would round the output to 8 bits). NNCF's ONNX backend inserts QuantizeLinear/
DequantizeLinear pairs; onnxruntime on CPU then checks the file on the held-out set
against the fp32 ONNX, under the same ``max_drop`` gate.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from overnet._optional import require
from overnet.export.int8 import (
    Int8Options,
    Int8Report,
    QualityGateError,
    check_score,
    gate_report,
    quantization_parameters,
    quantize_gated,
)
from overnet.export.int8_data import HeldOutScore, calibration_pairs
from overnet.export.int8_layers import int8_weights
from overnet.formats.onnx_metadata import INPUT_NAME

#: OpenVINO op types whose float/INT8 choice carries over to the ONNX node of that name
_CONVS = ("Convolution", "GroupConvolution")
_CARRIED = ("Multiply", "ReduceMean", "MatMul")


def float_nodes(ov_model: Any, proto: Any) -> list[str]:
    """ONNX node names to keep in float: what the OpenVINO search kept in float, the
    input's mean subtraction and the node that produces the output."""
    names = {node.name for node in proto.graph.node}
    kept = set()
    for op in ov_model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in _CONVS:
            quantized = int8_weights(op)
        elif kind in _CARRIED:
            inputs = op.input_values()
            quantized = any(i.get_node().get_type_name() == "FakeQuantize" for i in inputs)
        else:
            continue
        if not quantized:
            kept.add(op.get_friendly_name().removesuffix("/WithoutBiases"))
    output = proto.graph.output[0].name
    structural = [n.name for n in proto.graph.node if output in n.output]
    structural += [n.name for n in proto.graph.node if INPUT_NAME in n.input and n.op_type == "Sub"]
    return sorted((kept & names) | set(structural))


def quantize_onnx(proto: Any, pairs: list[Any], ignored: list[str]) -> Any:
    """Q/DQ INT8 ModelProto of ``proto`` calibrated on ``pairs`` (NNCF, ONNX backend)."""
    nncf = require("nncf", "INT8 quantisation", extra="int8")
    from overnet.export.int8 import _quiet_nncf

    dataset = nncf.Dataset(pairs, lambda pair: {INPUT_NAME: pair.lr})
    with _quiet_nncf():
        return nncf.quantize(
            proto,
            dataset,
            preset=nncf.QuantizationPreset.MIXED,
            target_device=nncf.TargetDevice.CPU,
            subset_size=len(pairs),
            ignored_scope=nncf.IgnoredScope(names=ignored, types=["Resize"], validate=False),
            advanced_parameters=quantization_parameters(),
        )


def ort_gate(
    fp32: Path, qdq: Path, scale: int, validation: Path, options: Int8Options, score: HeldOutScore
) -> Int8Report:
    """PSNR-Y per image (``score``) of the fp32 and Q/DQ ONNX in onnxruntime's CPU provider."""
    ort = require("onnxruntime", "checking the INT8 ONNX")
    scores = {}
    for name, path in (("fp32", fp32), ("int8", qdq)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        scores[name], label = score(
            lambda x, s=session: s.run(None, {INPUT_NAME: x})[0], validation, scale
        )
    return gate_report(
        label, scores["fp32"], scores["int8"], options.max_drop, "fp32", options, "onnxruntime"
    )


def export_onnx_int8(
    weights: str | Path,
    output: str | Path,
    options: Int8Options,
    *,
    scale: float | None = None,
    overwrite: bool = False,
    validate: bool = True,
) -> tuple[Path, Int8Report, Int8Report]:
    """Q/DQ INT8 ONNX of ``weights`` at ``output``; returns (path, OpenVINO report,
    onnxruntime report). QualityGateError (nothing written) when either gate fails."""
    onnx = require("onnx", "ONNX export")
    from overnet._atomic import write_bytes_atomic
    from overnet.export.onnx_export import _check_output, export_onnx

    score = check_score(options)
    output = Path(output)
    _check_output(output, overwrite)
    options = dataclasses.replace(options, speed_size=None)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        result = export_onnx(weights, fp32, scale=scale, validate=validate)
        s = int(result.metadata.scale)
        ov_model, props, ov_report = quantize_gated(fp32, s, options, Path(tmp) / "ir")
        proto = onnx.load(str(fp32))
        ignored = float_nodes(ov_model, proto)
        sets = ov_report.image_sets
        pairs = calibration_pairs(
            list(sets.calibration), s, options.crops, options.crop_size, options.seed
        )
        quantized = quantize_onnx(proto, pairs, ignored)
        qdq = Path(tmp) / "int8.onnx"
        onnx.save(quantized, str(qdq))
        report = ort_gate(fp32, qdq, s, sets.validation_folder, options, score)
        report.quantizers = sum(n.op_type == "QuantizeLinear" for n in quantized.graph.node)
        report.float_layers, report.calibration = ignored, ov_report.calibration
        report.sets, report.hashes = ov_report.sets, ov_report.hashes
        report.calibration += " (float layers from the OpenVINO search above)"
        if not report.passed:
            raise QualityGateError(report)
        props = {**props, **report.props(), "overnet.precision_hint": "fp32"}
        del quantized.metadata_props[:]
        for key, value in props.items():
            entry = quantized.metadata_props.add()
            entry.key, entry.value = key, value
        write_bytes_atomic(output, quantized.SerializeToString())
    return output, ov_report, report
