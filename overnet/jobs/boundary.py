"""The one error boundary of every path: whatever one item raises fails that item alone.

Local batches, videos, Ray actors and the service all turn an exception met while
planning, reading, upscaling or writing one item into one line naming the item and the
reason, and go on with the rest. Only ``KeyboardInterrupt`` and ``SystemExit`` (and
other ``BaseException`` s that are not ``Exception`` s) pass through and stop the run.
An unexpected exception (a bug of ours or a library's) still fails only its item: the
line says "internal error" with the exception, and the traceback goes to the
``overnet.jobs`` logger (shown by ``--verbose``).
"""

from __future__ import annotations

import logging
import traceback

from overnet.errors import OverNetError

LOG = logging.getLogger("overnet.jobs")
# A library logs nowhere unless its user says so (`overnet -v` or their own handlers):
# without this, Python's last-resort handler would print every traceback on stderr.
logging.getLogger("overnet").addHandler(logging.NullHandler())

#: the steps of one item, as failure lines name them
STEPS = ("plan the output", "read the input", "upscale", "write the output")


def failure_reason(exc: BaseException, doing: str, name: str) -> str:
    """One line for ``exc`` raised while ``doing`` (one of STEPS) on the item ``name``.

    ``OverNetError``s are already written for users and are kept as they are; memory and
    OS errors say which step on which file; anything else is an internal error.
    """
    if isinstance(exc, OverNetError):
        text = " ".join(str(exc).split("\n")) or type(exc).__name__
        return text if name in text else f"{name}: {text}"
    if isinstance(exc, MemoryError):
        return f"out of memory while trying to {doing} {name}; lower --max-memory or --tile"
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"could not {doing} {name}: {reason}"
    LOG.error("internal error on %s while trying to %s:\n%s", name, doing, _trace(exc))
    text = str(exc).splitlines()[0] if str(exc) else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return (
        f"internal error while trying to {doing} {name} ({detail}); the traceback is in "
        "the log (--verbose)"
    )


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class Step:
    """Names the step an item is in, so a failure can say which one failed::

    step = Step(name)
    try:
        step("read the input"); image = ...
        step("upscale"); ...
    except Exception as exc:
        reason = step.failure(exc)
    """

    def __init__(self, name: str) -> None:
        self.name = name
        #: the output's name, once planned: a failed write names the output
        self.output = ""
        self.doing = STEPS[0]

    def __call__(self, doing: str) -> None:
        self.doing = doing

    def failure(self, exc: BaseException) -> str:
        writing = self.doing == "write the output" and self.output
        return failure_reason(exc, self.doing, self.output if writing else self.name)


def failure_line(name: str, error: str) -> str:
    """A report's line for a failed item: its error, which names it (prefixed when an
    error from elsewhere does not)."""
    return f"  failed: {error}" if name in error else f"  failed: {name}: {error}"
