"""`overnet export` past its options: the openvino/int8, triton and tensorrt exports, and
which options each --format uses (``overnet.cli.export`` checks them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

#: options of `overnet export` that only one --format uses
ONNX_ONLY = ("opset", "static_shape", "sample_image", "dynamic_batch")
TENSORRT_ONLY = (
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
#: the TensorRT builder's options (BuildOptions fields), a tail of TENSORRT_ONLY
BUILD_OPTIONS = TENSORRT_ONLY[4:]
TRITON_ONLY = ("backend", "device", "max_batch", "queue_delay_us")
OPENVINO_ONLY = ("precision_hint",)
WEB_ONLY = ("tile", "overlap", "max_memory", "ort", "serve", "port")
#: the fixed-tile files for phones (docs/edge.md); they take --tile and --overlap too
EDGE_FORMATS = ("litert", "executorch", "coreml")
EDGE_IGNORES = tuple(name for name in WEB_ONLY if name not in ("tile", "overlap"))
INT8_ONLY = (
    "calibration",
    "search_set",
    "validation",
    "max_drop",
    "calibration_crops",
    "crop_size",
    "keep_float",
    "max_reverts",
)


def overscale_problem(
    fmt: str, scale: float | None, scales: Any, int8: bool, overscale: bool
) -> str | None:
    """Why --overscale cannot go with the other options given (None when it can)."""
    if not overscale:
        return None
    if scale is not None or scales:
        given = "--scale" if scale is not None else "--scales"
        return (
            f"--overscale exports one graph that serves every scale in [1, upscale]: drop "
            f"{given} and give the scale when running it (overnet upscale --scale)"
        )
    if int8:
        return (
            "--overscale does not go with --int8: the INT8 export and its PSNR gate work on a "
            "graph that ends in RGB at one scale"
        )
    if fmt == "triton":
        return (
            "--overscale does not apply to --format triton: a Triton model returns the finished "
            "image at one scale, and nothing there would finish the features; use --scales"
        )
    return None


def overscale_label(scale: float, upscale: int) -> str:
    """``overscaled features x3 (serves scales 1..3)``."""
    return f"overscaled features x{scale:g} (serves scales 1..{upscale})"


def export_openvino(fmt, weights, output, scale, fp16, overwrite, validate, ov, overscale) -> None:
    """OpenVINO IR (fp32 weights), or with --int8 an INT8 IR / Q/DQ ONNX behind the gate."""
    if fp16:
        raise click.UsageError(
            "--fp16 does not apply to --format openvino or --int8 (the IR keeps fp32 weights; "
            "give --precision-hint bf16 to compute in bf16)"
        )
    if fmt not in ("openvino", "onnx"):
        raise click.UsageError(f"--int8 applies to --format openvino or onnx, not {fmt}")
    if not ov["int8"]:
        from overnet.export.openvino_ir import export_openvino as export_ir

        hint = ov["precision_hint"] or "fp32"
        r = export_ir(weights, output, scale=scale, precision_hint=hint, overwrite=overwrite,
                      validate=validate, sample_image=ov["sample_image"],
                      overscale=overscale)  # fmt: skip
        checked = "" if r.max_abs_vs_onnx is None else f", max abs vs ONNX {r.max_abs_vs_onnx:.1e}"
        what = ""
        if overscale:
            label = overscale_label(
                float(r.metadata["overnet.scale"]), int(r.metadata["overnet.upscale"])
            )
            what = f", {label}"
        click.echo(f"wrote {r.xml} + {r.bin.name} (fp32 weights, hint {hint}{checked}{what})")
        return
    if ov["calibration"] is None:
        raise click.UsageError("--int8 needs --calibration DIR (images to calibrate on)")
    from overnet.eval import dataset_psnr_y
    from overnet.export.int8 import Int8Options

    options = Int8Options(
        ov["calibration"], ov["validation"], ov["max_drop"], ov["calibration_crops"],
        ov["crop_size"], ov["keep_float"], ov["precision_hint"], ov["max_reverts"],
        search_set=ov["search_set"], score=dataset_psnr_y,
    )  # fmt: skip
    if fmt == "onnx":
        from overnet.export.int8_onnx import export_onnx_int8

        path, ov_report, report = export_onnx_int8(
            weights, output, options, scale=scale, overwrite=overwrite, validate=validate
        )
        click.echo(f"{ov_report.format()}\n{report.format()}\nwrote {path} (Q/DQ INT8 ONNX)")
        return
    from overnet.export.int8 import export_openvino_int8

    result, report = export_openvino_int8(
        weights, output, options, scale=scale, overwrite=overwrite, validate=validate
    )
    click.echo(f"{report.format()}\nwrote {result.xml} + {result.bin.name} (INT8)")
    for note in result.notes:
        click.echo(f"note: {note}")


def export_triton(weights, repo, scale, fp16, overwrite, validate, triton, trt_options) -> None:
    """A Triton model repository, a model per scale; configs checked with tritonclient."""
    from overnet.export.triton import summary, write_repository

    build = None
    if triton["backend"] == "tensorrt":
        from overnet.export.tensorrt import BuildOptions, Profile

        shapes = (trt_options[k] for k in ("min_shape", "opt_shape", "max_shape"))
        options = BuildOptions(**{k: trt_options[k] for k in BUILD_OPTIONS})
        build = (Profile.parse(*shapes), options)
    scales = trt_options["scales"] or ([scale] if scale is not None else None)
    models = write_repository(
        weights, repo, scales=scales, fp16=fp16, build=build, overwrite=overwrite,
        validate=validate, echo=click.echo, **triton,
    )  # fmt: skip
    click.echo(summary(models, repo))


def export_tensorrt(
    weights: Path,
    outdir: Path,
    scale: float | None,
    overwrite: bool,
    validate: bool,
    overscale: bool,
    *,
    scales: list[float] | None,
    min_shape: str,
    opt_shape: str,
    max_shape: str,
    **build: Any,
) -> None:
    """FP16 ONNX -> engine + sidecar per scale (with ``overscale`` one engine for every
    scale); prints the trtexec line and build times."""
    from overnet.export.tensorrt import BuildOptions, Profile, export_tensorrt
    from overnet.formats.sidecar import read_sidecar

    results = export_tensorrt(
        weights,
        outdir,
        scales=scales or ([scale] if scale is not None else None),
        profile=Profile.parse(min_shape, opt_shape, max_shape),
        options=BuildOptions(**build),
        overwrite=overwrite,
        validate=validate,
        echo=click.echo,
        overscale=overscale,
    )
    for r in results:
        label = f"x{r.scale:g}"
        if overscale:
            sidecar = read_sidecar(r.engine)
            label = overscale_label(sidecar.scale, sidecar.upscale)
        click.echo(
            f"{label}: {r.engine} (sidecar {r.sidecar.name}), built in {r.build.seconds:.1f} s"
        )


def web_ignores() -> list[tuple[tuple[str, ...], str]]:
    """(options, why) that --format web would ignore."""
    own = "--format web exports its own ONNX (default opset, dynamic batch, height and width)"
    return [
        (("opset", "static_shape", "dynamic_batch"), own),
        (TENSORRT_ONLY, "they apply to --format tensorrt only"),
        (TRITON_ONLY, "they apply to --format triton only"),
        ((*OPENVINO_ONLY, *INT8_ONLY), "they apply to --format openvino or --int8 only"),
    ]


def export_web(weights, output, scale, fp16, overwrite, validate, sample_image, web) -> None:
    """A static site that upscales in the browser; with --serve, served on 127.0.0.1."""
    ctx = click.get_current_context()
    for flag in ("fp16", "int8"):
        if ctx.params.get(flag):
            raise click.UsageError(
                f"--{flag} does not apply to --format web: the page runs the fp32 graph "
                "with onnxruntime-web (docs/web.md)"
            )
    from overnet.export.web import export_web as write_site
    from overnet.export.web.serve import SiteServer

    result = write_site(
        weights, output, scale=scale, overscale=ctx.params["overscale"], tile=web["tile"],
        overlap=web["overlap"], max_memory=web["max_memory"], ort=web["ort"], overwrite=overwrite,
        validate=validate, sample_image=sample_image,
    )  # fmt: skip
    where = "copied into ort/" if result.ort_source == "local" else "from the pinned CDN URL"
    what = overscale_label(result.scale, result.upscale) if result.overscale else ""
    what = what or f"x{result.scale:g}"
    click.echo(
        f"wrote {result.folder}/ ({what}, {len(result.files)} files; onnxruntime-web {where})"
    )
    if result.validation is not None:
        click.echo(result.validation.format())
    if not web["serve"]:
        click.echo(f"serve it with: python -m overnet.export.web.serve {result.folder}")
        return
    with SiteServer(result.folder, port=web["port"]) as server:
        click.echo(f"serving {result.folder} at {server.url} (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")


def edge_ignores(fmt: str) -> list[tuple[tuple[str, ...], str]]:
    """(options, why) that --format litert/executorch/coreml would ignore."""
    own = f"--format {fmt} converts the graph itself at one fixed input size"
    return [
        (("opset", "dynamic_batch"), own),
        (TENSORRT_ONLY, "they apply to --format tensorrt only"),
        (TRITON_ONLY, "they apply to --format triton only"),
        ((*OPENVINO_ONLY, *INT8_ONLY), "they apply to --format openvino or --int8 only"),
    ]


def export_edge(fmt, weights, output, scale, fp16, static_shape, overwrite, validate, web):
    """A fixed-tile file for phones: LiteRT .tflite, ExecuTorch .pte (fp32, or --fp16) or
    a Core ML .mlpackage (fp16, or --fp32)."""
    ctx = click.get_current_context()
    for flag in ("int8", "overscale"):
        if ctx.params.get(flag):
            raise click.UsageError(
                f"--{flag} does not apply to --format {fmt}: the file runs one fixed tile at "
                "the model's integer scale (docs/edge.md)"
            )
    if static_shape is not None and web["tile"] is not None:
        raise click.UsageError("give --tile (a square side) or --static-shape WxH, not both")
    tile = (static_shape[1], static_shape[0]) if static_shape is not None else web["tile"]
    if tile == 0:
        raise click.UsageError(f"--format {fmt} needs a fixed tile: --tile 0 cannot apply")
    common = dict(scale=scale, tile=tile, overlap=web["overlap"], overwrite=overwrite,
                  validate=validate)  # fmt: skip
    if fmt == "litert":
        from overnet.export.litert import export_litert

        result = export_litert(weights, output, fp16=fp16, **common)
    elif fmt == "executorch":
        from overnet.export.executorch import export_executorch

        result = export_executorch(weights, output, fp16=fp16, **common)
    else:
        from overnet.export.coreml import export_coreml

        precision = "fp32" if ctx.params.get("fp32") else "fp16"  # fp16 unless --fp32
        result = export_coreml(weights, output, precision=precision, **common)
    click.echo(result.summary())
    for note in result.notes:
        click.echo(f"note: {note}")
