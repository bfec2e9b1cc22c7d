"""Option defaults, choices and help read from the library when click needs them.

Click evaluates option declarations when `overnet` starts; reading the library's
constants there would import numpy (``overnet.runtime``) or torch (``overnet.train``)
for every command, ``--help`` included. These wrappers read them on first use instead
(to parse, or to show ``--help``), and read them again each time: nothing is copied, so
a changed library constant changes the command line with it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import click


class LibraryDefault:
    """A click default read from the library on first use; ``--help`` shows its value.

    ``text`` turns the library's value into what the option parses (a list into
    ``2,3``); the value is read again on each use, never copied here.
    """

    def __init__(self, read: Callable[[], Any], text: Callable[[Any], Any] | None = None):
        self._read = read
        self._text = text

    def __call__(self) -> Any:
        value = self._read()
        return self._text(value) if self._text is not None else value

    def __str__(self) -> str:
        return str(self())

    def __bool__(self) -> bool:  # click shows a --flag/--no-flag default by its truth
        return bool(self())


def _attribute(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def constant(module: str, name: str, text: Callable[[Any], Any] | None = None) -> LibraryDefault:
    """A module constant: ``constant("overnet.export", "DEFAULT_OPSET")``."""
    return LibraryDefault(lambda: _attribute(module, name), text)


def field_default(
    module: str, cls: str, name: str, text: Callable[[Any], Any] | None = None
) -> LibraryDefault:
    """The default of a dataclass field (its ``default_factory`` called if it has one)."""

    def read() -> Any:
        found = next(f for f in dataclasses.fields(_attribute(module, cls)) if f.name == name)
        if found.default is dataclasses.MISSING:
            return found.default_factory()  # type: ignore[misc]
        return found.default

    return LibraryDefault(read, text)


def parameter_default(module: str, function: str, name: str) -> LibraryDefault:
    """The default of a function's parameter."""
    return LibraryDefault(
        lambda: inspect.signature(_attribute(module, function)).parameters[name].default
    )


def joined(values: Sequence[Any]) -> str:
    """[2.0, 3.0] -> '2,3'; [(160, 90)] -> '160x90': the text the list options parse."""
    parts = []
    for v in values:
        if isinstance(v, tuple):
            parts.append("x".join(str(int(x)) for x in v))
        elif isinstance(v, float):
            parts.append(f"{v:g}")
        else:
            parts.append(str(v))
    return ",".join(parts)


class LibraryChoice(click.Choice):
    """A ``click.Choice`` over names the library declares (a tuple or a dict's keys)."""

    def __init__(self, module: str, name: str) -> None:  # no super().__init__: no copy
        self._where = (module, name)
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(_attribute(*self._where))


class LibraryHelpOption(click.Option):
    """An option whose help names library values, read only when the help is shown."""

    def __init__(self, *args: Any, describe: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.describe = describe

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = self.describe()
        return super().get_help_record(ctx)
