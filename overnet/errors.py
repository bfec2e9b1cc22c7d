"""Exceptions shared by every layer (no third-party imports)."""

from __future__ import annotations


class OverNetError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class WeightsError(OverNetError):
    """A weights file is missing, unreadable, unsafe or not an OverNet checkpoint."""


class MissingDependencyError(OverNetError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class InputError(OverNetError):
    """An input (image, array, option) is not what the operation expects."""
