"""`overnet weights`: pretrained weights by name (fetch, list where they are kept)."""

from __future__ import annotations

from pathlib import Path

import click

from overnet.cli.errors import OverNetGroup


@click.group(cls=OverNetGroup)
def weights() -> None:
    """Pretrained weights by name (x2, x3): fetched once, verified, cached.

    Anywhere a weights file is taken (--weights, load_model), x2 and x3 name them and are
    fetched on first use. OVERNET_WEIGHTS_URL sets a mirror; OVERNET_CACHE the cache.
    """


@weights.command()
@click.argument("names", nargs=-1)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Import a file downloaded by hand (checked against the pinned sha256).",
)
@click.option("--force", is_flag=True, help="Download and convert again.")
def fetch(names: tuple[str, ...], source: Path | None, force: bool) -> None:
    """Download, verify and convert NAMES (x2, x3 or all; default x2)."""
    from overnet.weights import pretrained

    wanted = list(names) or ["x2"]
    if "all" in wanted:
        wanted = list(pretrained.PRETRAINED)
    if source is not None and len(wanted) != 1:
        raise click.UsageError("--from FILE imports one model: name exactly one (x2 or x3)")
    for name in wanted:
        path = pretrained.fetch(name, source=source, force=force, say=click.echo)
        click.echo(f"{name}: {path}")


@weights.command("list")
def list_() -> None:
    """Each pretrained name, its upstream URL and whether it is cached here."""
    from overnet.weights import pretrained

    for name in pretrained.PRETRAINED:
        path = pretrained.weights_path(name)
        state = f"cached at {path}" if path.is_file() else "not cached"
        click.echo(f"{name}: {state}; from {pretrained.url_for(name)}")
