"""`overnet train`: the paper's recipe, defaults from ``overnet.train.TrainConfig``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from overnet.cli.library import LibraryChoice, LibraryHelpOption, field_default, joined
from overnet.cli.options import (
    device_option,
    integer_scale,
    progress_option,
    scale_option,
    scales_option,
    stack,
)

#: `overnet train` validates here when no --val is given and the folder exists.
DEFAULT_TRAIN_VAL = Path("..") / "shared" / "data" / "Set5"

_CONFIG = ("overnet.train.config", "TrainConfig")


def _setting(name: str, type: Any, help: str) -> Any:
    """--NAME with TrainConfig's default for the field NAME."""
    return click.option(
        "--" + name.replace("_", "-"), type=type, default=field_default(*_CONFIG, name), help=help
    )


def _lr_help() -> str:
    from overnet.train.config import FINETUNE_LR, RECIPE_LR

    return f"Initial learning rate (default: {RECIPE_LR:g}; {FINETUNE_LR:g} with --init)."


_recipe = stack(
    click.option(
        "--upscale",
        type=int,
        default=None,
        help="Overscaling factor (default: the upstream pairing, 3 for x2, 4 for x3).",
    ),
    _setting("channels", int, "Feature width F."),
    _setting("patch", int, "LR patch side."),
    _setting("batch", int, "Global batch."),
    _setting("steps", int, "Training steps."),
    click.option("--lr", type=float, default=None, cls=LibraryHelpOption, describe=_lr_help),
    _setting("decay", int, "Halve the learning rate every N steps."),
    _setting("clip", float, "Gradient norm clip."),
    _setting("optimizer", LibraryChoice("overnet.train.config", "OPTIMIZERS"), "Optimizer."),
    click.option("--init", type=click.Path(path_type=Path), default=None, help="Start weights."),
)
_run = stack(
    _setting("out", click.Path(path_type=Path), "Run folder."),
    click.option("--resume", is_flag=True, help="Continue the run in --out from last.pth."),
    _setting("workers", int, "Data workers."),
    click.option("--amp", is_flag=True, help="Mixed precision (fp16 on CUDA, bf16 on CPU)."),
    _setting("seed", int, "Random seed."),
    _setting("save_every", int, "Save last.pth every N steps."),
    _setting("val_every", int, "Validate every N steps."),
    _setting("log_every", int, "Log every N steps."),
    click.option(
        "--cache",
        type=click.Path(path_type=Path),
        default=None,
        help="Folder for decoded images (.npy), built once.",
    ),
    device_option(field_default(*_CONFIG, "device"), help="Device: auto, cpu, cuda."),
    click.option("--deterministic", is_flag=True, help="Deterministic algorithms (slower)."),
    progress_option(),
)


@click.command()
@click.option(
    "--data",
    "data_dirs",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="Training folder: HR images, or DIV2K-style HR + LR_bicubic/X{s} (repeatable).",
)
@scale_option("Train one integer scale (the one-value form of --scales).")
@scales_option(
    "Integer scales of one multi-scale model.", field_default(*_CONFIG, "scales", joined)
)
@_recipe
@click.option(
    "--val",
    "val_dirs",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Validation folder, e.g. Set5 (repeatable); best.safetensors by its PSNR. "
    f"Default: {DEFAULT_TRAIN_VAL} when that folder exists.",
)
@click.option("--no-val", is_flag=True, help="No validation (and no best.safetensors).")
@_run
def train(
    data_dirs: tuple[Path, ...],
    scale: float | None,
    scales: list[float],
    val_dirs: tuple[Path, ...],
    no_val: bool,
    **options: Any,
) -> None:
    """Train OverNet (paper recipe: L1, AdamP, lr halved every --decay, clip 10).

    Validates on --val, else on ../shared/data/Set5 when it exists (--no-val: none).
    Under `torchrun --nproc_per_node N` it trains data-parallel (NCCL/Gloo).
    """
    from overnet.train import TrainConfig
    from overnet.train import train as run_training

    is_main = int(os.environ.get("RANK", "0")) == 0  # only rank 0 of a torchrun job reports
    wanted = _scales(scale, scales)
    if no_val and val_dirs:
        raise click.UsageError("give --val or --no-val, not both")
    if not val_dirs and not no_val:
        val_dirs = _default_val(is_main)
    config = TrainConfig(data=list(data_dirs), scales=wanted, val=list(val_dirs), **options)
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


def _scales(scale: float | None, scales: list[float]) -> list[int]:
    """--scale S is the one-value form of --scales; both must be integers."""
    scales_given = click.get_current_context().get_parameter_source("scales")
    if scale is not None and scales_given != ParameterSource.DEFAULT:
        raise click.UsageError("give --scale or --scales, not both")
    option, wanted = ("--scale", [scale]) if scale is not None else ("--scales", scales)
    why = "training pairs HR images with LR images of an integer scale"
    return [integer_scale(s, option, why) for s in wanted]


def _default_val(is_main: bool) -> tuple[Path, ...]:
    """../shared/data/Set5 when it exists (said on stderr by rank 0), else nothing."""
    if DEFAULT_TRAIN_VAL.is_dir():
        if is_main:
            click.echo(
                f"validating on {DEFAULT_TRAIN_VAL} (the default; --val DIR for another "
                "folder, --no-val for none)",
                err=True,
            )
        return (DEFAULT_TRAIN_VAL,)
    if is_main:
        click.echo(
            f"no validation: {DEFAULT_TRAIN_VAL} not found and no --val given, so no "
            "best.safetensors",
            err=True,
        )
    return ()
