"""`overnet demo`: the upstream x2 model described and evaluated on Set5."""

from __future__ import annotations

from pathlib import Path

import click

from overnet.cli.eval import eval_


@click.command()
@click.option(
    "--shared",
    type=click.Path(path_type=Path),
    default=Path("../shared"),
    help="Folder holding weights/ and data/ (upstream files).",
)
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
        click.get_current_context().invoke(
            eval_,
            weights=weights,
            data_dirs=(set5,),
            scale=None,
            protocol="paper",
            backend="torch",
            tile=None,
            device="cpu",
            save_dir=None,
            json_path=None,
            csv_path=None,
            compare_paper=True,
            progress=True,
        )
