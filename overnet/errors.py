"""Exceptions shared by every layer (no third-party imports).

Which kind of failure it is decides who can fix it: ``InputError`` is the caller's input
(a path, an array, an option), ``ModelLoadError`` a model file a runtime could not load,
``SessionClosedError`` a session used after ``close()``, ``MissingDependencyError`` an
optional package that is not installed. Each keeps its cause (``raise ... from exc``).
"""

from __future__ import annotations


class OverNetError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class WeightsError(OverNetError):
    """A weights file is missing, unreadable, unsafe or not an OverNet checkpoint."""


class MissingDependencyError(OverNetError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class InputError(OverNetError):
    """An input (image, array, option) is not what the operation expects."""


class ModelLoadError(OverNetError):
    """A runtime could not load a model file (damaged, wrong version, out of memory...)."""


class SessionClosedError(OverNetError):
    """A session was used after ``close()``; open a new one."""


class ExportError(OverNetError):
    """An export or its validation failed; nothing was written."""


class PixelLimitError(InputError):
    """An image has more pixels than the decompression-bomb guard allows (``--max-pixels``
    or a service's limit), found from its header before any decode."""


class MemoryLimitError(InputError):
    """An item needs more memory than the budget it runs within (``--max-memory``):
    ``need`` and ``budget`` in bytes, so each path can say it in its own terms."""

    def __init__(self, message: str, need: int, budget: int) -> None:
        super().__init__(message)
        self.need = need
        self.budget = budget
