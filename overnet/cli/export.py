"""`overnet export`: a checkpoint to ONNX, to TensorRT engines (one per scale), or to a
Triton model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from overnet.cli import export_formats as formats
from overnet.cli.export_formats import (
    EDGE_FORMATS,
    INT8_ONLY,
    ONNX_ONLY,
    OPENVINO_ONLY,
    TENSORRT_ONLY,
    TRITON_ONLY,
    WEB_ONLY,
    overscale_label,
    overscale_problem,
)
from overnet.cli.library import LibraryChoice, constant, field_default
from overnet.cli.options import (
    memory_option,
    profile_options,
    scale_option,
    scales_option,
    size_option,
    stack,
    tile_option,
    upscaler_options,
    weights_option,
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


def _triton_options() -> Any:
    where, choice = "overnet.export.triton", click.Choice
    return stack(
        click.option(
            "--triton-backend",
            "backend",
            type=choice(["onnxruntime", "tensorrt"]),
            default="onnxruntime",
            help="triton: model.onnx on onnxruntime, or model.plan (an engine built here).",
        ),
        click.option(
            "--instance",
            "device",
            type=choice(["cpu", "gpu"]),
            default="cpu",
            help="triton: onnxruntime instances on CPU or GPU (tensorrt: GPU).",
        ),
        click.option(
            "--max-batch",
            type=click.IntRange(min=1),
            default=constant(where, "DEFAULT_MAX_BATCH"),
            help="triton: max_batch_size (tensorrt: the --max batch).",
        ),
        click.option(
            "--queue-delay-us",
            type=click.IntRange(min=0),
            default=constant(where, "DEFAULT_QUEUE_DELAY_US"),
            help="triton: dynamic batching's max queue delay, microseconds.",
        ),
    )


def _openvino_options() -> Any:
    where, folder = "overnet.export.int8", click.Path(path_type=Path, file_okay=False)
    return stack(
        click.option(
            "--precision-hint",
            type=click.Choice(["fp32", "bf16"]),
            default=None,
            help="openvino: precision the runtime computes float layers in when not told "
            "(default: fp32, with --int8 too: bf16 float layers cost INT8 more than its "
            "speed-up is worth on images of high PSNR).",
        ),
        click.option(
            "--int8",
            is_flag=True,
            help="openvino/onnx: INT8 (NNCF) behind a PSNR-Y gate; needs --calibration.",
        ),
        click.option("--calibration", type=folder, default=None, help="int8: images to crop."),
        click.option(
            "--search-set",
            type=folder,
            default=None,
            help="int8: images the accuracy-aware search (--max-reverts N) scores (default: "
            "a quarter of --calibration, split by pixel hash).",
        ),
        click.option(
            "--validation",
            type=folder,
            default=None,
            help="int8: the gate's images, never searched or calibrated on (Set5 layout or "
            "HR images; default: a quarter of --calibration, split by pixel hash).",
        ),
        click.option(
            "--max-drop",
            type=click.FloatRange(min=0),
            default=constant(where, "DEFAULT_MAX_DROP"),
            help="int8: largest PSNR-Y drop (dB), the upper bound of its 95% interval on the "
            "validation set; else fail, write nothing.",
        ),
        click.option(
            "--calibration-crops",
            type=click.IntRange(min=1),
            default=field_default(where, "Int8Options", "crops"),
            help="int8: random crops calibrated on.",
        ),
        click.option(
            "--crop-size",
            type=click.IntRange(min=8),
            default=field_default(where, "Int8Options", "crop_size"),
            help="int8: LR crop side, pixels.",
        ),
        click.option(
            "--keep-float",
            type=LibraryChoice(where, "KEEP_FLOAT"),
            default=field_default(where, "Int8Options", "keep_float"),
            help="int8: convolutions never quantised (fusion: entry and exit convs and the "
            "body's four dense-fusion 1x1 convs; ends: entry and exit). The image path "
            "(input, bicubic skip, output add) is never quantised.",
        ),
        click.option(
            "--max-reverts",
            type=click.IntRange(min=0),
            default=field_default(where, "Int8Options", "max_reverts"),
            help="int8: 0: plain post-training INT8 with the fixed --keep-float set (minutes); "
            "N > 0: NNCF's accuracy-aware search puts up to N more layers back in float "
            "(scored on --search-set; tens of minutes).",
        ),
    )


def _web_options() -> Any:
    return stack(
        tile_option("web: the page's default; none: from --max-memory, as overnet upscale plans"),
        upscaler_options(),
        click.option(
            "--ort",
            default="cdn",
            metavar="cdn|npm|PATH",
            help="web: onnxruntime-web from its pinned CDN URL (cdn), or copied into the site "
            "for offline hosting from the npm registry's tarball (npm, checked and cached) or "
            "from a local onnxruntime-web .tgz or package folder (PATH).",
        ),
        click.option(
            "--serve", is_flag=True, help="web: serve the site on 127.0.0.1 once written."
        ),
        click.option(
            "--port", type=click.IntRange(0, 65535), default=8000, help="web: --serve's port."
        ),
    )


@click.command()
@weights_option("Checkpoint to export (.pth/.pth.tar/.safetensors).", required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "tensorrt", "triton", "openvino", "web", *EDGE_FORMATS]),
    default="onnx",
    help="onnx: one .onnx file; tensorrt: FP16 ONNX + engine + sidecar per scale in -o DIR "
    "(TensorRT 10.1 or newer 10.x, or 11.x); triton: a Triton model repository in -o DIR, "
    "a model per scale; openvino: OpenVINO IR model.xml + model.bin in -o DIR; web: a "
    "static site in -o DIR that upscales in the browser with onnxruntime-web (docs/web.md); "
    "litert (.tflite), executorch (.pte), coreml (.mlpackage): a file for phones at one "
    "fixed tile (--tile or --static-shape; docs/edge.md).",
)
@scale_option("Target scale factor baked into the graph, e.g. 2 or 2.5 (default: the weights').")
@click.option("--fp16", is_flag=True, help="float16 weights/activations, float32 I/O.")
@click.option("--fp32", is_flag=True, help="coreml: float32 compute (default: fp16).")
@click.option(
    "--overscale",
    is_flag=True,
    help="graph ends at the overscaled features: one file serves every scale in [1, upscale] "
    "at any image size; the runtime finishes it",
)
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
@_triton_options()
@_openvino_options()
@_web_options()
def export(
    weights: Path,
    fmt: str,
    scale: float | None,
    fp16: bool,
    fp32: bool,
    overscale: bool,
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

    triton = {name: trt_options.pop(name) for name in TRITON_ONLY}
    web = {name: trt_options.pop(name) for name in WEB_ONLY}
    openvino = {name: trt_options.pop(name) for name in (*OPENVINO_ONLY, "int8", *INT8_ONLY)}
    problem = overscale_problem(fmt, scale, trt_options["scales"], openvino["int8"], overscale)
    if problem:
        raise click.UsageError(problem)
    _check_export_options(fmt, scale, fp16, trt_options)
    if fp32 and (fmt != "coreml" or fp16):
        raise click.UsageError("--fp32 applies to --format coreml alone, without --fp16")
    if fmt in EDGE_FORMATS:
        formats.export_edge(
            fmt, weights, output, scale, fp16, static_shape, overwrite, validate, web
        )
        return
    if fmt == "web":
        formats.export_web(weights, output, scale, fp16, overwrite, validate, sample_image, web)
        return
    if fmt == "openvino" or openvino["int8"]:
        openvino["sample_image"] = sample_image
        formats.export_openvino(
            fmt, weights, output, scale, fp16, overwrite, validate, openvino, overscale
        )
        return
    if fmt == "triton":
        formats.export_triton(
            weights, output, scale, fp16, overwrite, validate, triton, trt_options
        )
        return
    if fmt == "tensorrt":
        formats.export_tensorrt(
            weights, output, scale, overwrite, validate, overscale, **trt_options
        )
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
        overscale=overscale,
    )
    meta = result.metadata
    what = overscale_label(meta.scale, meta.upscale) if overscale else f"x{meta.scale:g}"
    click.echo(
        f"wrote {result.path} ({meta.precision}, {what}, upscale {meta.upscale}, "
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

    web = [] if fmt == "web" else [(WEB_ONLY, "they apply to --format web only")]
    if fmt in EDGE_FORMATS:
        web = [(formats.EDGE_IGNORES, "they apply to --format web only")]
    for other, why in [*_ignored_options(fmt, ctx.params.get("backend")), *web]:
        ignored = [flag(name) for name in other if given(name)]
        if ignored:
            raise click.UsageError(f"{', '.join(ignored)} would be ignored: {why}; drop them")
    if fmt in ("tensorrt", "triton") and scale is not None and trt_options.get("scales"):
        raise click.UsageError("give --scale or --scales, not both (--scales 2,3 builds both)")
    if fmt == "tensorrt" and fp16:
        click.echo(
            "note: --fp16 is implied by --format tensorrt (engines are built from the FP16 "
            "ONNX export); it is not needed"
        )


def _ignored_options(fmt: str, triton_backend: str | None) -> list[tuple[tuple[str, ...], str]]:
    """(options, why) that the chosen --format (and --triton-backend) would ignore."""
    triton = (TRITON_ONLY, "they apply to --format triton only")
    if fmt == "web":
        return formats.web_ignores()
    if fmt in EDGE_FORMATS:
        return formats.edge_ignores(fmt)
    if fmt == "openvino" or ctx_int8():
        why = "--format openvino and --int8 use their own ONNX export (default opset, dynamic)"
        tensorrt = (TENSORRT_ONLY, "they apply to --format tensorrt only")
        own = [(("opset", "static_shape", "dynamic_batch"), why), tensorrt, triton]
        if not ctx_int8():
            return [*own, (INT8_ONLY, "they apply with --int8 only")]
        own.append((("sample_image",), "--int8 validates its fp32 export on the built-in pattern"))
        hint = (OPENVINO_ONLY, "it applies to --format openvino only")
        return own if fmt == "openvino" else [*own, hint]
    openvino = ((*OPENVINO_ONLY, *INT8_ONLY), "they apply to --format openvino or --int8 only")
    if fmt == "onnx":
        return [(TENSORRT_ONLY, "they apply to --format tensorrt only"), triton, openvino]
    if fmt == "tensorrt":
        why = "--format tensorrt exports its own FP16 ONNX (default opset, dynamic batch, height "
        return [(ONNX_ONLY, why + "and width, built-in validation pattern)"), triton, openvino]
    why = "--format triton exports its own ONNX (default opset, dynamic batch, height and width)"
    if triton_backend == "tensorrt":
        gpu = "--triton-backend tensorrt runs GPU instances, max_batch_size from the --max batch"
        return [(ONNX_ONLY, why), (("device", "max_batch"), gpu), openvino]
    trt = "they apply to --format tensorrt and --triton-backend tensorrt only"
    return [(ONNX_ONLY, why), (TENSORRT_ONLY[1:], trt), openvino]


def ctx_int8() -> bool:
    """True when this `overnet export` was given --int8."""
    return bool(click.get_current_context().params.get("int8"))
