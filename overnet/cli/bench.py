"""`overnet bench`: the benchmark suite of ``overnet.bench.suite``, defaults from it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from overnet.cli.library import LibraryHelpOption, constant, field_default, joined
from overnet.cli.options import (
    COUNTS,
    SIZES,
    backend_names,
    scale_option,
    scales_option,
    stack,
    weights_option,
)

_SUITE = "overnet.bench.suite"


def _config(name: str, text: Any = None) -> Any:
    """BenchConfig's default for the field ``name``."""
    return field_default(_SUITE, "BenchConfig", name, text)


def _backends_help() -> str:
    return (
        f"Comma-separated runtime variants. {backend_names()} 'auto': the backend and "
        "precision `overnet upscale` picks by default."
    )


_timing = stack(
    click.option(
        "--warmup",
        type=click.IntRange(min=0),
        default=_config("warmup"),
        help="Warm-up runs after the first (0 when only --warmup-time is given).",
    ),
    click.option(
        "--warmup-time", type=float, default=_config("warmup_time"), help="Warm up >= S s."
    ),
    click.option(
        "--iters",
        type=click.IntRange(min=1),
        default=_config("iters"),
        help="Timed runs (1 when only --min-time is given).",
    ),
    click.option("--min-time", type=float, default=_config("min_time"), help="Time >= S s."),
    click.option("--threads", type=int, default=None, help="CPU threads (default: runtime's)."),
    click.option(
        "--isolate/--in-process",
        default=_config("isolate"),
        help="Run each row in a child process (clean memory figures; an OOM kill loses one row).",
    ),
)
_reports = stack(
    click.option(
        "--json",
        "json_path",
        type=click.Path(path_type=Path),
        default=None,
        help="Write JSON (schema overnet.bench/1, documented in overnet/bench/report.py).",
    ),
    click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="CSV."),
    click.option(
        "--markdown", "md_path", type=click.Path(path_type=Path), default=None, help="Markdown."
    ),
    click.option(
        "--plot",
        "plot_path",
        type=click.Path(path_type=Path),
        default=None,
        help="PNG: latency vs output megapixels (log) and throughput bars (needs matplotlib).",
    ),
)


@click.command()
@weights_option(
    "Reference checkpoint (torch rows; exported once to a cached ONNX for onnxruntime/"
    "openvino). Default: SHARED/weights/OverNet_x2.pth.tar, else freshly initialised weights."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="[LABEL=]FILE",
    help="Another model file (ONNX, engine, checkpoint, .tflite, .pte) run on every listed "
    "backend that can load it; repeatable. Its rows are named 'BACKEND [LABEL]'.",
)
@scale_option("One target scale factor (the one-value form of --scales).")
@scales_option("Target scale factors, e.g. 2,3,4.", _config("scales", joined))
@click.option(
    "--sizes",
    type=SIZES,
    default=constant(_SUITE, "DEFAULT_SIZES", joined),
    metavar="WIDTHxHEIGHT,...",
    help="Input sizes, comma-separated (WIDTHxHEIGHT: 320x180 is 320 wide, 180 high).",
)
@click.option(
    "--batch",
    "batches",
    type=COUNTS,
    default=_config("batches", joined),
    metavar="N,...",
    help="Batch sizes, e.g. 1,4.",
)
@click.option(
    "--backends",
    default=constant(_SUITE, "DEFAULT_BACKENDS", joined),
    cls=LibraryHelpOption,
    describe=_backends_help,
)
@_timing
@click.option("--baseline", default=None, help="Row name for the 'x base' ratio column.")
@click.option(
    "--shared",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with weights/ and data/Set5 (default: ../shared next to cwd or the repo).",
)
@click.option("--psnr/--no-psnr", default=True, help="Set5 PSNR (real weights).")
@_reports
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def bench(
    weights: Path | None,
    models: tuple[str, ...],
    scale: float | None,
    scales: list[float],
    sizes: list[tuple[int, int]],
    batches: list[int],
    backends: str,
    warmup: int,
    warmup_time: float,
    iters: int,
    min_time: float,
    shared: Path | None,
    psnr: bool,
    json_path: Path | None,
    csv_path: Path | None,
    md_path: Path | None,
    plot_path: Path | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Latency, throughput, memory and output agreement per backend x size x batch.

    With no arguments: a quick CPU suite (x2, one small input, 1 warm-up + 3 timed runs) on
    the upstream x2 weights when found (../shared or fetched), else freshly initialised
    weights (labelled as such).
    """
    from overnet.bench.models import default_models, model_entry
    from overnet.bench.report import format_table, write_csv, write_json, write_markdown
    from overnet.bench.suite import BenchConfig, check_backends, run_suite
    from overnet.shared import find_shared

    ctx = click.get_current_context()

    def defaulted(name: str) -> bool:
        return ctx.get_parameter_source(name) == ParameterSource.DEFAULT

    if scale is not None and not defaulted("scales"):
        raise click.UsageError("give --scale or --scales, not both (--scales 2,3 runs both)")
    scale_list = [scale] if scale is not None else scales
    backend_list = [b.strip() for b in backends.split(",") if b.strip()]
    check_backends(backend_list)
    shared = shared if shared is not None else find_shared()
    entries, notes = default_models(weights, scale_list, shared)
    entries += [model_entry(m) for m in models]
    set5 = shared / "data" / "Set5" if shared is not None and psnr else None
    config = BenchConfig(
        models=entries,
        scales=scale_list,
        sizes=sizes,
        batches=batches,
        backends=backend_list,
        warmup=0 if warmup_time and defaulted("warmup") else warmup,
        warmup_time=warmup_time,
        iters=1 if min_time and defaulted("iters") else iters,
        min_time=min_time,
        set5=set5 if set5 is not None and set5.is_dir() else None,
        command=shlex.join(["overnet", *sys.argv[1:]]),
        notes=notes,
        **options,
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
