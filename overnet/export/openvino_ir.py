"""Export OverNet to OpenVINO IR: ``model.xml`` + ``model.bin`` with overnet's metadata.

The IR is converted from the validated fp32 ONNX export (``openvino.convert_model``) and
keeps fp32 weights. Overnet's ``overnet.*`` metadata goes into the IR's ``rt_info`` under
"overnet" (keys without the prefix), which the openvino backend reads without OpenVINO
(``overnet.formats.ir_metadata.read_ir_metadata``). The precision hint
(``overnet.precision_hint``: fp32 or bf16) is what that backend computes in when the
caller names no precision: OpenVINO's CPU plugin does not apply an
``INFERENCE_PRECISION_HINT`` stored in ``rt_info`` itself (checked with 2026.4).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError
from overnet.export.onnx_export import ExportError, export_onnx

#: file names inside the output folder
IR_XML, IR_BIN = "model.xml", "model.bin"
#: precisions the IR may ask its runtime to compute in
PRECISION_HINTS = ("fp32", "bf16", "fp16")
#: fp32 IR vs its ONNX source in OpenVINO f32 (the same graph: only kernel rounding)
IR_MAX_ABS = 1e-4


@dataclass
class IrExportResult:
    xml: Path
    bin: Path
    metadata: dict[str, str]  # the overnet.* keys written into rt_info
    max_abs_vs_onnx: float | None = None
    notes: list[str] = field(default_factory=list)


def check_ir_output(outdir: Path, overwrite: bool) -> None:
    """Refuse an output folder that is a file, or holds an IR without ``overwrite``."""
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"output {outdir} is a file; --format openvino writes a folder")
    existing = [outdir / n for n in (IR_XML, IR_BIN) if (outdir / n).exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace it")


def onnx_props(onnx_path: Path) -> dict[str, str]:
    """The ``overnet.*`` metadata of an ONNX file written by ``export_onnx``."""
    from overnet.formats.onnx_metadata import read_onnx_metadata

    return {k: v for k, v in read_onnx_metadata(onnx_path).items() if k.startswith("overnet.")}


def save_ir(model: Any, outdir: Path, props: dict[str, str]) -> tuple[Path, Path]:
    """Write ``model`` (openvino.Model) as ``outdir/model.xml`` + ``model.bin`` with
    ``props`` in rt_info; both files appear together (written aside, then renamed)."""
    ov = require("openvino", "OpenVINO IR export")
    from overnet.formats.ir_metadata import IR_METADATA_SECTION

    for key, value in props.items():
        model.set_rt_info(str(value), [IR_METADATA_SECTION, key.removeprefix("overnet.")])
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".overnet-ir-") as tmp:
        ov.save_model(model, str(Path(tmp) / IR_XML), compress_to_fp16=False)
        # .bin first: a reader that finds the new .xml finds its weights
        (Path(tmp) / IR_BIN).replace(outdir / IR_BIN)
        (Path(tmp) / IR_XML).replace(outdir / IR_XML)
    return outdir / IR_XML, outdir / IR_BIN


def compare_ir(xml: Path, onnx_path: Path, shape: tuple[int, ...] = (1, 3, 24, 31)) -> float:
    """Max abs difference between the IR and its ONNX source, both in OpenVINO f32."""
    ov = require("openvino", "OpenVINO IR export")
    core = ov.Core()
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    outs = [np.asarray(core.compile_model(str(p), "CPU", config)(x)[0]) for p in (xml, onnx_path)]
    return float(np.max(np.abs(outs[0] - outs[1])))


def export_openvino(
    weights: str | Path,
    outdir: str | Path,
    *,
    scale: float | None = None,
    precision_hint: str = "fp32",
    overwrite: bool = False,
    validate: bool = True,
    sample_image: str | Path | None = None,
    overscale: bool = False,
) -> IrExportResult:
    """Export ``weights`` to ``outdir/model.xml`` + ``model.bin`` (fp32 weights; input
    ``lr`` N x 3 x H x W float32 RGB [0, 1], output ``sr``), after the ONNX export's own
    validation and a check of the IR against that ONNX (max abs <= IR_MAX_ABS).

    ``overscale``: from the ``--overscale`` ONNX (``sr``: the overscaled features); its
    ``overnet.*`` metadata, the head included, goes into rt_info, so the IR serves every
    scale in [1, upscale] (``scale`` must then be None)."""
    ov = require("openvino", "OpenVINO IR export")
    if precision_hint not in PRECISION_HINTS:
        raise InputError(
            f"precision hint must be one of {', '.join(PRECISION_HINTS)}, got {precision_hint!r}"
        )
    outdir = Path(outdir)
    check_ir_output(outdir, overwrite)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        onnx = export_onnx(
            weights,
            onnx_path,
            scale=scale,
            validate=validate,
            sample_image=sample_image,
            overscale=overscale,
        )
        props = {**onnx_props(onnx_path), "overnet.precision_hint": precision_hint}
        model = ov.convert_model(str(onnx_path))
        with tempfile.TemporaryDirectory() as staging:
            xml, _ = save_ir(model, Path(staging), props)
            max_abs = compare_ir(xml, onnx_path) if validate else None
        if max_abs is not None and not max_abs <= IR_MAX_ABS:
            raise ExportError(
                f"the IR differs from its ONNX source by {max_abs:.2e} (> {IR_MAX_ABS:g}); "
                "nothing written"
            )
        save_ir(model, outdir, props)
    return IrExportResult(outdir / IR_XML, outdir / IR_BIN, props, max_abs, list(onnx.notes))
