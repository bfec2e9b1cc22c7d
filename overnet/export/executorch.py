"""Export OverNet to an ExecuTorch program (``.pte``) lowered to XNNPACK.

``torch.export`` of the folded graph at a fixed 1 x 3 x tile_height x tile_width input
(NCHW float32 RGB [0, 1]), lowered with the XNNPACK partitioner (the convolutions,
pixel shuffle and adds; the bicubic resize runs in ExecuTorch's portable kernels).
A dynamic height/width range would make ExecuTorch reserve the memory of its largest
size up front (a 1024x1024 bound was killed at ~23 GB here), so the program takes one
tile and the runtime tiles every image with it. fp16 runs the network in float16 with
float32 I/O (casts at both ends). The metadata map (``overnet.formats.edge_metadata``)
is the program's constant method ``overnet`` (its JSON as a uint8 tensor), read back
without running the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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

SUFFIX = ".pte"


def _half_graph(graph: Any) -> Any:
    """``graph`` computing in float16 between a float32 input and output."""
    import copy

    import torch

    class HalfGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = copy.deepcopy(graph).half()

        def forward(self, lr: torch.Tensor) -> torch.Tensor:
            return self.inner(lr.half()).float()

    return HalfGraph().eval()


def convert(fixed: FixedGraph, fp16: bool) -> bytes:
    """The graph as an XNNPACK-lowered .pte program with the metadata method."""
    require("executorch", "ExecuTorch export", extra="executorch")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    graph = _half_graph(fixed.graph) if fp16 else fixed.graph
    metadata = torch.from_numpy(np.frombuffer(fixed.metadata.to_json().encode(), np.uint8).copy())
    try:
        with torch.no_grad():
            exported = torch.export.export(graph, (fixed.example(),), strict=False)
        edge = to_edge_transform_and_lower(
            exported,
            partitioner=[XnnpackPartitioner()],
            constant_methods={METADATA_NAME: metadata},
        )
        return bytes(edge.to_executorch().buffer)
    except Exception as exc:  # the exporter and lowering raise many types
        raise ExportError(f"ExecuTorch could not export the graph: {exc}") from exc


def export_executorch(
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
    """Export ``weights`` to the ``.pte`` program ``output`` for a fixed ``tile``
    ((height, width) or a side; default 128x128): input 1 x 3 x tile float32 RGB [0, 1]
    NCHW, output at ``scale`` (default: the weights'). Run in ExecuTorch's runtime
    against PyTorch fp32 first (fp32: max abs <= 1e-4; fp16: >= 50 dB)."""
    return export_file(
        weights, output, "executorch", SUFFIX, convert, _runner, "ExecuTorch program",
        scale=scale, tile=tile, overlap=overlap, fp16=fp16, overwrite=overwrite,
        validate=validate,
    )  # fmt: skip


def _runner(data: bytes) -> Callable[[np.ndarray], np.ndarray]:
    # the runtime, imported here: export may not import it at module level
    from overnet.runtime.executorch_backend import program_runner

    return program_runner(data)
