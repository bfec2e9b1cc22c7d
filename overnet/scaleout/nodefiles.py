"""Files an actor keeps on its node: CPU claims and fetched models, in a per-user folder.

On a shared machine the temp folder is everyone's: a fixed name there can belong to
another user (every open fails) or be a planted symlink (an open truncates what it points
at). So each user gets ``TMP/overnet-UID``, created 0700; it is opened once without
following symlinks and checked (a folder, this user's, no group or other access) on the
open descriptor, and every file inside is opened relative to that descriptor with
``O_NOFOLLOW``. When the folder fails the check, CPU claims are skipped (the actor runs
unpinned) and a model is fetched into a fresh private temp folder instead.

A fetched model is cached under its sha256 (which the driver computes once, see
:func:`overnet.scaleout.storage.sha256_of`): a cached file is used only when its bytes
still hash to that digest, so neither a stale version nor a swapped file is ever run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from typing import IO, Any

from overnet.errors import OverNetError
from overnet.formats.digest import sha256_file
from overnet.scaleout.storage import copy_to_local, place_of

#: bytes hashed per read when checking a cached model


class UnsafeFolder(OverNetError):
    """The per-user folder exists but is not this user's alone."""


def private_folder() -> str:
    """``TMP/overnet-UID``: created 0700 when missing, refused unless it is a real folder
    owned by this user with no access for anyone else. Returns its path."""
    fd = open_private_folder()
    os.close(fd)
    return os.path.join(tempfile.gettempdir(), f"overnet-{os.getuid()}")


def open_private_folder() -> int:
    """A descriptor of the per-user folder (see :func:`private_folder`); the caller
    closes it. Raises :class:`UnsafeFolder` when it is not this user's alone."""
    path = os.path.join(tempfile.gettempdir(), f"overnet-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:  # a symlink (ELOOP), a file (ENOTDIR), no permission
        raise UnsafeFolder(f"cannot use {path} as overnet's private folder: {exc}") from exc
    info = os.fstat(fd)
    problem = ""
    if info.st_uid != os.getuid():
        problem = f"it belongs to uid {info.st_uid}, not {os.getuid()}"
    elif stat.S_IMODE(info.st_mode) & 0o077:
        problem = f"its mode is {stat.S_IMODE(info.st_mode):o}; only 700 is safe"
    if problem:
        os.close(fd)
        raise UnsafeFolder(
            f"{path} is not this user's alone ({problem}): remove it, or run with another TMPDIR"
        )
    return fd


def open_in(folder_fd: int, name: str, flags: int, mode: int = 0o600) -> int:
    """``os.open`` of ``name`` inside the folder ``folder_fd``, never through a symlink."""
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=folder_fd)


def claim_cpus(threads: int | None) -> list[Any]:
    """Give this process ``threads`` CPUs of its own on this node, when the node has room.

    OpenVINO pins its inference threads to the first CPUs of the process's affinity mask,
    so two 1-thread actors on one node both ran on CPU 0, each at half speed (measured
    here: 0.22 s per 160x120 image alone, 0.46 s each side by side, 0.22 s each with
    separate masks; sessions now also turn OpenVINO's pinning off, which alone gives
    the same). Each CPU is claimed with a lock file in the per-user folder (released when
    the process ends, so a restarted actor claims again; lock files are opened without
    truncating and never through a symlink) and the process mask is narrowed to the
    claimed CPUs. Returns the open lock files (kept while the actor lives); [] leaves the
    mask alone (no room, an unsafe folder, or not a POSIX system)."""
    try:
        import fcntl

        allowed = sorted(os.sched_getaffinity(0))
    except (ImportError, AttributeError, OSError):
        return []
    if not threads or threads * 2 > len(allowed):
        return []  # one actor's worth of CPUs or less: nothing to share out
    try:
        folder = open_private_folder()
    except UnsafeFolder:
        return []  # pinning is an optimisation: run unpinned rather than fail the actor
    held: list[tuple[int, IO[bytes]]] = []
    try:
        for cpu in allowed:
            try:
                fd = open_in(folder, f"cpu-{cpu}.lock", os.O_RDWR | os.O_CREAT)
            except OSError:
                continue
            lock = os.fdopen(fd, "r+b", buffering=0)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            held.append((cpu, lock))
            if len(held) == threads:
                os.sched_setaffinity(0, {c for c, _ in held})
                return [f for _, f in held]
    finally:
        os.close(folder)
    for _, lock in held:
        lock.close()
    return []


def fetch_model(uri: str, sha256: str) -> str:
    """A local copy of the model at ``uri`` whose bytes hash to ``sha256``: fetched once
    per node and content into the per-user folder, checked on every use."""
    place = place_of(uri)
    name = place.name or "model"
    try:
        folder = private_folder()
    except UnsafeFolder:
        folder = tempfile.mkdtemp(prefix="overnet-model-")  # 0700, this actor's alone
    entry = os.path.join(folder, "models", sha256)
    local = os.path.join(entry, name)
    if os.path.isfile(local) and not os.path.islink(local) and sha256_file(local) == sha256:
        return local
    os.makedirs(entry, mode=0o700, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".fetch-", dir=entry)  # actors of a node may race
    try:
        fetched = os.path.join(scratch, name)
        copy_to_local(place, fetched)
        found = sha256_file(fetched)
        if found != sha256:
            raise OverNetError(
                f"the model {uri} changed during the run (sha256 {found[:12]}, the run "
                f"started with {sha256[:12]}): run again to use the new version"
            )
        os.replace(fetched, local)  # atomic: another actor's identical copy is replaced
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return local
