"""LiteRT backend: a ``.tflite`` file from `overnet export --format litert` in
ai-edge-litert's interpreter (XNNPACK on the CPU), the runtime Android apps ship.

The file takes one fixed 1 x 3 x tile_height x tile_width input, so the session reports
that tile as both its minimum and maximum size and a batch of 1: ``Upscaler`` tiles
every image at the file's shape (mirror-padding inputs smaller than it), as it does
within a TensorRT profile. Scale, precision and tile come from the ``overnet`` metadata
inside the file (``overnet.formats.edge_metadata``); no converter is imported here.
"""

from __future__ import annotations

import math
import os
import struct
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
from overnet.runtime.base import Session, SessionInfo, as_numpy, run_one_at_a_time
from overnet.runtime.model_source import ModelSource
from overnet.runtime.spec import BackendSpec, Variant


def read_litert_metadata(data: bytes, source: str | Path) -> EdgeMetadata:
    """The ``overnet`` metadata of a .tflite flatbuffer (ModelLoadError when absent)."""
    require("ai_edge_litert", "the litert backend", extra="litert")
    from ai_edge_litert import schema_py_generated as schema

    if data[4:8] != b"TFL3":  # the flatbuffer's file identifier
        raise ModelLoadError(f"{source} is not a .tflite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if (entry.Name() or b"").decode() != METADATA_NAME:
                continue
            buffer = model.Buffers(entry.Buffer())
            if buffer.DataLength():
                return parse_edge_json(buffer.DataAsNumpy().tobytes(), source)
            start = buffer.Offset()  # large models keep buffers after the flatbuffer
            return parse_edge_json(data[start : start + buffer.Size()], source)
    except (IndexError, ValueError, AttributeError, UnicodeDecodeError, struct.error) as exc:
        raise ModelLoadError(f"{source} is not a readable .tflite file ({exc})") from None

    return parse_edge_props({}, source)  # no entry: not written by overnet


def _interpreter(data: bytes, threads: int | None) -> Any:
    litert = require("ai_edge_litert.interpreter", "the litert backend", extra="litert")
    interpreter = litert.Interpreter(model_content=data, num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    return interpreter


class InterpreterRunner:
    """One loaded .tflite file: ``runner(x)`` runs a 1 x 3 x H x W float32 input and
    returns the output (the export's check and the session both run files with it)."""

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        self.input_shape = tuple(int(v) for v in interpreter.get_input_details()[0]["shape"])
        self._in = interpreter.get_input_details()[0]["index"]
        self._out = interpreter.get_output_details()[0]["index"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in, np.ascontiguousarray(x, dtype=np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out)


def interpreter_runner(data: bytes, threads: int | None = None) -> InterpreterRunner:
    """The .tflite bytes loaded in LiteRT's interpreter (XNNPACK), ready to run."""
    return InterpreterRunner(_interpreter(data, threads))


class LiteRTSession(Session):
    """A .tflite file in the LiteRT interpreter; runs a batch one tile at a time."""

    def __init__(
        self,
        path: Path,
        *,
        scale: float | None = None,
        precision: str | None = None,
        threads: int | None = None,
    ) -> None:
        data = path.read_bytes()
        self.meta = read_litert_metadata(data, path)
        check_request(path, self.meta, scale, precision, "litert")
        try:
            self._runner: InterpreterRunner | None = interpreter_runner(data, threads)
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"LiteRT could not load {path}: {exc}") from exc
        shape = self._runner.input_shape
        if shape != (1, 3, *self.meta.tile):
            raise ModelLoadError(
                f"{path} takes {shape}, but its metadata says 1x3x{self.meta.tile[0]}x"
                f"{self.meta.tile[1]}; re-export it with `overnet export --format litert`"
            )
        self.info = edge_info("litert", path, self.meta, threads or os.cpu_count())

    def _run(self, batch: Any) -> np.ndarray:
        assert self._runner is not None  # _check_open ran
        return run_one_at_a_time(as_numpy(batch), self._runner)

    def close(self) -> None:
        self._runner = None
        super().close()


def check_request(
    path: Path, meta: EdgeMetadata, scale: float | None, precision: str | None, backend: str
) -> None:
    """Refuse a scale or precision other than the file's (InputError naming the export)."""
    model = meta.model
    if scale is not None and not math.isclose(float(scale), model.scale):
        raise InputError(
            f"{path} was exported for x{model.scale:g}, not x{scale:g}; export that scale "
            f"(`overnet export --format {backend} --scale {scale:g}`)"
        )
    if precision is not None and precision != model.precision:
        flag = " --fp16" if precision == "fp16" else ""
        raise InputError(
            f"{path} holds {model.precision} weights and runs in that precision; for "
            f"{precision} export `overnet export --format {backend}{flag}`"
        )


def edge_info(backend: str, path: Path, meta: EdgeMetadata, threads: int | None) -> SessionInfo:
    """SessionInfo of a fixed-tile file: the tile is its only input size, batch 1."""
    return SessionInfo(
        backend=backend,
        device="CPU",
        precision=meta.model.precision,
        scale=meta.model.scale,
        upscale=meta.model.upscale,
        model=str(path),
        threads=threads,
        min_hw=meta.tile,
        max_hw=meta.tile,
        max_batch=1,
        metadata=dict(meta.props),
        notes=[f"fixed tile {meta.tile[1]}x{meta.tile[0]} (WxH): images are tiled at it"],
    )


def _open(source: ModelSource, options: dict[str, Any]) -> LiteRTSession:
    device = options.pop("device", "cpu")
    if device != "cpu":
        raise InputError(f"the litert backend runs on the CPU here, not {device}")
    if options.pop("overscale", None):
        raise InputError("a LiteRT file ends in RGB at its scale; it has no overscale graph")
    assert source.path is not None
    return LiteRTSession(source.path, **options)


BACKEND = BackendSpec(
    name="litert",
    module="ai_edge_litert",
    extra="litert",
    loads=("litert",),
    factory=_open,
    rank={"cpu": 0},  # the only backend that loads a .tflite file
    # peak-RSS growth per input pixel, opening the session and running a 128x128 x2 tile:
    # 27,995 B fp32, 27,871 B fp16 (benchmarks/edge_memory.py, results/edge-memory.txt)
    memory=(28_000, 0),
    variants=(Variant("litert", summary="LiteRT interpreter (XNNPACK), fixed-tile .tflite"),),
    summary=".tflite files from `overnet export --format litert` (ai-edge-litert, XNNPACK)",
)
