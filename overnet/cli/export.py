"""`overnet export`: a checkpoint to ONNX, or to TensorRT engines (one per scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from overnet.cli.library import LibraryChoice, constant, field_default
from overnet.cli.options import (
    memory_option,
    profile_options,
    scale_option,
    scales_option,
    size_option,
    stack,
    weights_option,
)

#: options of `overnet export` that only one --format uses
_ONNX_ONLY = ("opset", "static_shape", "sample_image", "dynamic_batch")
_TENSORRT_ONLY = (
    "scales",
    "min_shape",
    "opt_shape",
    "max_shape",
    "workspace",
    "opt_level",
    "timing_cache",
    "version_compatible",
    "hardware_compat",
)


def _tensorrt_options() -> Any:
    where = "overnet.export.tensorrt.options"
    return stack(
        scales_option("tensorrt: scales to build, e.g. 2,3 (default: the weights')."),
        profile_options(),
        memory_option(
            "--workspace",
            help="tensorrt: builder workspace limit, e.g. 4GiB (default: TensorRT's, the GPU's)",
        ),
        click.option(
            "--opt-level",
            type=click.IntRange(0, 5),
            default=None,
            help="tensorrt: builder optimisation level (default: TensorRT's).",
        ),
        click.option(
            "--timing-cache",
            type=click.Path(path_type=Path),
            default=None,
            help="tensorrt: timing cache to reuse and update (default: one in the -o folder).",
        ),
        click.option(
            "--version-compatible",
            is_flag=True,
            help="tensorrt: engine runs on newer TensorRT too (slower).",
        ),
        click.option(
            "--hardware-compat",
            type=LibraryChoice(where, "HARDWARE_COMPAT"),
            default=field_default(where, "BuildOptions", "hardware_compat"),
            help="tensorrt: engine runs on other GPUs (slower).",
        ),
    )


@click.command()
@weights_option("Checkpoint to export (.pth/.pth.tar/.safetensors).", required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "tensorrt"]),
    default="onnx",
    help="onnx: one .onnx file; tensorrt: FP16 ONNX + engine + sidecar per scale in -o DIR "
    "(TensorRT 10.1 or newer 10.x, or 11.x).",
)
@scale_option("Target scale factor baked into the graph, e.g. 2 or 2.5 (default: the weights').")
@click.option("--fp16", is_flag=True, help="float16 weights/activations, float32 I/O.")
@click.option(
    "--opset", type=int, default=constant("overnet.export", "DEFAULT_OPSET"), help="ONNX opset."
)
@click.option("--dynamic-batch/--static-batch", default=True, help="Batch axis dynamic or 1.")
@size_option("--static-shape", help="Fix the input size instead of dynamic height and width")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output .onnx file (--format onnx) or folder (--format tensorrt).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--validate/--no-validate",
    default=True,
    help="Compare with PyTorch in onnxruntime (and OpenVINO) before writing.",
)
@click.option(
    "--sample-image",
    type=click.Path(path_type=Path),
    default=None,
    help="A real LR image for validation (a built-in pattern otherwise).",
)
@_tensorrt_options()
def export(
    weights: Path,
    fmt: str,
    scale: float | None,
    fp16: bool,
    opset: int,
    dynamic_batch: bool,
    static_shape: tuple[int, int] | None,
    output: Path,
    overwrite: bool,
    validate: bool,
    sample_image: Path | None,
    **trt_options: Any,
) -> None:
    """Export WEIGHTS to ONNX (or TensorRT engines): input `lr` Nx3xHxW float32 RGB [0,1],
    output `sr`."""
    from overnet.export import export_onnx

    _check_export_options(fmt, scale, fp16, trt_options)
    if fmt == "tensorrt":
        _export_tensorrt(weights, output, scale, overwrite, validate, **trt_options)
        return
    result = export_onnx(
        weights,
        output,
        scale=scale,
        fp16=fp16,
        opset=opset,
        dynamic_batch=dynamic_batch,
        static_shape=None if static_shape is None else (static_shape[1], static_shape[0]),
        overwrite=overwrite,
        validate=validate,
        sample_image=sample_image,
    )
    meta = result.metadata
    click.echo(
        f"wrote {result.path} ({meta.precision}, x{meta.scale:g}, upscale {meta.upscale}, "
        f"opset {meta.opset}, {sum(result.node_counts.values())} nodes)"
    )
    if result.validation is not None:
        click.echo(result.validation.format())
    for note in result.notes:
        click.echo(f"note: {note}")


def _check_export_options(
    fmt: str, scale: float | None, fp16: bool, trt_options: dict[str, Any]
) -> None:
    """Refuse options the chosen --format would silently ignore (click.UsageError, exit 2)."""
    ctx = click.get_current_context()

    def given(name: str) -> bool:
        if name == "dynamic_batch":  # --dynamic-batch is what tensorrt does anyway
            return ctx.params.get(name) is False
        source = ctx.get_parameter_source(name)
        return source is not None and source != ParameterSource.DEFAULT

    def flag(name: str) -> str:
        if name == "dynamic_batch":
            return "--static-batch"
        return next(p for p in ctx.command.params if p.name == name).opts[0]

    other = _ONNX_ONLY if fmt == "tensorrt" else _TENSORRT_ONLY
    ignored = [flag(name) for name in other if given(name)]
    if ignored:
        why = (
            "--format tensorrt exports its own FP16 ONNX (default opset, dynamic batch, height "
            "and width, built-in validation pattern)"
            if fmt == "tensorrt"
            else "they apply to --format tensorrt only"
        )
        raise click.UsageError(f"{', '.join(ignored)} would be ignored: {why}; drop them")
    if fmt == "tensorrt" and scale is not None and trt_options.get("scales"):
        raise click.UsageError("give --scale or --scales, not both (--scales 2,3 builds both)")
    if fmt == "tensorrt" and fp16:
        click.echo(
            "note: --fp16 is implied by --format tensorrt (engines are built from the FP16 "
            "ONNX export); it is not needed"
        )


def _export_tensorrt(
    weights: Path,
    outdir: Path,
    scale: float | None,
    overwrite: bool,
    validate: bool,
    *,
    scales: list[float] | None,
    min_shape: str,
    opt_shape: str,
    max_shape: str,
    workspace: int | None,
    opt_level: int | None,
    timing_cache: Path | None,
    version_compatible: bool,
    hardware_compat: str,
) -> None:
    """FP16 ONNX -> engine + sidecar per scale; prints the trtexec line and build times."""
    from overnet.export.tensorrt import BuildOptions, Profile, export_tensorrt

    options = BuildOptions(
        workspace=workspace,
        opt_level=opt_level,
        timing_cache=timing_cache,
        version_compatible=version_compatible,
        hardware_compat=hardware_compat,
    )
    results = export_tensorrt(
        weights,
        outdir,
        scales=scales or ([scale] if scale is not None else None),
        profile=Profile.parse(min_shape, opt_shape, max_shape),
        options=options,
        overwrite=overwrite,
        validate=validate,
        echo=click.echo,
    )
    for r in results:
        click.echo(
            f"x{r.scale:g}: {r.engine} (sidecar {r.sidecar.name}), built in {r.build.seconds:.1f} s"
        )
