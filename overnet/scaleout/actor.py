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

from overnet._atomic import atomic_target
from overnet.jobs.boundary import Step
from overnet.jobs.budget import MemoryBudget
from overnet.scaleout.stages import input_place, output_place
from overnet.scaleout.storage import copy_to_local, file_info, is_uri, place_of, upload_file


@dataclass(frozen=True)
class JobSpec:
    """What every actor opens and how it writes (all picklable, paths absolute)."""

    model: str  # a path on every node, a pyarrow.fs URI, or a pretrained name (x2)
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

    model = fetch_model(spec.model) if is_uri(spec.model) else spec.model
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


def fetch_model(uri: str) -> str:
    """A local copy of the model at ``uri``, fetched once per node and version (its size
    and modification time are in the cache key) into the temp folder."""
    place = place_of(uri)
    info = file_info(place)
    key = hashlib.sha256(f"{uri}|{info.size}|{info.mtime_ns}".encode()).hexdigest()[:16]
    local = os.path.join(tempfile.gettempdir(), "overnet-ray-models", key, place.name or "model")
    if not os.path.exists(local):
        with atomic_target(local) as tmp:  # actors on one node may fetch it at once
            copy_to_local(place, str(tmp))
    return local


def identity() -> tuple[str, str, int]:
    """(Ray actor id, host, pid): the id survives a restart, the pid does not."""
    actor = ""
    with contextlib.suppress(Exception):  # outside Ray (tests call the actor directly)
        import ray

        actor = ray.get_runtime_context().get_actor_id() or ""
    return actor, socket.gethostname(), os.getpid()


def named(text: str, replace: dict[str, str]) -> str:
    """``text`` with scratch paths named as the user knows them."""
    for scratch, real in replace.items():
        text = text.replace(scratch, real)
    return text


def claim_cpus(threads: int | None) -> list[Any]:
    """Give this process ``threads`` CPUs of its own on this node, when the node has room.

    OpenVINO pins its inference threads to the first CPUs of the process's affinity mask,
    so two 1-thread actors on one node both ran on CPU 0, each at half speed (measured
    here: 0.22 s per 160x120 image alone, 0.46 s each side by side, 0.22 s each with
    separate masks; sessions now also turn OpenVINO's pinning off, which alone gives
    the same). Each CPU is claimed with a lock file in the node's temp folder
    (released when the process ends, so a restarted actor claims again) and the process
    mask is narrowed to the claimed CPUs. Returns the open lock files (kept while the
    actor lives); [] leaves the mask alone (no room, or not a POSIX system)."""
    try:
        import fcntl

        allowed = sorted(os.sched_getaffinity(0))
    except (ImportError, AttributeError, OSError):
        return []
    if not threads or threads * 2 > len(allowed):
        return []  # one actor's worth of CPUs or less: nothing to share out
    folder = os.path.join(tempfile.gettempdir(), "overnet-ray-cpus")
    os.makedirs(folder, exist_ok=True)
    held: list[tuple[int, Any]] = []
    for cpu in allowed:
        lock = open(os.path.join(folder, f"cpu-{cpu}.lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        held.append((cpu, lock))
        if len(held) == threads:
            os.sched_setaffinity(0, {c for c, _ in held})
            return [f for _, f in held]
    for _, lock in held:
        lock.close()
    return []


class UpscaleActor:
    """Called by Ray Data once per row; settled rows pass through unchanged."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.cpu_locks = claim_cpus(spec.threads) if spec.device == "cpu" else []
        self.session, self.upscaler = open_upscaler(spec)
        self.budget = MemoryBudget(self.upscaler.max_memory)  # one file at a time
        self.actor, self.host, self.pid = identity()
        self.describe = self.session.info.describe()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        row = dict(row)
        if row["status"]:
            return row
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
        row.update(
            seconds=time.perf_counter() - begin,
            actor=self.actor,
            host=self.host,
            pid=self.pid,
            session=self.describe,
        )
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
