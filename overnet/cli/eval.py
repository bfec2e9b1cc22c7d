"""`overnet eval`: PSNR/SSIM on datasets, through PyTorch or any runtime backend."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from overnet.cli.library import LibraryChoice
from overnet.cli.options import (
    backend_option,
    choose_model,
    device_option,
    fetch_if_pretrained,
    integer_scale,
    progress_option,
    scale_option,
    tile_option,
    weights_option,
)

#: NCHW float32 numpy -> NCHW float32 numpy
Predictor = Callable[[Any], Any]


def _torch_predictor(weights: Path, scale: float | None, device: str) -> tuple[float, Predictor]:
    """The PyTorch model called directly (whole images), as upstream evaluated it."""
    import torch

    from overnet.weights import load_model

    model = load_model(weights, scale, device=device)

    def predict(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    return model.config.scale, predict


def _session_predictor(
    weights: Path,
    backend: str,
    device: str,
    scale: float | None,
    tile: int | None,
    overscale: bool = False,
) -> tuple[float, Predictor]:
    """A runtime session: whole images (tile None or 0) or tiles of ``tile`` input pixels."""
    from overnet.runtime import open_session

    session = open_session(
        weights, backend, device=device, scale=scale, overscale=True if overscale else None
    )
    click.echo(f"backend: {session.info.describe()}", err=True)
    if not tile and session.info.max_hw is None:
        return session.info.scale, session.run
    from overnet.runtime.upscaler import Upscaler

    # a fixed-tile file (LiteRT, ExecuTorch) or an engine profile: tiles within its shape
    return session.info.scale, Upscaler(session, tile=tile or None).upscale_array


@click.command("eval")
@weights_option(
    "Checkpoint (.pth/.pth.tar/.safetensors), exported model or pretrained name (x2, x3). "
    "Default: the pretrained x2 (x3 for --scale 3)."
)
@click.option(
    "--data",
    "data_dirs",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="Dataset folder (repeat for several).",
)
@scale_option(
    "Target scale factor (default: the weights'); an integer, the dataset's LR folder X2, X3."
)
@click.option(
    "--protocol",
    type=LibraryChoice("overnet.eval.evaluate", "PROTOCOLS"),
    default="paper",
    help="paper: float output (upstream); standard: output rounded to uint8 first.",
)
@backend_option("torch", intro="torch (the model called directly), auto, a backend or a variant.")
@tile_option("the whole image (exact figures)")
@device_option("cpu", help="Device: cpu, cuda[:N].")
@click.option(
    "--overscale",
    is_flag=True,
    help="Run the graph that ends at the overscaled features and finish on the host (what "
    "fractional scales use): checks that path against the published figures.",
)
@click.option(
    "--save-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write SR images here (PNG, 8-bit).",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="JSON.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="CSV.")
@click.option("--compare-paper/--no-compare-paper", default=True, help="Paper's figures row.")
@progress_option()
def eval_(
    weights: Path | None,
    data_dirs: tuple[Path, ...],
    scale: float | None,
    protocol: str,
    backend: str,
    tile: int | None,
    device: str,
    overscale: bool,
    save_dir: Path | None,
    json_path: Path | None,
    csv_path: Path | None,
    compare_paper: bool,
    progress: bool,
) -> None:
    """PSNR/SSIM on the Y channel (border = scale) for each image and dataset."""
    from overnet.eval import discover, evaluate
    from overnet.eval.report import format_table, write_csv, write_json

    why = "evaluation reads the dataset's LR images of one integer scale (X2, X3)"
    if scale is not None:
        integer_scale(scale, "--scale", why)
    weights = fetch_if_pretrained(choose_model(None, weights, scale, model_option=False))
    if backend == "torch" and not tile and not overscale:
        model_scale, predict = _torch_predictor(weights, scale, device)
    else:
        model_scale, predict = _session_predictor(weights, backend, device, scale, tile, overscale)
    int_scale = integer_scale(model_scale, "--scale", why)
    results, failed = [], 0
    for folder in data_dirs:
        result = evaluate(discover(folder, int_scale), predict, protocol, save_dir, progress)
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
