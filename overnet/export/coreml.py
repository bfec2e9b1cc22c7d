"""Export OverNet to Core ML (an ``.mlpackage`` ML program, for iOS and macOS apps).

Converted with coremltools from ``torch.export`` (a traced module fails on
``upsample_bicubic2d``) at a fixed input ``lr`` of 1 x 3 x tile_height x tile_width
(NCHW float32 RGB [0, 1]); output ``sr`` at the model's scale. Core ML computes in
float16 by default (the Neural Engine's precision; I/O stays float32), or float32 with
``precision="fp32"``. The metadata map (``overnet.formats.edge_metadata``) is the
model's user-defined metadata. Core ML predictions run on macOS only: elsewhere the
export checks the package's spec (``check_spec``: input, output, shapes, metadata) and
says it did not run the model.
"""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from overnet._atomic import replace_tree
from overnet._optional import require
from overnet.config import DEFAULT_OVERLAP
from overnet.errors import ExportError
from overnet.export.edge_common import (
    EdgeExportResult,
    FixedGraph,
    Timer,
    check_output_file,
    check_tile,
    fixed_graph,
    run_checks,
)
from overnet.formats.edge_metadata import EdgeMetadata, parse_edge_props
from overnet.formats.onnx_metadata import INPUT_NAME, OUTPUT_NAME

SUFFIX = ".mlpackage"
PRECISIONS = ("fp16", "fp32")
#: iOS 16 / macOS 13: the first targets whose ML programs take float16 compute with
#: float32 I/O as converted here
DEPLOYMENT_TARGET = "iOS16"


def convert(fixed: FixedGraph, precision: str) -> Any:
    """The graph as a coremltools MLModel (an ML program) with the metadata set."""
    ct = require("coremltools", "Core ML export", extra="coreml")
    import torch

    h, w = fixed.tile
    try:
        with torch.no_grad():
            exported = torch.export.export(fixed.graph, (fixed.example(),), strict=False)
        # coremltools 9 has no op for upsample_bicubic2d: the default decompositions turn
        # it into gathers it converts; pixel_shuffle stays whole (it converts natively,
        # its decomposition is a rank-6 reshape)
        table = torch.export.default_decompositions()
        table.pop(torch.ops.aten.pixel_shuffle.default, None)
        exported = exported.run_decompositions(table)
        model = ct.convert(
            exported,
            inputs=[ct.TensorType(name=INPUT_NAME, shape=(1, 3, h, w), dtype=np.float32)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            convert_to="mlprogram",
            compute_precision=(
                ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
            ),
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
            skip_model_load=platform.system() != "Darwin",  # loading needs macOS
        )
    except Exception as exc:  # the converter raises many types; keep its message
        raise ExportError(f"coremltools could not convert the graph: {exc}") from exc
    model.user_defined_metadata.update(fixed.metadata.props)
    model.short_description = (
        f"OverNet x{fixed.metadata.model.scale:g} super-resolution: lr 1x3x{h}x{w} float32 "
        "RGB [0, 1] (NCHW) -> sr"
    )
    return model


def check_spec(spec: Any, expected: EdgeMetadata | None = None) -> EdgeMetadata:
    """Check a Core ML model spec (``MLModel.get_spec()``): one input ``lr`` of 1 x 3 x
    tile float32, one output ``sr`` of 1 x 3 x (scale * tile) float32, an ML program, and
    overnet's metadata (equal to ``expected`` when given). Returns the metadata;
    ExportError saying what differs otherwise."""
    # coremltools adds its own keys (version, source): only overnet's are compared
    props = {k: v for k, v in spec.description.metadata.userDefined.items() if k[:8] == "overnet."}
    meta = parse_edge_props(props, "the Core ML package")
    problems = []
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"model type {spec.WhichOneof('Type')}, expected mlProgram")
    h, w = meta.tile
    s = int(meta.model.scale)
    for what, items, name, shape in (
        ("input", spec.description.input, INPUT_NAME, [1, 3, h, w]),
        ("output", spec.description.output, OUTPUT_NAME, [1, 3, s * h, s * w]),
    ):
        if [i.name for i in items] != [name]:
            problems.append(f"{what}s {[i.name for i in items]}, expected ['{name}']")
            continue
        array = items[0].type.multiArrayType
        if list(array.shape) != shape:
            problems.append(f"{what} shape {list(array.shape)}, expected {shape}")
        if array.dataType != array.FLOAT32:
            problems.append(f"{what} data type {array.dataType}, expected FLOAT32")
    if expected is not None and meta.props != expected.props:
        problems.append(f"metadata {meta.props}, expected {expected.props}")
    if problems:
        raise ExportError("the Core ML package is not what was asked: " + "; ".join(problems))
    return meta


def export_coreml(
    weights: str | Path,
    output: str | Path,
    *,
    scale: float | None = None,
    tile: int | tuple[int, int] | None = None,
    overlap: int = DEFAULT_OVERLAP,
    precision: str = "fp16",
    overwrite: bool = False,
    validate: bool = True,
) -> EdgeExportResult:
    """Export ``weights`` to the ``.mlpackage`` folder ``output`` for a fixed ``tile``
    ((height, width) or a side; default 128x128), computing in ``precision`` (fp16
    default). Its spec is checked everywhere; on macOS it is also run against PyTorch
    fp32 (>= 50 dB for fp16, max abs <= 1e-4 for fp32)."""
    if precision not in PRECISIONS:
        raise ExportError(f"Core ML precision must be fp16 or fp32, got {precision!r}")
    output = check_output_file(Path(output), SUFFIX, overwrite)
    fixed = fixed_graph(
        weights, scale=scale, tile=check_tile(tile), overlap=overlap, precision=precision,
        fmt="coreml",
    )  # fmt: skip
    with Timer() as timer:
        model = convert(fixed, precision)
    check_spec(model.get_spec(), fixed.metadata)
    checks, notes = [], []
    if validate and platform.system() == "Darwin":

        def predict(x: np.ndarray) -> np.ndarray:
            return model.predict({INPUT_NAME: x})[OUTPUT_NAME]

        checks = run_checks(fixed, predict, "Core ML package")
    else:
        notes.append(
            "the package was converted and its spec checked (input, output, shapes, "
            "metadata), not run: Core ML predicts on macOS only"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".overnet-coreml-") as tmp:
        staged = Path(tmp) / output.name
        model.save(str(staged))
        replace_tree(staged, output)  # --overwrite: the old package goes once the new is in
    size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
    return EdgeExportResult(
        output, "coreml", precision, fixed.metadata, timer.seconds, size, checks, notes
    )
