"""`overnet` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from overnet import __version__
from overnet.errors import OverNetError


def _friendly_errors(func):
    """Turn OverNetError into a one-line message and exit status 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OverNetError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="overnet")
def main() -> None:
    """OverNet super-resolution: weights, export, runtime, eval and benchmarks."""


@main.command()
@click.argument("weights", required=False, type=click.Path(path_type=Path))
@click.option("--scale", type=float, default=None, help="Target scale (default: the weights').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_friendly_errors
def info(weights: Path | None, scale: float | None, as_json: bool) -> None:
    """Show config, parameters, multiply-adds and size of WEIGHTS (default: x2 architecture)."""
    from overnet.info import describe, format_info

    result = describe(weights, scale)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_info(result))


@main.command()
@click.option(
    "--shared",
    type=click.Path(path_type=Path),
    default=Path("../shared"),
    show_default=True,
    help="Folder holding weights/ and data/ (upstream files).",
)
@_friendly_errors
def demo(shared: Path) -> None:
    """Describe the upstream x2 model and evaluate it on Set5 (from --shared when present)."""
    from overnet.info import describe, format_info

    weights = shared / "weights" / "OverNet_x2.pth.tar"
    if not weights.exists():
        click.echo(f"({weights} not found: describing the x2 architecture without weights)")
        click.echo(format_info(describe(None)))
        return
    click.echo(format_info(describe(weights)))
    set5 = shared / "data" / "Set5"
    if set5.is_dir():
        click.echo()
        ctx = click.get_current_context()
        ctx.invoke(
            eval_,
            weights=weights,
            data_dirs=(set5,),
            scale=None,
            protocol="paper",
            backend="torch",
            device="cpu",
            save_dir=None,
            json_path=None,
            csv_path=None,
            compare_paper=True,
            progress=True,
        )


def _torch_predictor(weights: Path, scale: float | None, device: str):
    """NCHW float32 numpy -> NCHW float32 numpy through the PyTorch model."""
    import torch

    from overnet.weights import load_model

    model = load_model(weights, scale, device=device)

    def predict(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    return model.config, predict


@main.command("eval")
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkpoint (.pth/.pth.tar/.safetensors).",
)
@click.option(
    "--data",
    "data_dirs",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="Dataset folder (repeat for several).",
)
@click.option("--scale", type=int, default=None, help="Scale (default: the weights').")
@click.option(
    "--protocol",
    type=click.Choice(["paper", "standard"]),
    default="paper",
    show_default=True,
    help="paper: float output (upstream); standard: output rounded to uint8 first.",
)
@click.option(
    "--backend",
    default="torch",
    show_default=True,
    help="torch, openvino, onnxruntime, auto or a variant (torch-cl, openvino-bf16, ...).",
)
@click.option("--tile", type=int, default=None, help="Evaluate tiled (tile side, input px).")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda).")
@click.option(
    "--save-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write SR images here (PNG, 8-bit).",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None)
@click.option("--compare-paper/--no-compare-paper", default=True, show_default=True)
@click.option("--progress/--no-progress", default=True)
@_friendly_errors
def eval_(
    weights,
    data_dirs,
    scale,
    protocol,
    backend,
    tile,
    device,
    save_dir,
    json_path,
    csv_path,
    compare_paper,
    progress,
) -> None:
    """PSNR/SSIM on the Y channel (border = scale) for each image and dataset."""
    from overnet.eval import discover, evaluate
    from overnet.eval.report import format_table, write_csv, write_json

    if backend == "torch" and tile is None:
        config, predict = _torch_predictor(weights, scale, device)
    else:
        from overnet.config import OverNetConfig
        from overnet.runtime import open_session
        from overnet.runtime.upscaler import Upscaler

        session = open_session(weights, backend, device=device, scale=scale)
        click.echo(f"backend: {session.info.describe()}", err=True)
        predict = Upscaler(session, tile=tile).upscale_array if tile else session.run
        config = OverNetConfig(upscale=session.info.upscale or 4, scale=session.info.scale)
    if not float(config.scale).is_integer():
        raise click.BadParameter("evaluation needs an integer scale", param_hint="--scale")
    results, failed = [], 0
    for folder in data_dirs:
        dataset = discover(folder, int(config.scale))
        result = evaluate(dataset, predict, protocol, save_dir, progress)
        click.echo(format_table(result, compare_paper))
        click.echo()
        results.append(result)
        failed += len(result.failed)
    if json_path:
        write_json(results, json_path)
    if csv_path:
        write_csv(results, csv_path)
    if failed:
        click.echo(f"{failed} image(s) failed; see the table above", err=True)
        sys.exit(1)


