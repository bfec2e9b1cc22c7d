"""`overnet check`: re-validate an exported ONNX file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from overnet.cli.options import weights_option


@click.command()
@click.argument("model", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@weights_option("Compare numerically against these PyTorch weights.")
@click.option(
    "--sample-image",
    type=click.Path(path_type=Path),
    default=None,
    help="A real LR image for the comparison (a built-in pattern otherwise).",
)
def check(model: Path, weights: Path | None, sample_image: Path | None) -> None:
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
