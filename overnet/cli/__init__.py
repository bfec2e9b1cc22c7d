"""`overnet` command line: one small module per command, each a thin layer over the
Python API; shared options in :mod:`overnet.cli.options`, errors in
:mod:`overnet.cli.errors`.

Importing this package imports click and nothing heavy: each command imports the
library when it runs, and option defaults are read from the library when needed.
"""

from __future__ import annotations

import click

from overnet import __version__
from overnet.cli.bench import bench
from overnet.cli.check import check
from overnet.cli.demo import demo
from overnet.cli.errors import OverNetGroup
from overnet.cli.eval import eval_
from overnet.cli.export import export
from overnet.cli.info import info
from overnet.cli.serve import serve
from overnet.cli.train import train
from overnet.cli.upscale import upscale
from overnet.cli.weights import weights


@click.group(
    cls=OverNetGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.version_option(__version__, prog_name="overnet")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log details on stderr, with the traceback of any internal error a file met.",
)
def main(verbose: bool) -> None:
    """OverNet super-resolution: weights, export, runtime, eval and benchmarks.

    Sizes are WIDTHxHEIGHT (320x180: 320 wide, 180 high); memory is a number with a unit
    (800MB, 1.5GB: powers of 1000; 512MiB, 4GiB: powers of 1024); --scale is the target
    scale factor (2, 2.5) and --scales 2,3 lists several; --tile 0 is the whole image.
    """
    if verbose:
        import logging

        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("overnet")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


for _command in (info, demo, eval_, export, check, train, bench, upscale, serve, weights):
    main.add_command(_command)

__all__ = ["main"]
