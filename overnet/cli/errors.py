"""The one place where the command line turns library errors into messages."""

from __future__ import annotations

from typing import Any

import click

from overnet.errors import OverNetError

#: exit status of a problem the user can fix (click uses 2 for usage errors too)
USER_ERROR = 2


class OverNetGroup(click.Group):
    """A click group whose commands report an ``OverNetError`` as one line on stderr,
    ``error: <message>``, with exit status 2 and no traceback. Other exceptions are bugs
    and keep their traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OverNetError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(USER_ERROR)
