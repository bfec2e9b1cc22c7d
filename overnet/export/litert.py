"""Export OverNet to LiteRT (``.tflite``, the format of Android's LiteRT / TFLite).

Converted with ``litert-torch`` (``pip install 'overnet[litert-export]'``) at a fixed
input of 1 x 3 x tile_height x tile_width (its converter refuses dynamic height and
width); the layout stays NCHW float32 RGB [0, 1] and the output is 1 x 3 x (scale *
tile) float32. fp16 stores the weights in float16 (ai-edge-quantizer's float cast; the
runtime computes in float32, or fp16 where the delegate can). The metadata map of
``overnet.formats.edge_metadata`` is a JSON buffer in the flatbuffer's ``metadata``
list named ``overnet`` (``overnet.runtime.litert_backend`` reads it back). Before
anything is written the file runs in ai-edge-litert's interpreter (XNNPACK) against
PyTorch fp32.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from overnet._optional import require
from overnet.config import DEFAULT_OVERLAP
from overnet.errors import ExportError
from overnet.export.edge_common import (
    EdgeExportResult,
    FixedGraph,
    export_file,
)
from overnet.formats.edge_metadata import METADATA_NAME

SUFFIX = ".tflite"


def with_metadata(model: bytes, metadata_json: str) -> bytes:
    """``model`` with an ``overnet`` metadata entry holding ``metadata_json`` (an existing
    one replaced)."""
    require("ai_edge_litert", "LiteRT export", extra="litert")
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.buffers = obj.buffers or []
    # the object API gives names as bytes
    obj.metadata = [m for m in (obj.metadata or []) if _name(m.name) != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_json.encode(), np.uint8)
    obj.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(obj.buffers) - 1
    obj.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def _name(name: bytes | str | None) -> str:
    return name.decode() if isinstance(name, bytes) else name or ""


def convert(fixed: FixedGraph, fp16: bool) -> bytes:
    """The graph as a .tflite flatbuffer (no overnet metadata yet)."""
    litert_torch = require("litert_torch", "LiteRT export", extra="litert-export")
    quant = None
    if fp16:
        from litert_torch.generative.quantize.quant_recipes import full_fp16_recipe

        quant = full_fp16_recipe()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        try:
            litert_torch.convert(fixed.graph, (fixed.example(),), quant_config=quant).export(
                str(path)
            )
        except Exception as exc:  # the converter raises many types; keep its message
            raise ExportError(f"litert-torch could not convert the graph: {exc}") from exc
        return path.read_bytes()


def _with_metadata(fixed: FixedGraph, fp16: bool) -> bytes:
    return with_metadata(convert(fixed, fp16), fixed.metadata.to_json())


def export_litert(
    weights: str | Path,
    output: str | Path,
    *,
    scale: float | None = None,
    tile: int | tuple[int, int] | None = None,
    overlap: int = DEFAULT_OVERLAP,
    fp16: bool = False,
    overwrite: bool = False,
    validate: bool = True,
) -> EdgeExportResult:
    """Export ``weights`` to the ``.tflite`` file ``output`` for a fixed ``tile``
    ((height, width) or a side; default 128x128): input 1 x 3 x tile float32 RGB [0, 1]
    NCHW, output at ``scale`` (default: the weights'). Checked against PyTorch fp32 in
    the LiteRT interpreter first (fp32: max abs <= 1e-4; fp16: >= 50 dB)."""
    return export_file(
        weights, output, "litert", SUFFIX, _with_metadata, _runner, "LiteRT file",
        scale=scale, tile=tile, overlap=overlap, fp16=fp16, overwrite=overwrite,
        validate=validate,
    )  # fmt: skip


def _runner(data: bytes) -> Callable[[np.ndarray], np.ndarray]:
    # the runtime, imported here: export may not import it at module level
    from overnet.runtime.litert_backend import interpreter_runner

    return interpreter_runner(data)
