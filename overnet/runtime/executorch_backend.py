"""ExecuTorch backend: a ``.pte`` program from `overnet export --format executorch` in
ExecuTorch's runtime (XNNPACK on the CPU), what Android and iOS apps embed.

The program takes one fixed 1 x 3 x tile_height x tile_width input; the session reports
that tile as its minimum and maximum size and a batch of 1, so ``Upscaler`` tiles every
image at it. Scale, precision and tile come from the program's ``overnet`` constant
method (``overnet.formats.edge_metadata``). ExecuTorch's Python runtime exchanges torch
tensors, so torch is imported when a session opens (never by this module).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError, ModelLoadError
from overnet.formats.edge_metadata import (
    METADATA_NAME,
    EdgeMetadata,
    parse_edge_json,
    parse_edge_props,
)
from overnet.runtime.base import Session, as_numpy, run_one_at_a_time
from overnet.runtime.litert_backend import check_request, edge_info
from overnet.runtime.model_source import ModelSource
from overnet.runtime.spec import BackendSpec, Variant


def _program(data: bytes, threads: int | None) -> Any:
    runtime = require("executorch.runtime", "the executorch backend", extra="executorch")
    from executorch.extension.pybindings import portable_lib

    # XNNPACK's threadpool is process-wide: the last session opened sets its size
    portable_lib._unsafe_reset_threadpool(threads or os.cpu_count() or 1)
    return runtime.Runtime.get().load_program(data)


def read_program_metadata(program: Any, source: str | Path) -> EdgeMetadata:
    """The ``overnet`` constant method of a loaded program (ModelLoadError when absent)."""
    if METADATA_NAME not in program.method_names:
        return parse_edge_props({}, source)  # not written by overnet
    (value,) = program.load_method(METADATA_NAME).execute([])
    return parse_edge_json(value.numpy().astype(np.uint8).tobytes(), source)


def program_runner(data: bytes, threads: int | None = None) -> ProgramRunner:
    """The .pte bytes loaded in ExecuTorch's runtime, ready to run."""
    return ProgramRunner(_program(data, threads))


class ProgramRunner:
    """``forward`` of a loaded program: ``runner(x)`` runs a 1 x 3 x H x W float32 input
    and returns the output, which the next call may overwrite (the export's check and
    the session both run programs with it). Holds the program, which must outlive its
    methods (a freed program crashes them)."""

    def __init__(self, program: Any) -> None:
        import torch

        self._torch, self._program = torch, program
        self._method = program.load_method("forward")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (out,) = self._method.execute([self._torch.from_numpy(np.ascontiguousarray(x, np.float32))])
        return out.numpy()


class ExecuTorchSession(Session):
    """A .pte program's ``forward`` method; runs a batch one tile at a time."""

    def __init__(
        self,
        path: Path,
        *,
        scale: float | None = None,
        precision: str | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            program = _program(path.read_bytes(), threads)
            self.meta = read_program_metadata(program, path)
            check_request(path, self.meta, scale, precision, "executorch")
            self._runner: ProgramRunner | None = ProgramRunner(program)
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"ExecuTorch could not load {path}: {exc}") from exc
        self.info = edge_info("executorch", path, self.meta, threads or os.cpu_count())

    def _run(self, batch: Any) -> np.ndarray:
        assert self._runner is not None  # _check_open ran
        return run_one_at_a_time(as_numpy(batch), self._runner)

    def close(self) -> None:
        self._runner = None
        super().close()


def _open(source: ModelSource, options: dict[str, Any]) -> ExecuTorchSession:
    device = options.pop("device", "cpu")
    if device != "cpu":
        raise InputError(f"the executorch backend runs on the CPU here, not {device}")
    if options.pop("overscale", None):
        raise InputError(
            "an ExecuTorch program ends in RGB at its scale; it has no overscale graph"
        )
    assert source.path is not None
    return ExecuTorchSession(source.path, **options)


BACKEND = BackendSpec(
    name="executorch",
    module="executorch",
    extra="executorch",
    loads=("executorch",),
    factory=_open,
    rank={"cpu": 0},  # the only backend that loads a .pte program
    also_needs=(("torch", "executorch"),),
    # peak-RSS growth per input pixel, opening the session and running a 128x128 x2 tile:
    # 30,911 B fp32, 39,494 B fp16 (benchmarks/edge_memory.py, results/edge-memory.txt)
    memory=(39_500, 0),
    variants=(Variant("executorch", summary="ExecuTorch (XNNPACK), fixed-tile .pte"),),
    summary=".pte programs from `overnet export --format executorch` (XNNPACK)",
)
