"""The rows of the Ray dataset and its two task stages: read bytes, write bytes.

Every row has the same columns (``ROW``), so Ray Data's Arrow blocks always unify. A row
whose ``status`` is set has settled and passes through the remaining stages untouched;
``data`` holds the input's bytes after ``read_stage``, the output's after the actor, and
is emptied by ``write_stage``, so the driver never receives image bytes.

Both stages are idempotent: a retried read reads again, and a retried write writes the
same bytes under the same name once more (:func:`.storage.write_once`), so Ray's retries
after a lost worker leave neither duplicates nor torn files.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from overnet.jobs.boundary import Step
from overnet.scaleout.manifest import Record
from overnet.scaleout.storage import Place, read_bytes, write_once

#: the columns of every row and their empty values
ROW: dict[str, Any] = {
    "input": "",  # how the manifest names it (path or URI)
    "in_root": "",  # storage.Place of the input
    "in_path": "",
    "output": "",
    "out_root": "",
    "out_path": "",
    "kind": "image",  # image | video
    "fmt": "",  # --format name chosen for an image
    "action": "upscale",  # upscale | verify (the output exists: hash it, skip the input)
    "status": "",  # "" while in flight, then done | skipped | failed
    "error": "",
    "input_size": 0,
    "output_size": 0,
    "sha256": "",
    "seconds": 0.0,
    "actor": "",
    "host": "",
    "pid": 0,
    "node": "",  # Ray node id
    "attempts": 0,  # which attempt settled it (before Ray: deaths in earlier runs)
    "session": "",
    "data": b"",
}


def new_row(**values: Any) -> dict[str, Any]:
    unknown = set(values) - set(ROW)
    if unknown:
        raise TypeError(f"unknown row columns: {sorted(unknown)}")
    return {**ROW, **values}


def input_place(row: dict[str, Any]) -> Place:
    return Place(row["in_root"], row["in_path"])


def output_place(row: dict[str, Any]) -> Place:
    return Place(row["out_root"], row["out_path"])


def read_stage(row: dict[str, Any]) -> dict[str, Any]:
    """Fetch an image's bytes (videos are fetched whole by the actor), or hash an output
    that already exists (``verify``: the local command skips such files too)."""
    row = dict(row)
    if row["status"]:
        return row
    step = Step(row["output"] if row["action"] == "verify" else row["input"])
    step("read the input")
    try:
        if row["action"] == "verify":
            data = read_bytes(output_place(row))
            row.update(status="skipped", output_size=len(data), sha256=_sha256(data))
        elif row["kind"] == "image":
            row["data"] = read_bytes(input_place(row))
            row["input_size"] = len(row["data"])
    except Exception as exc:  # this file fails, the job goes on
        row.update(status="failed", error=step.failure(exc))
    return row


def write_stage(row: dict[str, Any]) -> dict[str, Any]:
    """Write an encoded output exactly once; the row leaves without its bytes."""
    row = dict(row)
    data = row["data"]
    row["data"] = b""
    if row["status"] or not data:
        return row
    step = Step(row["input"])
    step.output = row["output"]
    step("write the output")
    try:
        write_once(output_place(row), data)
        row.update(status="done", output_size=len(data), sha256=_sha256(data))
    except Exception as exc:  # this file fails, the job goes on
        row.update(status="failed", error=step.failure(exc))
    return row


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_of(row: dict[str, Any]) -> Record:
    """The manifest record of a settled row (values made plain Python for JSON)."""
    return Record(
        input=str(row["input"]),
        output=str(row["output"]),
        status=str(row["status"]) or "failed",
        error=str(row["error"]) or ("" if row["status"] else "no result came back"),
        input_size=int(row["input_size"]),
        output_size=int(row["output_size"]),
        sha256=str(row["sha256"]),
        seconds=round(float(row["seconds"]), 4),
        actor=str(row["actor"]),
        host=str(row["host"]),
        pid=int(row["pid"]),
        node=str(row["node"]),
        attempts=int(row["attempts"]),
        session=str(row["session"]),
        finished=now(),
    )


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
