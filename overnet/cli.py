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
    """Run the main job on a built-in default (upstream x2 weights when available)."""
    from overnet.info import describe, format_info

    weights = shared / "weights" / "OverNet_x2.pth.tar"
    if not weights.exists():
        click.echo(f"({weights} not found: describing the x2 architecture without weights)")
        click.echo(format_info(describe(None)))
        return
    click.echo(format_info(describe(weights)))


if __name__ == "__main__":
    main()
