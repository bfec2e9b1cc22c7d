"""Export OverNet to ONNX (fp32 or fp16) with dynamic axes, metadata and validation."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from overnet._atomic import write_bytes_atomic
from overnet._optional import require
from overnet._version import __version__
from overnet.errors import InputError, OverNetError
from overnet.formats.onnx_metadata import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, ModelMetadata
from overnet.formats.overscale_head import OVERSCALE_OUTPUT

MIN_OPSET = 17


class ExportError(OverNetError):
    """The export or its validation failed; nothing was written."""


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
) -> ExportResult:
    """Export ``weights`` to ``output`` (.onnx): input ``lr`` N x 3 x H x W float32 RGB
    [0, 1], output ``sr``. Written atomically, and only after validation passes.

    ``overscale``: the graph ends at the overscaled features (``sr`` is N x F x uH x uW,
    u = the model's upscale) and records the head that finishes them, so one file serves
    every scale in [1, u] at any image size (``overnet.runtime.overscale``)."""
    onnx = require("onnx", "ONNX export")
    from overnet.weights import load_weights

    output = Path(output)
    _check_output(output, overwrite)
    max_opset = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= max_opset:
        raise InputError(
            f"opset {opset} is not available: the installed onnx {onnx.__version__} and exporter "
            f"produce opsets {MIN_OPSET}..{max_opset} (default {DEFAULT_OPSET})"
        )
    if overscale and scale is not None:
        raise InputError(
            "an --overscale graph serves every scale of its model: give the scale when "
            "running it (overnet upscale --scale), not when exporting"
        )
    loaded = load_weights(weights, scale)
    model = loaded.build()
    head = ""
    if overscale:
        from overnet.model.overscale import overscale_head

        head = overscale_head(model).to_text()
    metadata = ModelMetadata(
        scale=float(loaded.config.upscale if overscale else loaded.config.scale),
        upscale=loaded.config.upscale,
        precision="fp16" if fp16 else "fp32",
        opset=opset,
        source_sha256=loaded.sha256,
        overnet_version=__version__,
        channels=loaded.config.channels,
        output=OVERSCALE_OUTPUT if overscale else "image",
        head=head,
    )
    proto = build_onnx(model, metadata, dynamic_batch=dynamic_batch, static_shape=static_shape)
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


def build_onnx(
    model,
    metadata: ModelMetadata,
    *,
    dynamic_batch: bool = True,
    static_shape: tuple[int, int] | None = None,
):
    """Trace the folded inference graph to an in-memory ONNX ModelProto."""
    onnx = require("onnx", "ONNX export")
    torch = require("torch", "ONNX export")
    from overnet.export.graph import InferenceGraph

    if metadata.overscale:
        graph = InferenceGraph(model, overscale=True).eval()
    else:
        graph = InferenceGraph(model, metadata.scale).eval()
    h, w = static_shape or (64, 64)
    example = torch.rand(2 if dynamic_batch else 1, 3, h, w)
    dims: dict[int, object] = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=4096)
    if static_shape is None:
        dims[2] = torch.export.Dim("height", min=1, max=16384)
        dims[3] = torch.export.Dim("width", min=1, max=16384)
    with tempfile.TemporaryDirectory() as tmp, _quiet_exporter():
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                graph,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=metadata.opset,
                dynamo=True,
                dynamic_shapes={"lr": dims} if dims else None,
                external_data=False,
                optimize=True,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; keep its message
            raise ExportError(f"torch.onnx.export failed at opset {metadata.opset}: {exc}") from exc
        proto = onnx.load(str(path))
    actual = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if actual != metadata.opset:
        raise ExportError(
            f"the installed exporter produced opset {actual}, not the requested {metadata.opset}; "
            f"choose --opset {actual} or newer"
        )
    _name_nodes(proto)
    if metadata.precision == "fp16":
        from overnet.export.fp16 import convert_to_fp16

        proto = convert_to_fp16(proto)
    del proto.metadata_props[:]
    for key, value in metadata.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "overnet", __version__
    onnx.checker.check_model(proto)
    return proto


def node_counts(proto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _name_nodes(proto) -> None:
    """Give every node a unique name (fp16 block lists and error messages use them)."""
    seen: set[str] = set()
    for i, node in enumerate(proto.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


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


class _quiet_exporter:
    """Silence the exporter's progress prints and warnings (they are not actionable)."""

    def __enter__(self):
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")
        self._level = logging.getLogger("torch").level
        logging.getLogger("torch").setLevel(logging.ERROR)
        import contextlib
        import io

        self._stdout = contextlib.redirect_stdout(io.StringIO())
        self._stdout.__enter__()
        return self

    def __exit__(self, *exc):
        self._stdout.__exit__(*exc)
        logging.getLogger("torch").setLevel(self._level)
        self._catch.__exit__(*exc)
        return False
