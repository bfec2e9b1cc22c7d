"""`overnet upscale`: image and video files, folders or globs through ``overnet.runtime``.

Images go through :mod:`overnet.jobs.batch`, videos through :mod:`overnet.video`
(told apart by content); one failed file does not stop the others. With ``--ray`` the
same batch runs on a Ray cluster (:mod:`overnet.cli.ray_options`, :mod:`overnet.scaleout`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from overnet.cli.library import LibraryChoice, constant, parameter_default
from overnet.cli.options import (
    backend_option,
    choose_model,
    device_option,
    fetch_if_pretrained,
    progress_option,
    scale_option,
    stack,
    tile_option,
    upscaler_options,
)
from overnet.cli.ray_options import PATH_OR_URI, ray_options
from overnet.cli.video_options import (
    check_video_options,
    frame_progress,
    video_options,
    video_settings,
)

_model = stack(
    click.option(
        "--model",
        type=PATH_OR_URI,
        default=None,
        help="Exported model: .onnx (openvino/onnxruntime) or .engine (tensorrt). With "
        "neither --model nor --weights: the pretrained x2 (x3 for --scale above 2).",
    ),
    click.option(
        "--weights",
        type=PATH_OR_URI,
        default=None,
        help="Checkpoint (.pth/.pth.tar/.safetensors) or pretrained name (x2, x3, fetched "
        "once); ONNX backends export it once.",
    ),
    backend_option("auto"),
    device_option("cpu", help="Device: cpu or cuda[:N]."),
    click.option(
        "--precision",
        type=LibraryChoice("overnet.runtime.base", "PRECISION_CHOICES"),
        default="auto",
        help="Compute precision. auto: the fastest the hardware runs natively within "
        "45 dB PSNR of fp32 (bf16 on CPUs with AVX512_BF16/AMX, fp16 on CUDA, a file's own "
        "precision), else fp32; fp32 gives exact results anywhere.",
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
        default=parameter_default("overnet.jobs.batch", "upscale_files", "quality"),
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
@ray_options()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=PATH_OR_URI,
    required=True,
    help="Output folder (created when missing); with --ray also a storage URI.",
)
@_model
@tile_option("from --max-memory, the whole image when it fits")
@upscaler_options()
@click.option(
    "--batch", "tile_batch", type=int, default=None, help="Tiles (or whole video frames) per run."
)
@_files
@video_options()
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
    codec: str,
    crf: int | None,
    preset: str | None,
    pix_fmt: str | None,
    encoder_threads: int | None,
    encoder_options: tuple[tuple[str, str], ...],
    video_format: str | None,
    max_frames: int | None,
    start: float,
    duration: float | None,
    strict: bool,
    threads: int | None,
    progress: bool,
) -> None:
    """Upscale image and video files, folders or globs into OUTDIR (resumes: existing
    outputs are kept). Videos (.mp4 .mkv .mov .webm .avi .m4v, told by content) keep
    their audio, subtitles, timing and metadata; see the video options below."""
    from overnet.errors import InputError
    from overnet.jobs.batch import upscale_files
    from overnet.runtime import open_session
    from overnet.runtime.upscaler import Upscaler
    from overnet.video.files import split_inputs, upscale_video_files

    chosen = choose_model(model, weights, scale)
    images, videos, problems = split_inputs(list(inputs), recursive, exclude=out_dir)
    if not images and not videos:
        raise InputError("no input images or videos: " + "; ".join(problems))
    encode, trim = video_settings(click.get_current_context().params)
    if videos:
        check_video_options(encode, video_format)
    session = open_session(
        fetch_if_pretrained(chosen),
        backend,
        device=device,
        precision=precision,
        scale=scale,
        threads=threads,
    )
    ok = not problems
    try:
        with session:
            upscaler = Upscaler(
                session, tile=tile, overlap=overlap, max_memory=max_memory, batch=tile_batch
            )
            click.echo(
                f"{len(images)} image(s), {len(videos)} video(s) with {session.info.describe()}",
                err=True,
            )
            if session.info.notes and session.info.notes[0].startswith("precision auto"):
                click.echo(session.info.notes[0], err=True)
            if images:
                report = upscale_files(
                    images,
                    out_dir,
                    upscaler,
                    fmt=fmt,
                    suffix=suffix,
                    overwrite=overwrite,
                    max_pixels=int(max_pixels),
                    quality=quality,
                    progress=progress,
                    other_inputs={item.path.resolve() for item in videos},
                )
                report.problems, problems = problems, []
                click.echo(report.summary())
                ok = ok and report.ok
            if videos:
                video_report = upscale_video_files(
                    videos,
                    out_dir,
                    upscaler,
                    encode,
                    fmt=video_format,
                    suffix=suffix,
                    overwrite=overwrite,
                    trim=trim,
                    strict=strict,
                    progress=frame_progress(progress),
                    inputs={item.path.resolve() for item in images},
                )
                click.echo(video_report.summary())
                ok = ok and video_report.ok
    except KeyboardInterrupt:
        click.echo("\ninterrupted: the file in progress was not written", err=True)
        sys.exit(130)
    for problem in problems:
        click.echo(f"  input: {problem}")
    if not ok:
        sys.exit(1)
