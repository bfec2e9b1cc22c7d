"""Local paths and ``pyarrow.fs`` URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``).

A file is named by a :class:`Place`: the filesystem's root (``""`` for a plain local path,
else ``scheme://authority``, e.g. ``s3://bucket``) and the filesystem's own path. Rows of
the Ray dataset carry the two strings, so no worker parses a URI twice and names with
spaces or ``#`` need no percent-encoding. Filesystems are made once per root and process.

Writes are exactly-once at the destination: local folders (plain paths and ``file://``)
get a temp file beside the target and a rename (:mod:`overnet._atomic`); object stores
(S3, GCS) get one whole-object upload that becomes visible only when complete; other
filesystems (HDFS) get a temp name and a move.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import secrets
import shutil
import socket
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from overnet._atomic import atomic_target
from overnet._optional import require

_PURPOSE, _EXTRA = "overnet upscale --ray (pyarrow.fs storage)", "ray"
#: object stores: an upload is visible only once complete, so no temp name is needed
OBJECT_STORES = ("s3", "gcs")
#: URI schemes whose first part names a bucket that belongs in the filesystem path
_BUCKET_SCHEMES = ("s3", "gs", "gcs")


def is_uri(text: str) -> bool:
    """True for ``scheme://...`` (a one-letter scheme is a Windows drive, not a URI)."""
    scheme, sep, _ = str(text).partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


@dataclass(frozen=True)
class Place:
    """A file or folder: ``root`` "" (local path) or ``scheme://authority``, and a path."""

    root: str
    path: str

    @property
    def local(self) -> bool:
        """Reachable with the os module (plain paths and ``file://``)."""
        return not self.root or self.root.startswith("file://")

    def text(self) -> str:
        """How the manifest and messages name it (a path or a URI)."""
        if not self.root:
            return self.path
        if self.root.split("://")[0] in _BUCKET_SCHEMES:
            return f"{self.root.split('://')[0]}://{self.path}"
        return f"{self.root}{self.path}"

    def join(self, relative: str) -> Place:
        return Place(self.root, posixpath.join(self.path, relative))

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> Place:
        return Place(self.root, posixpath.dirname(self.path))


def place_of(text: str) -> Place:
    """A path or URI -> Place (local paths made absolute)."""
    if not is_uri(text):
        return Place("", os.path.abspath(text))
    parts = urlsplit(text)
    root = f"{parts.scheme}://{parts.netloc}"
    path = unquote(parts.path)
    if parts.scheme in _BUCKET_SCHEMES:
        path = parts.netloc + path
    if parts.query:
        root += f"?{parts.query}"
    return Place(root, path.rstrip("/") or "/")


@functools.lru_cache(maxsize=32)
def filesystem(root: str) -> Any:
    """The ``pyarrow.fs.FileSystem`` of ``root`` (one per root and process)."""
    fs = require("pyarrow.fs", _PURPOSE, _EXTRA)
    if not root:
        return fs.LocalFileSystem()
    base, _, query = root.partition("?")
    return fs.FileSystem.from_uri(f"{base}/" + (f"?{query}" if query else ""))[0]


def file_info(place: Place) -> Any:
    return filesystem(place.root).get_file_info(place.path)


def list_files(place: Place, recursive: bool) -> list[tuple[Place, int]]:
    """Files below the folder ``place`` (sorted), with their sizes; [] when it is absent."""
    fs = require("pyarrow.fs", _PURPOSE, _EXTRA)
    selector = fs.FileSelector(place.path, recursive=recursive, allow_not_found=True)
    infos = filesystem(place.root).get_file_info(selector)
    found = [(Place(place.root, i.path), i.size) for i in infos if i.type == fs.FileType.File]
    return sorted(found, key=lambda item: item[0].path)


def read_bytes(place: Place) -> bytes:
    with filesystem(place.root).open_input_stream(place.path) as stream:
        return stream.read()


def make_dirs(place: Place) -> None:
    filesystem(place.root).create_dir(place.path, recursive=True)


def _temp_name(place: Place) -> Place:
    """A temp name beside ``place`` in :mod:`overnet._atomic`'s format (writer's pid and
    host), so the same stale-temp rules apply."""
    host = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    random = secrets.token_hex(4)
    return place.parent.join(f".{place.name[:150]}.overnet-{os.getpid()}-{host}-{random}.part")


def write_once(place: Place, data: bytes) -> None:
    """Write ``data`` to ``place`` so that readers see the old file or the whole new one."""
    fs = filesystem(place.root)
    if place.local:
        with atomic_target(place.path) as tmp:
            tmp.write_bytes(data)
        return
    if fs.type_name in OBJECT_STORES:
        # One write call of the whole bytes, then close: the upload completes (and the
        # object appears, whole) only at close, and close refuses when a part failed; a
        # killed writer never completes it.
        with fs.open_output_stream(place.path) as stream:
            stream.write(data)
        return
    fs.create_dir(place.parent.path, recursive=True)
    temp = _temp_name(place)
    try:
        with fs.open_output_stream(temp.path) as stream:
            stream.write(data)
        if fs.get_file_info(place.path).type != require("pyarrow.fs").FileType.NotFound:
            fs.delete_file(place.path)  # HDFS renames refuse an existing target
        fs.move(temp.path, place.path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(temp.path)
        raise


def copy_to_local(place: Place, target: str) -> None:
    """Download ``place`` into the local file ``target`` (videos go through files)."""
    fs = filesystem(place.root)
    with fs.open_input_stream(place.path) as source, open(target, "wb") as sink:
        while chunk := source.read(1 << 22):
            sink.write(chunk)


def upload_file(source: str, place: Place) -> None:
    """Upload the local file ``source`` to ``place`` exactly once (see :func:`write_once`)."""
    if place.local:
        with atomic_target(place.path) as tmp:
            shutil.copyfile(source, tmp)
        return
    with open(source, "rb") as src:
        write_once(place, src.read())
