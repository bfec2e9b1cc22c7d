"""Option groups and parameter types shared by the `overnet` commands.

One syntax everywhere: image sizes are WIDTHxHEIGHT and memory is a number with a unit
(MB = 10^6 bytes, MiB = 2^20; :mod:`overnet.units`); ``--scale`` is the target scale
factor, a float, and ``--scales 2,3`` where a command takes several; ``--tile 0`` is
the whole image. TensorRT profile shapes alone stay NxCxHxW, TensorRT's own order.

Defaults, choices and names come from the library (:mod:`overnet.cli.library`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from overnet.cli.library import LibraryHelpOption, constant
from overnet.errors import InputError
from overnet.units import parse_memory, parse_size

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

#: help text of every memory option and of every size option
MEMORY_HELP = "MEMORY: 800MB, 1.5GB (powers of 1000) or 512MiB, 4GiB (powers of 1024)"
SIZE_HELP = "WIDTHxHEIGHT: 320x180 is 320 wide, 180 high"
#: help text of TensorRT profile shapes
SHAPE_HELP = "NxCxHxW (batch x 3 x height x width: TensorRT's and trtexec's order)"


# -- parameter types ---------------------------------------------------------------------
class MemoryType(click.ParamType):
    """``1.5GB``, ``800MB``, ``4GiB`` -> bytes (a bare number is refused)."""

    name = "memory"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        try:
            return parse_memory(value)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class SizeType(click.ParamType):
    """``320x180`` -> (320, 180): width, height."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        try:
            return parse_size(value)
        except InputError as exc:
            self.fail(str(exc), param, ctx)


class ScaleType(click.ParamType):
    """A target scale factor: ``2``, ``2.5`` -> float > 0."""

    name = "scale"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        try:
            scale = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a scale factor such as 2 or 2.5, got {value!r}", param, ctx)
        if not 0 < scale < math.inf:
            self.fail(f"a scale factor must be positive, got {value!r}", param, ctx)
        return scale


class ListType(click.ParamType):
    """Comma-separated values of another type: ``2,3`` -> [2.0, 3.0]."""

    name = "list"

    def __init__(self, item: click.ParamType, what: str) -> None:
        self.item = item
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, list):
            return value
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not parts:
            self.fail(f"no {self.what} given", param, ctx)
        return [self.item.convert(p, param, ctx) for p in parts]


MEMORY = MemoryType()
SIZE = SizeType()
SIZES = ListType(SIZE, "sizes")
SCALE = ScaleType()
SCALES = ListType(SCALE, "scales")
COUNTS = ListType(click.IntRange(min=1), "numbers")


def integer_scale(value: float, option: str, why: str) -> int:
    """``value`` as an int, or a usage error saying ``why`` an integer is needed."""
    if not float(value).is_integer():
        raise click.BadParameter(
            f"{why}, so it must be an integer such as 2 or 3, got {value:g}",
            param_hint=f"'{option}'",
        )
    return int(value)


# -- options -----------------------------------------------------------------------------
def stack(*decorators: Decorator) -> Decorator:
    """Several option decorators as one, applied as if listed top to bottom."""

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def backend_names() -> str:
    """The backend and variant names ``overnet.runtime`` declares, and those installed."""
    from overnet.runtime import BACKENDS, VARIANTS, available_backends

    variants = [name for name in VARIANTS if name not in BACKENDS]
    installed = ", ".join(available_backends()) or "none"
    return (
        f"Backends: {', '.join(BACKENDS)}; variants: {', '.join(variants)} "
        f"(installed here: {installed})."
    )


def backend_option(default: str, intro: str = "auto, a backend or a variant.") -> Decorator:
    """--backend; its help lists the names overnet.runtime declares."""
    return click.option(
        "--backend",
        default=default,
        cls=LibraryHelpOption,
        describe=lambda: f"{intro} {backend_names()}",
    )


def device_option(default: Any, help: str) -> Decorator:
    return click.option("--device", default=default, help=help)


def weights_option(help: str, required: bool = False) -> Decorator:
    return click.option("--weights", type=click.Path(path_type=Path), required=required, help=help)


