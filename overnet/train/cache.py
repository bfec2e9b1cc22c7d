"""Decoded-image cache: one .npy per image (and per LR scale), memory-mapped on reuse.

PNG decoding dominates start-up on DIV2K (800 x 2K images) and the LR made on the
fly with the numpy MATLAB bicubic is slower still; a .npy is read back with mmap,
so every data worker shares the page cache instead of holding its own copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from overnet.train.errors import TrainDataError


def cache_key(source: Path, kind: str) -> str:
    """Name of the cached array of ``source`` (path, size, mtime and ``kind``)."""
    stat = source.stat()
    text = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{kind}"
    return f"{source.stem[:40]}-{kind}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npy"


def cached_array(
    cache_dir: Path | None, source: Path, kind: str, make: Callable[[], np.ndarray]
) -> tuple[np.ndarray, bool]:
    """The array for (source, kind): from the cache (mmap) or ``make()``; True if built."""
    if cache_dir is None:
        return make(), True
    path = cache_dir / cache_key(source, kind)
    if path.exists():
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False), False
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged entry is rebuilt, not trusted
    array = make()
    _save_atomic(path, array)
    return np.load(path, mmap_mode="r", allow_pickle=False), True


def _save_atomic(path: Path, array: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TrainDataError(
            f"cannot write the image cache in {path.parent} ({exc}); "
            "choose a writable --cache folder or leave it out"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise TrainDataError(
            f"writing the image cache {path} failed ({exc}); free disk space or drop --cache"
        ) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
