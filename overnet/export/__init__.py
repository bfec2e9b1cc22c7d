"""Export OverNet to ONNX (fp32/fp16), OpenVINO IR, TensorRT engines and Triton model
repositories."""

from overnet.export.onnx_export import DEFAULT_OPSET, ExportError, ExportResult, export_onnx
from overnet.formats.onnx_metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata

__all__ = [
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "ExportError",
    "ExportResult",
    "ModelMetadata",
    "export_onnx",
]
