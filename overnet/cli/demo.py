"""`overnet demo`: weights, an upscaled sample image, an ONNX export and Set5 figures."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--shared",
    type=click.Path(path_type=Path),
    default=Path("../shared"),
    help="Folder holding weights/ and data/Set5 (used when present).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("demo-out"),
    help="Folder for the demo's files.",
)
def demo(shared: Path, out_dir: Path) -> None:
    """Fetch the x2 weights if needed, upscale a sample image, export ONNX, evaluate Set5.

    Steps that cannot run here (no network, no Set5) are listed with what to run; the
    exit status is 1 only when a step that should have worked failed.
    """
    from overnet.demo import run_demo

    report = run_demo(shared if shared.is_dir() else None, out_dir, say=click.echo)
    click.echo()
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)
