"""The run's manifest: one JSON line per file (input, output, sizes, sha256, status, error).

Only the driver writes it. During a run each settled file is appended (local manifests
are flushed line by line; a manifest on an object store, which cannot append, is
rewritten whole every ``REWRITE_S`` seconds); at the end the file is rewritten once,
atomically, with the last record of each input, sorted by input; the ``started``
records written as files are begun (:mod:`.attempts`) are dropped then. Reading keeps the
last record of each input and ignores a line torn by a crash. A rerun trusts a ``done`` record
only while its output still exists with the recorded size (see :mod:`.plan`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from overnet.scaleout.storage import Place, place_of, read_bytes, write_once

#: file name of the manifest in the output folder when --manifest is not given
MANIFEST_NAME = "overnet-manifest.jsonl"
#: seconds between whole rewrites of a manifest that cannot be appended to
REWRITE_S = 30.0


@dataclass
class Record:
    """What happened to one input in one run."""

    input: str
    output: str
    status: str  # done | skipped | failed, or started (an attempt begun, not yet settled)
    error: str = ""
    input_size: int = 0
    output_size: int = 0
    sha256: str = ""  # of the output
    seconds: float = 0.0  # in the actor (decode, model, encode; a whole video)
    actor: str = ""  # Ray actor id (kept across restarts)
    host: str = ""
    pid: int = 0  # the actor's process; a restarted actor has a new one
    node: str = ""  # Ray node id
    attempts: int = 0  # attempts begun on it (a worker that died on it counts)
    session: str = ""  # what ran: backend, device, precision, threads, scale
    finished: str = ""  # UTC, ISO 8601

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=False) + "\n"


def default_manifest(out: str) -> str:
    """``OUT/overnet-manifest.jsonl`` for a path or a URI."""
    return (
        out.rstrip("/") + "/" + MANIFEST_NAME if "://" in out else os.path.join(out, MANIFEST_NAME)
    )


def read_manifest(place: Place | str) -> dict[str, Record]:
    """Last record per input; {} when the manifest (a path or URI) does not exist yet."""
    if isinstance(place, str):
        place = place_of(place)
    try:
        text = read_bytes(place).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    records: dict[str, Record] = {}
    for line in text.splitlines():
        try:
            record = Record.from_dict(json.loads(line))
        except (ValueError, TypeError):
            continue  # a line torn by a crash, or not ours
        records[record.input] = record
    return records


class Manifest:
    """Appends records as files settle; :meth:`close` rewrites it compacted."""

    def __init__(self, where: str, earlier: dict[str, Record]) -> None:
        self.place = place_of(where)
        self.earlier = dict(earlier)
        self.records = dict(earlier)
        self._last_write = time.monotonic()
        self._stream = None
        if self.place.local:
            os.makedirs(os.path.dirname(self.place.path) or ".", exist_ok=True)
            self._stream = open(self.place.path, "a", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def open(cls, where: str) -> Manifest:
        return cls(where, read_manifest(place_of(where)))

    def add(self, record: Record) -> None:
        self.records[record.input] = record
        if self._stream is not None:
            self._stream.write(record.line())
            self._stream.flush()
        elif time.monotonic() - self._last_write >= REWRITE_S:
            self._rewrite()

    def _rewrite(self) -> None:
        lines = [self.records[k].line() for k in sorted(self.records)]
        write_once(self.place, "".join(lines).encode("utf-8"))
        self._last_write = time.monotonic()

    def close(self) -> None:
        """Rewrite the manifest with one record per input (atomically).

        ``started`` records of this run go: the driver got here, so those files were
        interrupted, not killed. Only a driver that died leaves them (see
        :mod:`.attempts`)."""
        for name, record in list(self.records.items()):
            if record.status == "started" and self.earlier.get(name) is not record:
                if name in self.earlier:
                    self.records[name] = self.earlier[name]
                else:
                    del self.records[name]
        if self._stream is not None:
            os.fsync(self._stream.fileno())
            self._stream.close()
            self._stream = None
        if not self.records:  # nothing settled (Ray was not reached): leave no empty file
            if self.place.local and os.path.getsize(self.place.path) == 0:
                os.unlink(self.place.path)
            return
        self._rewrite()
