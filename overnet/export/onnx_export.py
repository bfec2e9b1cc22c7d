"""Export OverNet to ONNX (fp32 or fp16) with dynamic axes, metadata and validation."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from overnet._atomic import write_bytes_atomic
from overnet.errors import ExportError, InputError
from overnet.formats.onnx_metadata import DEFAULT_OPSET, ModelMetadata
from overnet.weights.onnx_build import MIN_OPSET, build_onnx, checkpoint_graph, node_counts

# the graph itself is built below the runtime (overnet.weights.onnx_build), which a
# runtime session uses to export a checkpoint it is handed; this module adds validation,
# slimming and the checked, atomic write of `overnet export`
__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "ExportError",
    "ExportResult",
    "build_onnx",
    "checkpoint_graph",
    "export_onnx",
    "node_counts",
]


@dataclass
class ExportResult:
    path: Path
    metadata: ModelMetadata
    node_counts: dict[str, int]
    validation: object | None = None  # ValidationReport when validated
    notes: list[str] = field(default_factory=list)


def export_onnx(
    weights: str | Path,
    output: str | Path,
    *,
    scale: float | None = None,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    static_shape: tuple[int, int] | None = None,
    overwrite: bool = False,
    validate: bool = True,
    slim: bool = True,
    sample_image: str | Path | None = None,
    overscale: bool = False,
    concat_free: bool = False,
) -> ExportResult:
    """Export ``weights`` to ``output`` (.onnx): input ``lr`` N x 3 x H x W float32 RGB
    [0, 1], output ``sr``. Written atomically, and only after validation passes.

    ``overscale``: the graph ends at the overscaled features (``sr`` is N x F x uH x uW,
    u = the model's upscale) and records the head that finishes them, so one file serves
    every scale in [1, u] at any image size (``overnet.runtime.overscale``).
    ``concat_free``: the dense blocks without Concat nodes (``overnet.model.concat_free``;
    the same function, validated against PyTorch like the exact graph)."""
    output = Path(output)
    _check_output(output, overwrite)
    if concat_free and overscale:
        raise InputError("--concat-free covers graphs that end in RGB, not --overscale ones")
    proto, model, metadata = checkpoint_graph(
        weights,
        scale=scale,
        fp16=fp16,
        opset=opset,
        dynamic_batch=dynamic_batch,
        static_shape=static_shape,
        overscale=overscale,
        concat_free=concat_free,
    )
    if concat_free:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "overnet.graph", "concat-free"
    notes: list[str] = []
    report = None
    if validate:
        from overnet.export.validate import validate_onnx

        report = validate_onnx(proto, model, sample_image=sample_image)
        if not report.passed:
            raise ExportError(f"validation failed, nothing written:\n{report.format()}")
        if slim:
            proto, note = _try_slim(proto, model, sample_image)
            notes.append(note)
    write_bytes_atomic(output, proto.SerializeToString())
    return ExportResult(output, metadata, node_counts(proto), report, notes)


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and output.is_dir():
        raise InputError(f"output {output} is a directory; give a file name ending in .onnx")
    if output.exists() and not overwrite:
        raise InputError(f"{output} exists; pass --overwrite to replace it")
    parent = output.parent if str(output.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"cannot write {output}: {parent} is a file, not a folder")
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise InputError(f"output folder {parent} is not writable")


def _try_slim(proto, model, sample_image):
    """Slim the graph with onnxslim when installed; keep the result only if it validates."""
    try:
        import onnxslim
    except ImportError:
        return proto, "onnxslim not installed: graph not slimmed (pip install onnxslim)"
    from overnet.export.validate import validate_onnx

    try:
        slimmed = onnxslim.slim(proto)
    except Exception as exc:  # a third-party optimiser failing must not fail the export
        return proto, f"onnxslim failed ({exc}); kept the unslimmed graph"
    if validate_onnx(slimmed, model, sample_image=sample_image).passed:
        return (
            slimmed,
            f"slimmed with onnxslim: {len(proto.graph.node)} -> {len(slimmed.graph.node)} nodes",
        )
    return proto, "onnxslim output failed validation; kept the unslimmed graph"