#: the pretrained model a command runs when given no --model or --weights, and the one
#: a target --scale above 2 picks (x2 serves scales up to 3, x3 up to 4)
DEFAULT_PRETRAINED = "x2"
LARGE_SCALE_PRETRAINED = "x3"


def default_pretrained(scale: float | None) -> str:
    """``x2``, or ``x3`` for a target ``--scale`` above 2 (2.5, 3, 4)."""
    return LARGE_SCALE_PRETRAINED if scale is not None and scale > 2 else DEFAULT_PRETRAINED


def choose_model(
    model: Any, weights: Any, scale: float | None, *, model_option: bool = True
) -> Any:
    """The model a runtime command opens: ``--model``, ``--weights``, or else the pretrained
    :func:`default_pretrained` name, announced on stderr (it is the command's first line).
    ``model_option``: the command has ``--model`` besides ``--weights``."""
    if model is not None and weights is not None:
        raise InputError("give --model (exported file) or --weights (checkpoint), not both")
    if model is not None:
        return model
    if weights is not None:
        return weights
    name = default_pretrained(scale)
    given = "--model or --weights" if model_option else "--weights"
    why = f" for --scale {scale:g}" if scale is not None and name != DEFAULT_PRETRAINED else ""
    click.echo(
        f"no {given} given: using the pretrained {name} model{why} (as --weights {name})",
        err=True,
    )
    return name


def fetch_if_pretrained(model: Any) -> Any:
    """``model`` as it is, or for a pretrained name (``x2``) that is no file here its cached
    weights, fetched on first use with the progress lines on stderr (stdout is the report)."""
    if not isinstance(model, (str, Path)) or Path(model).exists():
        return model
    from overnet.weights import pretrained

    if pretrained.canonical_name(str(model)) is None:
        return model
    return pretrained.resolve(str(model), say=lambda line: click.echo(line, err=True))


def scale_option(help: str) -> Decorator:
    return click.option("--scale", type=SCALE, default=None, metavar="FLOAT", help=help)


def scales_option(help: str, default: Any = None) -> Decorator:
    return click.option("--scales", type=SCALES, default=default, metavar="2,3", help=help)


def memory_option(*decls: str, help: str, default: Any = None) -> Decorator:
    return click.option(
        *decls, type=MEMORY, default=default, metavar="MEMORY", help=f"{help}; {MEMORY_HELP}."
    )


def size_option(*decls: str, help: str, default: Any = None) -> Decorator:
    return click.option(
        *decls, type=SIZE, default=default, metavar="WIDTHxHEIGHT", help=f"{help}; {SIZE_HELP}."
    )


def tile_option(default: str) -> Decorator:
    return click.option(
        "--tile",
        type=click.IntRange(min=0),
        default=None,
        metavar="PIXELS",
        help=f"Tile side in input pixels; 0: the whole image, no tiling. Default: {default}.",
    )


def upscaler_options() -> Decorator:
    """--overlap and --max-memory, with the Upscaler's defaults."""
    return stack(
        click.option(
            "--overlap",
            type=click.IntRange(min=0),
            default=constant("overnet.runtime.upscaler", "DEFAULT_OVERLAP"),
            help="Input pixels shared by neighbouring tiles (blended).",
        ),
        memory_option(
            "--max-memory",
            default=constant("overnet.runtime.upscaler", "DEFAULT_MAX_MEMORY"),
            help="Working-memory budget for inference; sets the tile size",
        ),
    )


def profile_options() -> Decorator:
    """TensorRT's --min/--opt/--max optimisation-profile shapes (NxCxHxW)."""
    where = "overnet.formats.profile"
    shapes = (
        ("min", "DEFAULT_MIN", "smallest"),
        ("opt", "DEFAULT_OPT", "tuned-for"),
        ("max", "DEFAULT_MAX", "largest"),
    )
    return stack(
        *(
            click.option(
                f"--{name}",
                f"{name}_shape",
                default=constant(where, default),
                metavar="NxCxHxW",
                help=f"tensorrt: {what} input of the optimisation profile, {SHAPE_HELP}.",
            )
            for name, default, what in shapes
        )
    )


def progress_option() -> Decorator:
    return click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
