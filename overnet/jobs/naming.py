"""One output-name policy for every path: never over an input, never two items on one
output, skip what is done; O(N) for N items whatever the folder holds.

Outputs are compared with the inputs by place (a resolved path, or a storage URI's
place) in a set, and, for local files only, by file identity (device, inode) so that an
output that *is* an input under another name (a hard link, a case-insensitive disk) is
refused too. The identities of the inputs are read once, the first time an output that
already exists has to be checked, instead of one ``samefile`` per input per output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable

from overnet.errors import InputError

#: the local file behind a place, or None (an object in a bucket has no identity to share)
LocalPath = Callable[[Hashable], "str | None"]


def _plain_path(place: Hashable) -> str | None:
    return os.fspath(place) if isinstance(place, (str, os.PathLike)) else None


def file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of ``path``, or None when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class OutputNames:
    """Claims output places for one run.

    ``inputs``: the places of every input of the run (resolved ``Path`` s, or hashable
    storage places with ``local_path`` saying which are local files).
    """

    def __init__(self, inputs: Iterable[Hashable], local_path: LocalPath = _plain_path) -> None:
        self._inputs = set(inputs)
        self._local_path = local_path
        self._ids: set[tuple[int, int]] | None = None
        self._claimed: dict[Hashable, str] = {}

    def _is_input(self, target: Hashable) -> bool:
        if target in self._inputs:
            return True
        local = self._local_path(target)
        if local is None or not os.path.exists(local):
            return False
        if self._ids is None:  # first existing output: read the inputs' identities once
            paths = (self._local_path(p) for p in self._inputs)
            self._ids = {i for p in paths if p is not None and (i := file_id(p))}
        return file_id(local) in self._ids

    def claim(self, target: Hashable, shown: str, owner: str) -> None:
        """Reserve ``target`` (called ``shown`` in messages) for the item ``owner``, or
        raise InputError saying why it must not be written."""
        if self._is_input(target):
            raise InputError(
                f"the output {shown} would overwrite an input; choose another -o or --suffix"
            )
        earlier = self._claimed.setdefault(target, owner)
        if earlier != owner:
            raise InputError(
                f"the output {shown} is also the output of {earlier}; give one of them "
                "another name, or use --suffix"
            )


def already_done(size: int, overwrite: bool) -> bool:
    """An existing, non-empty output is kept (a rerun resumes) unless ``overwrite``."""
    return size > 0 and not overwrite


def local_size(path: str | os.PathLike) -> int:
    """Size of a local output, 0 when it does not exist."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
