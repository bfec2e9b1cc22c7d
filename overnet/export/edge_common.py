"""What the fixed-tile edge exports (LiteRT, ExecuTorch, Core ML) share.

Each converts the folded inference graph (``overnet.model.graph``) at one input shape,
1 x 3 x tile_height x tile_width: phone runtimes and XNNPACK plan memory for a fixed
shape, and overnet's runtime tiles any image with it (blended seams, the same plan as
every other backend). The file carries ``overnet.formats.edge_metadata``'s string map.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overnet._atomic import write_bytes_atomic
from overnet._version import __version__
from overnet.errors import ExportError, InputError
from overnet.export.validate import sample_pattern
from overnet.formats.edge_metadata import EdgeMetadata, edge_props, parse_edge_props
from overnet.formats.onnx_metadata import ModelMetadata
from overnet.metrics.quality import psnr

#: the default tile, input pixels: a 128x128 x2 tile needs about 0.2 GB of working
#: memory (what a phone app can hold) and keeps the overlap's recomputation at 1.3x
DEFAULT_TILE = (128, 128)
#: the checks against PyTorch fp32: max abs for fp32 files, PSNR for fp16 ones
FP32_MAX_ABS = 1e-4
FP16_MIN_PSNR = 50.0


@dataclass
class EdgeExportResult:
    """What an edge export wrote and how its check against PyTorch went."""

    path: Path
    format: str
    precision: str
    metadata: EdgeMetadata
    convert_s: float
    size_bytes: int
    #: (input name, max abs, PSNR dB) of the checks against PyTorch fp32; empty when the
    #: file was not run (Core ML off macOS, --no-validate)
    checks: list[tuple[str, float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def format_checks(self) -> str:
        if not self.checks:
            return "not run here (no check against PyTorch)"
        return "; ".join(
            f"{name}: max abs {max_abs:.1e}, {psnr:.1f} dB" for name, max_abs, psnr in self.checks
        )

    def summary(self) -> str:
        tile = self.metadata.tile
        return (
            f"wrote {self.path} ({self.format}, {self.precision}, x{self.metadata.model.scale:g}, "
            f"tile {tile[1]}x{tile[0]} (WxH), {self.size_bytes / 1e6:.1f} MB, converted in "
            f"{self.convert_s:.0f} s); vs PyTorch fp32: {self.format_checks()}"
        )


def check_tile(tile: int | tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) of the fixed input; an int is a square side."""
    if tile is None:
        return DEFAULT_TILE
    h, w = (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
    if min(h, w) < 8 or max(h, w) > 2048:
        raise InputError(
            f"the edge exports take a fixed tile between 8 and 2048 input pixels a side, got "
            f"{w}x{h} (WxH); {DEFAULT_TILE[1]}x{DEFAULT_TILE[0]} is the default"
        )
    return h, w


def check_output_file(output: Path, suffix: str, overwrite: bool) -> Path:
    """The file to write: refuse a folder, a wrong suffix, or an existing file."""
    output = Path(output)
    if output.suffix.lower() != suffix:
        raise InputError(f"output {output} should end in {suffix}")
    if output.is_dir() and suffix != ".mlpackage":
        raise InputError(f"output {output} is a folder; give a {suffix} file name")
    if output.exists() and not overwrite:
        raise InputError(f"{output} exists; pass --overwrite to replace it")
    return output


@dataclass
class FixedGraph:
    """The torch inference graph of a checkpoint at one scale, and what goes in the file."""

    graph: Any  # overnet.model.graph.InferenceGraph, eval mode
    metadata: EdgeMetadata

    @property
    def tile(self) -> tuple[int, int]:
        return self.metadata.tile

    def example(self) -> Any:
        """A 1 x 3 x tile_h x tile_w float32 torch input (what converters trace with)."""
        import torch

        h, w = self.tile
        return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))

    def reference(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.graph(torch.from_numpy(x)).numpy()


def fixed_graph(
    weights: str | Path,
    *,
    scale: float | None,
    tile: tuple[int, int],
    overlap: int,
    precision: str,
    fmt: str,
) -> FixedGraph:
    """Load ``weights`` and fold its inference graph; its metadata for ``fmt``."""
    from overnet.model.graph import InferenceGraph
    from overnet.weights.api import load_weights

    loaded = load_weights(weights, scale)
    if not float(loaded.config.scale).is_integer():
        raise InputError(
            f"the {fmt} export runs tiles at an integer scale (its tiles are blended on the "
            f"output grid); x{loaded.config.scale:g} is fractional: export x"
            f"{loaded.config.upscale} and resize, or use the ONNX/OpenVINO exports"
        )
    if overlap < 0 or overlap >= min(tile) // 2:
        raise InputError(f"overlap must be in [0, {min(tile) // 2}) for a {tile} tile")
    graph = InferenceGraph(loaded.build()).eval()
    model = ModelMetadata(
        scale=float(loaded.config.scale),
        upscale=loaded.config.upscale,
        precision=precision,
        opset=0,  # not an ONNX file: no opset
        source_sha256=loaded.sha256,
        overnet_version=__version__,
        channels=loaded.config.channels,
        min_size=min(tile),
    )
    props = edge_props(model, tile, overlap, fmt)
    return FixedGraph(graph, parse_edge_props(props, f"the {fmt} export"))


def check_inputs(tile: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    """What an export is checked on: a random tile and the built-in pattern (edges,
    gradients, texture) at the tile's shape."""
    h, w = tile
    rng = np.random.default_rng(0)
    return [
        ("random", rng.random((1, 3, h, w), dtype=np.float32)),
        ("pattern", np.ascontiguousarray(sample_pattern(h, w))),
    ]


def run_checks(
    fixed: FixedGraph, run: Callable[[np.ndarray], np.ndarray], what: str
) -> list[tuple[str, float, float]]:
    """Compare ``run`` (the converted file) with PyTorch fp32 on ``check_inputs``;
    ExportError, nothing written, when an fp32 file differs by more than FP32_MAX_ABS
    or an fp16 one is below FP16_MIN_PSNR."""
    checks = []
    fp32 = fixed.metadata.model.precision == "fp32"
    for name, x in check_inputs(fixed.tile):
        expected = fixed.reference(x)
        got = np.asarray(run(x), dtype=np.float32)
        if got.shape != expected.shape:
            raise ExportError(
                f"the {what} gives shape {got.shape} for {x.shape}, expected {expected.shape}"
            )
        max_abs = float(np.max(np.abs(got - expected)))
        quality = psnr(np.clip(got, 0, 1), np.clip(expected, 0, 1), peak=1.0)
        if (fp32 and not max_abs <= FP32_MAX_ABS) or (not fp32 and quality < FP16_MIN_PSNR):
            bound = f"max abs {FP32_MAX_ABS:g}" if fp32 else f"PSNR {FP16_MIN_PSNR:g} dB"
            raise ExportError(
                f"the {what} differs from PyTorch on the {name} input (max abs {max_abs:.2e}, "
                f"{quality:.1f} dB; bound {bound}); nothing written"
            )
        checks.append((name, max_abs, quality))
    return checks


class Timer:
    """Seconds spent in a ``with`` block (``seconds``)."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def export_file(
    weights: str | Path,
    output: str | Path,
    fmt: str,
    suffix: str,
    convert: Callable[[FixedGraph, bool], bytes],
    runner: Callable[[bytes], Callable[[np.ndarray], np.ndarray]],
    what: str,
    *,
    scale: float | None,
    tile: int | tuple[int, int] | None,
    overlap: int,
    fp16: bool,
    overwrite: bool,
    validate: bool,
) -> EdgeExportResult:
    """One single-file edge export: the fixed graph, ``convert`` (timed) to the file's
    bytes, the checks of ``runner(bytes)`` against PyTorch (``run_checks``), then the
    file written atomically; nothing is written when a check fails."""
    output = check_output_file(Path(output), suffix, overwrite)
    precision = "fp16" if fp16 else "fp32"
    fixed = fixed_graph(
        weights, scale=scale, tile=check_tile(tile), overlap=overlap, precision=precision,
        fmt=fmt,
    )  # fmt: skip
    with Timer() as timer:
        data = convert(fixed, fp16)
    checks = run_checks(fixed, runner(data), what) if validate else []
    write_bytes_atomic(output, data)
    size = len(data)
    return EdgeExportResult(output, fmt, precision, fixed.metadata, timer.seconds, size, checks)
