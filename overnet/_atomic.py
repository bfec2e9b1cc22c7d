"""Atomic file writes: a temp file beside the target, then a rename over it.

A crash or error leaves either the old file or the new one, never a torn one, and no temp
file behind. Finished files get the usual permissions (0666 minus the umask): mkstemp's
0600 would make shared outputs unreadable to everyone else.

Only a killed process (SIGKILL, power loss) can leave its temp file behind. Temp names say
who wrote them, ``.NAME.overnet-PID-HOST-XXXXXXXX.SUFFIX`` (HOST: a crc32 of the host
name, XXXXXXXX: mkstemp's random part), so the next run in the folder can tell an orphan
from a file another run is writing right now: :func:`remove_stale_temps` removes a temp
whose writer process is gone (same host) or that is older than ``STALE_AGE_S`` (a writer
on another host sharing the folder, or a pid reused since). Names of earlier versions,
``.NAME.XXXXXXXX.part``/``.tmp``, carry no pid and go by age alone. Nothing else is
touched: a user's ``notes.part`` or ``.out.png.part.keep`` never matches.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

#: Age after which any project temp file counts as abandoned: the writers hold one for
#: the seconds a file takes to encode and write, never for an hour.
STALE_AGE_S = 3600.0

# mkstemp's random part: 8 characters of this alphabet (tempfile._RandomNameSequence).
_RANDOM = r"[a-z0-9_]{8}"
_TEMP_NAME = re.compile(
    rf"\.(?P<name>.+)\.overnet-(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{{8}})-{_RANDOM}\.[A-Za-z0-9]+"
)
_LEGACY_NAMES = (
    re.compile(rf"\.(?P<name>.+)\.{_RANDOM}\.(part|tmp)"),  # atomic_target before pids
    re.compile(rf"\.overnet-write-test\.{_RANDOM}"),  # imaging.files.check_output_dir probe
)
# Keeps prefix + random part + suffix within the 255-byte file-name limit.
_MAX_NAME_CHARS = 150


def _default_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def make_temp(path: str | Path, suffix: str = ".part") -> Path:
    """Create an empty temp file beside ``path`` named after it and this process."""
    path = Path(path)
    prefix = f".{path.name[:_MAX_NAME_CHARS]}.overnet-{os.getpid()}-{_host_tag()}-"
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_target(path: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(path, suffix)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        with open(tmp, "rb") as fh:  # the rename must not reach the disk before the data
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    return Path(path)


def replace_tree(staged: str | Path, path: str | Path) -> Path:
    """Move a finished folder (or file) ``staged``, built in ``path``'s folder, to
    ``path``. What was there is moved aside first and removed only once the new one is
    in place, so a failure leaves the old export or the new one, never half of one."""
    staged, path = Path(staged), Path(path)
    old = None
    if path.exists() or path.is_symlink():
        old = path.with_name(f".{path.name[:_MAX_NAME_CHARS]}.overnet-old-{os.getpid()}")
        _remove(old)
        path.rename(old)
    try:
        staged.rename(path)
    except BaseException:
        if old is not None:  # put the previous one back
            old.rename(path)
        raise
    if old is not None:
        _remove(old)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:  # PermissionError: another user's process; otherwise unsure
        return True
    return True


def is_stale_temp(path: str | Path, *, min_age_s: float = STALE_AGE_S) -> bool:
    """True if ``path`` is a temp file of this project's writers that no one will finish:
    its writer process on this host is gone, or it is older than ``min_age_s``."""
    path = Path(path)
    own = _TEMP_NAME.fullmatch(path.name)
    if own is None and not any(p.fullmatch(path.name) for p in _LEGACY_NAMES):
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):  # not a folder or link someone named like one
        return False
    if time.time() - info.st_mtime >= min_age_s:
        return True
    return (
        own is not None
        and own["host"] == _host_tag()
        and os.name == "posix"
        and not _pid_alive(int(own["pid"]))
    )


def remove_stale_temps(folder: str | Path, *, min_age_s: float = STALE_AGE_S) -> list[Path]:
    """Delete the stale temp files (:func:`is_stale_temp`) directly in ``folder``.

    Returns the files removed, for the caller to report. A folder that does not exist or
    cannot be listed, and a temp that cannot be removed, are left alone silently: the
    cleanup never stands in the way of the run's own work.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    removed = []
    for entry in sorted(entries, key=lambda e: e.name):
        path = Path(entry.path)
        if not is_stale_temp(path, min_age_s=min_age_s):
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
