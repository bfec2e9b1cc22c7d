"""Local paths and ``pyarrow.fs`` URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://``).

A file is named by a :class:`Place`: the filesystem's root (``""`` for a plain local path,
else ``scheme://authority``, e.g. ``s3://bucket``) and the filesystem's own path. Rows of
the Ray dataset carry the two strings, so no worker parses a URI twice and names with
spaces or ``#`` need no percent-encoding. Filesystems are made once per root and process.

Writes are exactly-once at the destination: local folders (plain paths and ``file://``)
get a temp file beside the target and a rename (:mod:`overnet._atomic`); object stores
(S3, GCS) get one upload that becomes visible only when complete (a multipart upload
completes at close; a killed writer never completes it); other filesystems (HDFS) get a
temp name and a move. Files stream in ``CHUNK`` pieces both ways, so an actor holds a few
chunks of a 20 GB video, never the whole of it (pyarrow's S3 stream adds its upload
parts, 10 MB each by default).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import posixpath
import secrets
import shutil
import socket
import zlib
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from overnet._atomic import atomic_target
from overnet._optional import require
from overnet.errors import InputError

_PURPOSE, _EXTRA = "overnet upscale --ray (pyarrow.fs storage)", "ray"
#: object stores: an upload is visible only once complete, so no temp name is needed
OBJECT_STORES = ("s3", "gcs")
#: URI schemes whose first part names a bucket that belongs in the filesystem path
_BUCKET_SCHEMES = ("s3", "gs", "gcs")
#: bytes per read and write when a file is streamed to or from storage
CHUNK = 4 << 20


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
    if place.local:
        with atomic_target(place.path) as tmp:
            tmp.write_bytes(data)
        return
    _write_stream(place, io.BytesIO(data))


def upload_file(source: str, place: Place) -> None:
    """Upload the local file ``source`` to ``place`` exactly once, in ``CHUNK`` pieces."""
    if place.local:
        with atomic_target(place.path) as tmp:
            shutil.copyfile(source, tmp)  # the kernel copies it: nothing held here
        return
    with open(source, "rb") as src:
        _write_stream(place, src)


def _write_stream(place: Place, src: IO[bytes]) -> None:
    """Stream ``src`` to ``place`` on a non-local store (see the module's exactly-once)."""
    fs = filesystem(place.root)
    if fs.type_name in OBJECT_STORES:
        # The object appears, whole, only when close completes the upload; a killed
        # writer never completes it. pyarrow has no abort, and closing after an error
        # completes what was sent, so a failed copy deletes the object it made.
        try:
            with fs.open_output_stream(place.path) as stream:
                shutil.copyfileobj(src, stream, CHUNK)
        except BaseException:
            with contextlib.suppress(OSError):
                fs.delete_file(place.path)
            raise
        return
    fs.create_dir(place.parent.path, recursive=True)
    temp = _temp_name(place)
    try:
        with fs.open_output_stream(temp.path) as stream:
            shutil.copyfileobj(src, stream, CHUNK)
        if fs.get_file_info(place.path).type != require("pyarrow.fs").FileType.NotFound:
            fs.delete_file(place.path)  # HDFS renames refuse an existing target
        fs.move(temp.path, place.path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(temp.path)
        raise


def copy_to_local(place: Place, target: str) -> None:
    """Download ``place`` into the local file ``target`` in ``CHUNK`` pieces."""
    fs = filesystem(place.root)
    with fs.open_input_stream(place.path) as source, open(target, "wb") as sink:
        shutil.copyfileobj(source, sink, CHUNK)


def sha256_of(place: Place) -> str:
    """The sha256 of the file at ``place``, read in ``CHUNK`` pieces."""
    digest = hashlib.sha256()
    with filesystem(place.root).open_input_stream(place.path) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_relative(path: str, folder: str) -> str:
    """``path`` relative to ``folder`` (posix), refused when it would leave the folder.

    Object stores allow any key, ``uploads/../../../tmp/x.png`` included; joined below
    an output folder such a key would name a file outside it. Raises InputError for a
    key with a ``..`` or ``.`` part, an empty part (``a//b``) or one that is not below
    ``folder``."""
    prefix = folder.rstrip("/") + "/"
    if not path.startswith(prefix) or len(path) == len(prefix):
        raise InputError(f"refused: {path!s} is not below {folder}")
    relative = path[len(prefix) :]
    bad = [part for part in relative.split("/") if part in ("", ".", "..")]
    if bad or relative.startswith("/"):
        part = {"": "an empty ('//')", ".": "a '.'", "..": "a '..'"}[bad[0]] if bad else "a '/'"
        raise InputError(
            f"refused: the key's path below the input folder, {relative}, has {part} part, "
            "so its output would be named outside the output folder; rename the object"
        )
    return relative
