"""`overnet upscale`: image files, folders or globs through ``overnet.runtime``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from overnet.cli.library import LibraryChoice, constant, parameter_default
from overnet.cli.options import (
    backend_option,
    device_option,
    progress_option,
    scale_option,
    stack,
    tile_option,
    upscaler_options,
)

_model = stack(
    click.option(
        "--model",
        type=click.Path(path_type=Path),
        default=None,
        help="Exported model: .onnx (openvino/onnxruntime) or .engine (tensorrt).",
    ),
    click.option(
        "--weights",
        type=click.Path(path_type=Path),
        default=None,
        help="Checkpoint (.pth/.pth.tar/.safetensors); ONNX backends export it once.",
    ),
    backend_option("auto"),
    device_option("cpu", help="Device: cpu or cuda[:N]."),
    click.option(
        "--precision",
        type=LibraryChoice("overnet.runtime", "PRECISIONS"),
        default=None,
        help="Compute precision (default: the model file's / fp32).",
    ),
    scale_option("Target scale factor, e.g. 2 or 2.5 (default: the model's)."),
)
_files = stack(
    click.option(
        "--format",
        "fmt",
        type=LibraryChoice("overnet.imaging.files", "OUTPUT_FORMATS"),
        default=None,
        help="Output format (default: the input's, png when unwritable).",
    ),
    click.option("--suffix", default="", help="Appended to output names, e.g. _x2."),
    click.option(
        "--quality",
        type=click.IntRange(1, 100),
        default=parameter_default("overnet.runtime.batch", "upscale_files", "quality"),
        help="JPEG/WebP quality.",
    ),
    click.option("--recursive", is_flag=True, help="Descend into subfolders of input folders."),
    click.option("--overwrite", is_flag=True, help="Redo outputs that already exist."),
    click.option(
        "--max-pixels",
        type=float,
        default=constant("overnet.imaging.files", "DEFAULT_MAX_PIXELS"),
        help="Refuse larger inputs (decompression-bomb guard).",
    ),
)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder (created when missing).",
)
@_model
@tile_option("from --max-memory, the whole image when it fits")
@upscaler_options()
@click.option("--batch", "tile_batch", type=int, default=None, help="Tiles per run.")
@_files
@click.option("--threads", type=int, default=None, help="CPU threads (default: all cores).")
@progress_option()
def upscale(
    inputs: tuple[str, ...],
    out_dir: Path,
    model: Path | None,
    weights: Path | None,
    backend: str,
    device: str,
    precision: str | None,
    scale: float | None,
    tile: int | None,
    overlap: int,
    max_memory: int,
    tile_batch: int | None,
    fmt: str | None,
    suffix: str,
    quality: int,
    recursive: bool,
    overwrite: bool,
    max_pixels: float,
    threads: int | None,
    progress: bool,
) -> None:
    """Upscale image files, folders or globs into OUTDIR (resumes: existing outputs are kept)."""
    from overnet.errors import InputError
    from overnet.imaging.files import expand_inputs
    from overnet.runtime import open_session
    from overnet.runtime.batch import upscale_files
    from overnet.runtime.upscaler import Upscaler

    if (model is None) == (weights is None):
        raise InputError("give exactly one of --model (exported file) or --weights (checkpoint)")
    files, problems = expand_inputs(list(inputs), recursive, exclude=out_dir)
    if not files:
        raise InputError("no input images: " + "; ".join(problems))
    session = open_session(
        model or weights, backend, device=device, precision=precision, scale=scale, threads=threads
    )
    with session:
        upscaler = Upscaler(
            session, tile=tile, overlap=overlap, max_memory=max_memory, batch=tile_batch
        )
        click.echo(f"{len(files)} image(s) with {session.info.describe()}", err=True)
        report = upscale_files(
            files,
            out_dir,
            upscaler,
            fmt=fmt,
            suffix=suffix,
            overwrite=overwrite,
            max_pixels=int(max_pixels),
            quality=quality,
            progress=progress,
        )
    report.problems = problems
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)
