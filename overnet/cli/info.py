"""`overnet info`: configuration, parameters, multiply-adds and size of a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import click

from overnet.cli.options import scale_option


@click.command()
@click.argument("weights", required=False, type=click.Path(path_type=Path))
@scale_option("Target scale factor, e.g. 2 or 2.5 (default: the weights').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(weights: Path | None, scale: float | None, as_json: bool) -> None:
    """Show config, parameters, multiply-adds and size of WEIGHTS (default: x2 architecture)."""
    from overnet.info import describe, format_info

    result = describe(weights, scale)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_info(result))