def _parse_hw(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW such as 180x320, got {value!r}") from None
    if h < 1 or w < 1:
        raise click.BadParameter(f"height and width must be positive, got {value!r}")
    return h, w


@main.command()
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkpoint to export (.pth/.pth.tar/.safetensors).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "tensorrt"]),
    default="onnx",
    show_default=True,
    help="onnx: one .onnx file; tensorrt: FP16 ONNX + engine + sidecar per scale in -o DIR.",
)
@click.option("--scale", type=float, default=None, help="Scale baked into the graph.")
@click.option("--fp16", is_flag=True, help="float16 weights/activations, float32 I/O.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default 18).")
@click.option("--dynamic-batch/--static-batch", default=True, show_default=True)
@click.option("--static-shape", default=None, metavar="HxW", help="Fix the input H and W.")
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
    show_default=True,
    help="Compare with PyTorch in onnxruntime (and OpenVINO) before writing.",
)
@click.option(
    "--sample-image",
    type=click.Path(path_type=Path),
    default=None,
    help="A real LR image for validation (a built-in pattern otherwise).",
)
@click.option(
    "--scales", default=None, help="tensorrt: scales to build, e.g. 2,3 (default: the weights')."
)
@click.option(
    "--min",
    "min_shape",
    default="1x3x32x32",
    show_default=True,
    help="tensorrt: profile min NxCxHxW.",
)
@click.option(
    "--opt",
    "opt_shape",
    default="1x3x360x640",
    show_default=True,
    help="tensorrt: profile opt shape.",
)
@click.option(
    "--max",
    "max_shape",
    default="1x3x1080x1920",
    show_default=True,
    help="tensorrt: profile max shape.",
)
@click.option("--workspace", default=None, help="tensorrt: workspace limit, e.g. 4096 (MiB), 4G.")
@click.option(
    "--opt-level",
    type=click.IntRange(0, 5),
    default=None,
    help="tensorrt: builder optimisation level (TensorRT default 3).",
)
@click.option(
    "--timing-cache",
    type=click.Path(path_type=Path),
    default=None,
    help="tensorrt: timing cache to reuse and update (default OUT/overnet.timing-cache).",
)
@click.option(
    "--version-compatible",
    is_flag=True,
    help="tensorrt: engine runs on newer TensorRT too (slower).",
)
@click.option(
    "--hardware-compat",
    type=click.Choice(["none", "ampere+", "same-cc"]),
    default="none",
    show_default=True,
    help="tensorrt: engine runs on other GPUs (slower).",
)
@_friendly_errors
def export(
    weights,
    fmt,
    scale,
    fp16,
    opset,
    dynamic_batch,
    static_shape,
    output,
    overwrite,
    validate,
    sample_image,
    **trt_options,
) -> None:
    """Export WEIGHTS to ONNX (or TensorRT engines): input `lr` Nx3xHxW float32 RGB [0,1],
    output `sr`."""
    from overnet.export import DEFAULT_OPSET, export_onnx

    _check_export_options(fmt, scale, fp16, trt_options)
    if fmt == "tensorrt":
        _export_tensorrt(weights, output, scale, overwrite, validate, **trt_options)
        return
    result = export_onnx(
        weights,
        output,
        scale=scale,
        fp16=fp16,
        opset=opset or DEFAULT_OPSET,
        dynamic_batch=dynamic_batch,
        static_shape=_parse_hw(static_shape),
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


def _check_export_options(fmt, scale, fp16, trt_options) -> None:
    """Refuse options the chosen --format would silently ignore (click.UsageError, exit 2)."""
    ctx = click.get_current_context()

    def given(name: str) -> bool:
        if name == "dynamic_batch":  # --dynamic-batch is what tensorrt does anyway
            return ctx.params.get(name) is False
        source = ctx.get_parameter_source(name)
        return source is not None and source != click.core.ParameterSource.DEFAULT

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
    weights,
    outdir,
    scale,
    overwrite,
    validate,
    *,
    scales,
    min_shape,
    opt_shape,
    max_shape,
    workspace,
    opt_level,
    timing_cache,
    version_compatible,
    hardware_compat,
) -> None:
    """FP16 ONNX -> engine + sidecar per scale; prints the trtexec line and build times."""
    from overnet.export.tensorrt import BuildOptions, Profile, export_tensorrt, parse_size

    if scales:
        try:
            wanted = [float(s) for s in scales.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter(
                f"expected e.g. 2,3,4, got {scales!r}", param_hint="--scales"
            ) from None
    else:
        wanted = [scale] if scale is not None else None
    options = BuildOptions(
        workspace=parse_size(workspace),
        opt_level=opt_level,
        timing_cache=timing_cache,
        version_compatible=version_compatible,
        hardware_compat=hardware_compat,
    )
    results = export_tensorrt(
        weights,
        outdir,
        scales=wanted,
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


@main.command()
@click.argument("model", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Compare numerically against these PyTorch weights.",
)
@click.option("--sample-image", type=click.Path(path_type=Path), default=None)
@_friendly_errors
def check(model, weights, sample_image) -> None:
    """Check an exported MODEL.onnx: checker, TensorRT lint, runtimes (vs --weights)."""
    from overnet.export.validate import validate_onnx

    reference = None
    if weights is not None:
        from overnet.weights import load_model

        reference = load_model(weights)
    report = validate_onnx(model, reference, sample_image=sample_image)
    if report.metadata:
        m = report.metadata
        click.echo(
            f"{model}: {m.precision}, x{m.scale:g}, upscale {m.upscale}, opset {m.opset}, "
            f"source sha256 {m.source_sha256[:12] or '-'}"
        )
    click.echo(report.format())
    if not report.passed or report.lint_problems:
        sys.exit(1)


#: `overnet train` validates here when no --val is given and the folder exists.
DEFAULT_TRAIN_VAL = Path("..") / "shared" / "data" / "Set5"


def _parse_scales(scale: int | None, scales: str | None) -> list[int]:
    if scale is not None and scales is not None:
        raise click.UsageError("give --scale or --scales, not both")
    if scales is None:
        return [scale if scale is not None else 2]
    try:
        return [int(s) for s in scales.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected integers such as 2,3,4, got {scales!r}") from None


@main.command()
@click.option(
    "--data",
    "data_dirs",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="Training folder: HR images, or DIV2K-style HR + LR_bicubic/X{s} (repeatable).",
)
@click.option("--scale", type=int, default=None, help="Train one scale (default 2).")
@click.option("--scales", default=None, metavar="2,3,4", help="One multi-scale model.")
@click.option("--upscale", type=int, default=None, help="Overscaling factor (default: s+1).")
@click.option("--channels", type=int, default=64, show_default=True, help="Feature width F.")
@click.option("--patch", type=int, default=64, show_default=True, help="LR patch side.")
@click.option("--batch", type=int, default=64, show_default=True, help="Global batch.")
@click.option("--steps", type=int, default=600_000, show_default=True)
@click.option("--lr", type=float, default=None, help="Initial rate [1e-3; 3e-5 with --init].")
@click.option("--decay", type=int, default=150_000, show_default=True, help="Halve lr every N.")
@click.option("--clip", type=float, default=10.0, show_default=True, help="Gradient norm clip.")
@click.option("--optimizer", type=click.Choice(["adamp", "adam"]), default="adamp")
@click.option("--init", type=click.Path(path_type=Path), default=None, help="Start weights.")
@click.option(
    "--val",
    "val_dirs",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Validation folder, e.g. Set5 (repeatable); best.safetensors by its PSNR. "
    f"Default: {DEFAULT_TRAIN_VAL} when that folder exists.",
)
@click.option("--no-val", is_flag=True, help="No validation (and no best.safetensors).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/overnet"),
    show_default=True,
    help="Run folder.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.pth.")
@click.option("--workers", type=int, default=0, show_default=True, help="Data workers.")
@click.option("--amp", is_flag=True, help="Mixed precision (fp16 on CUDA, bf16 on CPU).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-every", type=int, default=1000, show_default=True)
@click.option("--val-every", type=int, default=1000, show_default=True)
@click.option("--log-every", type=int, default=100, show_default=True)
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for decoded images (.npy), built once.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda.")
@click.option("--deterministic", is_flag=True, help="Deterministic algorithms (slower).")
@click.option("--progress/--no-progress", default=True)
@_friendly_errors
def train(data_dirs, scale, scales, val_dirs, no_val, **options) -> None:
    """Train OverNet (paper recipe: L1, AdamP, lr halved every --decay, clip 10).

    Validates on --val, else on ../shared/data/Set5 when it exists (--no-val: none).
    Under `torchrun --nproc_per_node N` it trains data-parallel (NCCL/Gloo).
    """
    import os

    from overnet.train import TrainConfig
    from overnet.train import train as run_training

    is_main = int(os.environ.get("RANK", "0")) == 0  # only rank 0 of a torchrun job reports
    if no_val and val_dirs:
        raise click.UsageError("give --val or --no-val, not both")
    if not val_dirs and not no_val:
        if DEFAULT_TRAIN_VAL.is_dir():
            val_dirs = (DEFAULT_TRAIN_VAL,)
            if is_main:
                click.echo(
                    f"validating on {DEFAULT_TRAIN_VAL} (the default; --val DIR for another "
                    "folder, --no-val for none)",
                    err=True,
                )
        elif is_main:
            click.echo(
                f"no validation: {DEFAULT_TRAIN_VAL} not found and no --val given, so no "
                "best.safetensors",
                err=True,
            )
    config = TrainConfig(
        data=list(data_dirs), scales=_parse_scales(scale, scales), val=list(val_dirs), **options
    )
    result = run_training(config)
    if not is_main:
        return
    line = f"trained to step {result.step} in {result.run_dir}"
    if result.last_val is not None:
        line += (
            f"; validation PSNR-Y {result.last_val.psnr:.3f} dB (bicubic "
            f"{result.last_val.bicubic:.3f}), best {result.best_psnr:.3f} dB at step "
            f"{result.best_step}"
        )
    click.echo(line)


def _csv_list(text: str, kind, what: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated {what}, got {text!r}") from None
    if not values:
        raise click.BadParameter(f"no {what} given")
    return values


@main.command()
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Reference checkpoint (torch rows; exported once to a cached ONNX for onnxruntime/"
    "openvino). Default: SHARED/weights/OverNet_x2.pth.tar, else freshly initialised weights.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="[LABEL=]FILE",
    help="Another model file (ONNX, engine, checkpoint) run on every listed backend that can "
    "load it; repeatable. Its rows are named 'BACKEND [LABEL]'.",
)
@click.option("--scale", "scales", default="2", show_default=True, help="Scales, e.g. 2,3,4.")
@click.option(
    "--sizes",
    default="160x90",
    show_default=True,
    help="Input sizes WIDTHxHEIGHT, comma-separated (320x180 = 320 wide, 180 high).",
)
@click.option("--batch", "batches", default="1", show_default=True, help="Batch sizes, e.g. 1,4.")
@click.option(
    "--backends",
    default=None,
    help="Comma-separated runtime variants (default: torch,torch-cl,onnxruntime,openvino,"
    "openvino-bf16). Others: torch-bf16, ort-cuda, ort-trt, torch-cuda, torch-cuda-fp16, "
    "tensorrt.",
)
@click.option("--warmup", type=int, default=None, help="Warm-up runs after the first (default 1).")
@click.option("--warmup-time", type=float, default=None, help="Warm up for at least S seconds.")
@click.option("--iters", type=int, default=None, help="Timed runs (default 3).")
@click.option("--min-time", type=float, default=None, help="Time for at least S seconds.")
@click.option("--threads", type=int, default=None, help="CPU threads (default: runtime's).")
@click.option(
    "--isolate/--in-process",
    default=False,
    show_default=True,
    help="Run each row in a child process (clean memory figures; an OOM kill loses one row).",
)
@click.option("--baseline", default=None, help="Row name for the 'x base' ratio column.")
@click.option(
    "--shared",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with weights/ and data/Set5 (default: ../shared next to cwd or the repo).",
)
@click.option("--psnr/--no-psnr", default=True, show_default=True, help="Set5 PSNR (real weights).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write JSON (schema overnet.bench/1, documented in overnet/bench/report.py).",
)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="CSV.")
@click.option(
    "--markdown", "md_path", type=click.Path(path_type=Path), default=None, help="Markdown."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path),
    default=None,
    help="PNG: latency vs output megapixels (log) and throughput bars (needs matplotlib).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@_friendly_errors
def bench(
    weights,
    models,
    scales,
    sizes,
    batches,
    backends,
    warmup,
    warmup_time,
    iters,
    min_time,
    threads,
    isolate,
    baseline,
    shared,
    psnr,
    json_path,
    csv_path,
    md_path,
    plot_path,
    quiet,
) -> None:
    """Latency, throughput, memory and output agreement per backend x size x batch.

    With no arguments: a quick CPU suite (x2, 160x90 input, 1 warm-up + 3 timed runs) on the
    upstream x2 weights when found, else freshly initialised weights (labelled as such).
    """
    import shlex

    from overnet.bench.report import format_table, write_csv, write_json, write_markdown
    from overnet.bench.suite import (
        DEFAULT_BACKENDS,
        BenchConfig,
        check_backends,
        default_models,
        find_shared,
        model_entry,
        parse_sizes,
        run_suite,
    )

    scale_list = _csv_list(scales, float, "scales")
    batch_list = _csv_list(batches, int, "batch sizes")
    if any(b < 1 for b in batch_list):
        raise click.BadParameter("batch sizes must be at least 1", param_hint="--batch")
    backend_list = [b.strip() for b in backends.split(",")] if backends else list(DEFAULT_BACKENDS)
    check_backends(backend_list)
    size_list = parse_sizes(sizes)
    shared = shared if shared is not None else find_shared()
    entries, notes = default_models(weights, scale_list, shared)
    entries += [model_entry(m) for m in models]
    set5 = shared / "data" / "Set5" if shared is not None and psnr else None
    config = BenchConfig(
        models=entries,
        scales=scale_list,
        sizes=size_list,
        batches=batch_list,
        backends=backend_list,
        warmup=warmup if warmup is not None else (0 if warmup_time else 1),
        warmup_time=warmup_time or 0.0,
        iters=iters if iters is not None else (1 if min_time else 3),
        min_time=min_time or 0.0,
        threads=threads,
        isolate=isolate,
        baseline=baseline,
        set5=set5 if set5 is not None and set5.is_dir() else None,
        command=shlex.join(["overnet", *sys.argv[1:]]),
        notes=notes,
    )
    say = (lambda _m: None) if quiet else (lambda m: click.echo(m, err=True))
    report = run_suite(config, say=say)
    click.echo(format_table(report))
    for path, writer in ((json_path, write_json), (csv_path, write_csv), (md_path, write_markdown)):
        if path:
            click.echo(f"wrote {writer(report, path)}")
    if plot_path:
        from overnet.bench.plot import write_plot

        click.echo(f"wrote {write_plot(report, plot_path)}")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder (created when missing).",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    default=None,
    help="Exported model: .onnx (openvino/onnxruntime) or .engine (tensorrt).",
)
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoint (.pth/.pth.tar/.safetensors); ONNX backends export it once.",
)
@click.option(
    "--backend",
    default="auto",
    show_default=True,
    help="auto, openvino, onnxruntime, torch, tensorrt (or a variant: torch-cl, ...).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "bf16"]),
    default=None,
    help="Compute precision (default: the model file's / fp32).",
)
@click.option("--scale", type=float, default=None, help="Target scale (default: the model's).")
@click.option(
    "--tile",
    type=int,
    default=None,
    help="Tile side in input pixels (default: from --max-memory; whole image if it fits).",
)
@click.option(
    "--overlap",
    type=int,
    default=16,
    show_default=True,
    help="Input pixels shared by neighbouring tiles (blended).",
)
@click.option(
    "--max-memory",
    default="1.5GB",
    show_default=True,
    help="Working-memory budget for inference; sets the tile size.",
)
@click.option("--batch", "tile_batch", type=int, default=None, help="Tiles per run.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "jpg", "webp", "tiff"]),
    default=None,
    help="Output format (default: the input's, png when unwritable).",
)
@click.option("--suffix", default="", help="Appended to output names, e.g. _x2.")
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=95,
    show_default=True,
    help="JPEG/WebP quality.",
)
@click.option("--recursive", is_flag=True, help="Descend into subfolders of input folders.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
@click.option(
    "--max-pixels",
    type=float,
    default=100e6,
    show_default=True,
    help="Refuse larger inputs (decompression-bomb guard).",
)
@click.option("--threads", type=int, default=None, help="CPU threads (default: all cores).")
@click.option("--progress/--no-progress", default=True)
@_friendly_errors
def upscale(
    inputs,
    out_dir,
    model,
    weights,
    backend,
    device,
    precision,
    scale,
    tile,
    overlap,
    max_memory,
    tile_batch,
    fmt,
    suffix,
    quality,
    recursive,
    overwrite,
    max_pixels,
    threads,
    progress,
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


if __name__ == "__main__":
    main()
