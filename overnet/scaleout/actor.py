"""The Ray Data actor: one runtime session per actor; decode, upscale and encode per file.

An image is an item of the job core (:mod:`overnet.jobs.images`), as in the local
command: planned and checked from its header, decoded from the bytes the read stage
fetched, upscaled and encoded back to bytes in memory, so the outputs are byte-for-byte
the local command's. Only encoded bytes travel between processes: a decoded Pillow image
does not keep its palette mode, subclass attributes or 16-bit PNG chunks exactly through
pickling. Any exception fails that file alone (:mod:`overnet.jobs.boundary`).

A video is one task: the actor fetches it whole (from a URI into scratch), upscales it
with :func:`overnet.video.upscale_video` and writes the output exactly once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from overnet.jobs.boundary import Step
from overnet.jobs.budget import MemoryBudget
from overnet.scaleout.attempts import Where
from overnet.scaleout.nodefiles import claim_cpus, fetch_model
from overnet.scaleout.stages import input_place, output_place
from overnet.scaleout.storage import copy_to_local, is_uri, upload_file


@dataclass(frozen=True)
class JobSpec:
    """What every actor opens and how it writes (all picklable, paths absolute)."""

    model: str  # a path on every node, a pyarrow.fs URI, or a pretrained name (x2)
    model_sha256: str = ""  # of a model given as a URI (its cache key on each node)
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = "auto"
    scale: float | None = None
    threads: int | None = None
    tile: int | None = None
    overlap: int | None = None
    max_memory: Any = None
    batch: int | None = None
    quality: int = 95
    max_pixels: int = 100_000_000
    encode: Any = None  # overnet.video.EncodeOptions for videos
    trim: Any = None  # overnet.video.Trim
    strict: bool = False


def open_upscaler(spec: JobSpec) -> tuple[Any, Any]:
    """(session, Upscaler) for ``spec``; a model given as a URI is fetched first."""
    from overnet.runtime import Upscaler, open_session

    model = fetch_model(spec.model, spec.model_sha256) if is_uri(spec.model) else spec.model
    session = open_session(
        model,
        spec.backend,
        device=spec.device,
        precision=spec.precision,
        scale=spec.scale,
        threads=spec.threads,
    )
    options = {"overlap": spec.overlap} if spec.overlap is not None else {}
    if spec.max_memory is not None:
        options["max_memory"] = spec.max_memory
    upscaler = Upscaler(session, tile=spec.tile, batch=spec.batch, **options)
    return session, upscaler


def identity() -> Where:
    """Ray actor id, host, pid and Ray node id: the id survives a restart, the pid not."""
    actor = node = ""
    with contextlib.suppress(Exception):  # outside Ray (tests call the actor directly)
        import ray

        context = ray.get_runtime_context()
        actor, node = context.get_actor_id() or "", context.get_node_id() or ""
    return Where(actor, socket.gethostname(), os.getpid(), node)


def named(text: str, replace: dict[str, str]) -> str:
    """``text`` with scratch paths named as the user knows them."""
    for scratch, real in replace.items():
        text = text.replace(scratch, real)
    return text


class UpscaleActor:
    """Called by Ray Data once per row; settled rows pass through unchanged."""

    def __init__(self, spec: JobSpec, ledger: Any = None) -> None:
        self.spec = spec
        self.ledger = ledger  # the run's AttemptLedger actor (None: attempts unbounded)
        self.cpu_locks = claim_cpus(spec.threads) if spec.device == "cpu" else []
        self.session, self.upscaler = open_upscaler(spec)
        self.budget = MemoryBudget(self.upscaler.max_memory)  # one file at a time
        self.where = identity()
        self.describe = self.session.info.describe()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        row = dict(row)
        if row["status"]:
            return row
        attempt, refused = self._begin(row["input"])
        row["attempts"] = attempt
        if refused:  # its worker died max_attempts times on it: settle it as failed
            row.update(status="failed", error=refused, data=b"", **self._identity())
            return row
        try:
            return self._run(row)
        finally:
            self._end(row["input"])

    def _identity(self) -> dict[str, Any]:
        where = self.where
        return {"actor": where.actor, "host": where.host, "pid": where.pid, "node": where.node}

    def _begin(self, name: str) -> tuple[int, str]:
        """Ask the ledger before starting (see :mod:`.attempts`): (attempt, refusal)."""
        if self.ledger is None:
            return 1, ""
        import ray

        try:
            return ray.get(self.ledger.begin.remote(name, self.where))
        except ray.exceptions.RayActorError:  # the driver's node is gone: so is the run
            return 1, ""

    def _end(self, name: str) -> None:
        if self.ledger is not None:
            import ray

            with contextlib.suppress(ray.exceptions.RayActorError):
                ray.get(self.ledger.end.remote(name))

    def _run(self, row: dict[str, Any]) -> dict[str, Any]:
        begin = time.perf_counter()
        step = Step(row["input"])
        step.output = row["output"]
        step("read the input")
        work = ""  # a video's scratch folder (images stay in memory)
        replace: dict[str, str] = {}
        try:
            if row["kind"] == "video":
                work = tempfile.mkdtemp(prefix="overnet-ray-")
                step("upscale")
                self._video(row, work, replace)
            else:
                row["data"] = self._image(row, step)
        except Exception as exc:  # this file fails, the job goes on
            row.update(status="failed", error=named(step.failure(exc), replace), data=b"")
        finally:
            if work:
                shutil.rmtree(work, ignore_errors=True)
        row.update(seconds=time.perf_counter() - begin, session=self.describe, **self._identity())
        return row

    def _image(self, row: dict[str, Any], step: Step) -> bytes:
        from overnet.jobs.images import (
            ImageOptions,
            check_fits_budget,
            encode_output,
            plan_image,
            read_image,
            upscale_image,
        )

        options = ImageOptions(row["fmt"], self.spec.quality, self.spec.max_pixels)
        data: bytes = row["data"]
        planned = plan_image(data, self.upscaler, options, name=row["input"])
        check_fits_budget(planned, self.upscaler, self.budget)  # as the local command does
        image = read_image(data, planned, options)
        step("upscale")
        output = upscale_image(image, self.upscaler)
        del image
        step("write the output")
        return encode_output(output, planned, options)

    def _video(self, row: dict[str, Any], work: str, replace: dict[str, str]) -> None:
        from overnet.video.pipeline import upscale_video

        source, destination = input_place(row), output_place(row)
        if not source.local:
            local = os.path.join(work, source.name or "input")
            replace[local] = row["input"]
            copy_to_local(source, local)
            source_path = local
        else:
            source_path = source.path
        target = destination.path
        if not destination.local:
            target = os.path.join(work, "output" + os.path.splitext(destination.path)[1])
            replace[target] = row["output"]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        spec = self.spec
        upscale_video(
            source_path, target, self.upscaler, spec.encode, trim=spec.trim, strict=spec.strict
        )
        size, digest = _file_digest(target)
        if not destination.local:
            upload_file(target, destination)
        row.update(
            status="done",
            output_size=size,
            sha256=digest,
            input_size=os.path.getsize(source_path),
        )


def _file_digest(path: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
