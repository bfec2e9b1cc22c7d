"""``upscale_on_ray``: the local command's batch on a Ray cluster, with Ray Data.

The driver lists the inputs and decides what is left (:mod:`.plan`); Ray Data streams the
rest through read tasks (bytes from storage), a fixed pool of actors that each hold one
runtime session (decode, upscale, encode: :mod:`.actor`) and write tasks (exactly-once
writes, sha256); the driver records each settled file in the manifest as it arrives.

Recovery is Ray's: Ray Data restarts a lost actor (``max_restarts=-1``) and retries its
tasks on the new one, and retries lost tasks (a lost node included); every stage is
idempotent, so a retry leaves neither a duplicate nor a torn file, and the driver records
each input once. What Ray does not bound, the attempts on a file that kills its actor each
time, the run's attempt ledger bounds (:mod:`.attempts`, ``max_attempts``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnet._atomic import remove_stale_temps
from overnet._optional import require
from overnet.errors import InputError, OverNetError
from overnet.imaging.files import DEFAULT_MAX_PIXELS, check_output_dir
from overnet.scaleout.actor import JobSpec, UpscaleActor
from overnet.scaleout.attempts import DEFAULT_MAX_ATTEMPTS, POLL_S, AttemptLedger
from overnet.scaleout.manifest import Manifest, Record, default_manifest
from overnet.scaleout.plan import Naming, find_inputs, make_plan
from overnet.scaleout.report import ScaleoutReport
from overnet.scaleout.stages import read_stage, record_of, write_stage
from overnet.scaleout.storage import Place, is_uri, make_dirs, place_of, sha256_of

_PURPOSE, _EXTRA = "overnet upscale --ray", "ray"
#: Ray Data blocks at most (a block is the unit of a task; a lost one is redone whole)
MAX_BLOCKS = 10_000
#: files per block, at most while the block limit allows: fewer tasks for Ray to schedule
#: (15% more images/s than a block per file on 2 cores), little redone after a loss
ROWS_PER_BLOCK = 8


@dataclass(frozen=True)
class Cluster:
    """Where and how wide: ``address`` None or "local" starts a local Ray (unless one is
    already initialised in this process), "auto" joins the running cluster, else
    ``host:port`` or ``ray://host:10001``. CPUs and GPUs are per actor."""

    address: str | None = None
    actors: int | None = None  # default: what the cluster's CPUs (or GPUs) allow
    num_cpus: float = 1.0
    num_gpus: float = 0.0


def upscale_on_ray(
    inputs: list[str],
    out: str | Path,
    model: str | Path,
    *,
    backend: str = "auto",
    device: str = "cpu",
    precision: str | None = "auto",
    scale: float | None = None,
    threads: int | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    max_memory: Any = None,
    batch: int | None = None,
    fmt: str | None = None,
    suffix: str = "",
    quality: int = 95,
    recursive: bool = False,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    encode: Any = None,
    video_format: str | None = None,
    trim: Any = None,
    strict: bool = False,
    cluster: Cluster | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    manifest: str | None = None,
    progress: bool = True,
    on_record: Callable[[Record], None] | None = None,
    echo: Callable[[str], None] | None = None,
) -> ScaleoutReport:
    """Upscale ``inputs`` (paths, folders, globs or ``pyarrow.fs`` URIs) into ``out`` (a
    folder or URI) on Ray; the options are ``overnet upscale``'s and so are the outputs.

    ``threads`` is per actor (default: its CPUs, rounded up). A file is begun at most
    ``max_attempts`` times across actor deaths (:mod:`.attempts`). ``on_record`` sees each
    settled file's manifest record as it is written; ``echo`` gets a line on what the run
    will do. Per-file failures are recorded, never raised.
    """
    cluster = cluster or Cluster()
    _check_resources(device, cluster)
    if max_attempts < 1:
        raise InputError(f"--max-attempts must be at least 1, got {max_attempts}")
    out_text = str(out)
    out_place = place_of(out_text)
    if cluster.num_cpus and threads is None:
        threads = max(1, math.ceil(cluster.num_cpus))
    model_text = _model_text(model)
    spec = JobSpec(
        model=model_text, model_sha256=_model_digest(model_text), backend=backend,
        device=device, precision=precision, scale=scale, threads=threads, tile=tile,
        overlap=overlap, max_memory=max_memory,
        batch=batch, quality=quality, max_pixels=int(max_pixels), encode=encode, trim=trim,
        strict=strict,
    )  # fmt: skip
    sources, problems = find_inputs([str(i) for i in inputs], recursive, out_place)
    if not sources:
        raise InputError("no input images or videos: " + "; ".join(problems))
    _prepare_output(out_place, out_text)
    book = Manifest.open(manifest or default_manifest(out_text))
    naming = Naming(fmt, suffix, encode, video_format)
    plan = make_plan(sources, out_place, book.records, naming, overwrite)
    report = ScaleoutReport(problems=problems, manifest=book.place.text())
    seen: set[str] = set()
    lock = threading.Lock()  # the manifest is written by settle and the attempts' poller

    def settle(record: Record) -> None:
        if record.input in seen:  # Ray delivers each row once; never record one twice
            return
        seen.add(record.input)
        with lock:
            book.add(record)
        report.records.append(record)
        if record.session:
            report.sessions.add(record.session)
        if on_record is not None:
            on_record(record)

    say = echo or (lambda line: None)
    say(
        f"{plan.images} image(s), {plan.videos} video(s): {len(plan.rows)} for Ray, "
        f"{len(plan.settled)} settled before it (done in the manifest, or refused)"
    )
    folders = _local_folders(out_place, plan.rows)
    report.removed_temps += _sweep(folders)
    try:
        for record in plan.settled:
            settle(record)
        if plan.rows:

            def started(record: Record) -> None:
                with lock:
                    if record.input not in seen:  # settled meanwhile: keep the outcome
                        book.add(record)

            attempts = Attempts(max_attempts, started)
            report.actors, report.seconds = _run(
                plan.rows, spec, cluster, progress, settle, say, attempts
            )
    finally:
        book.close()
        report.removed_temps += _sweep(folders)  # temps of writers killed during this run
    return report


def _check_resources(device: str, cluster: Cluster) -> None:
    if cluster.num_cpus < 0 or cluster.num_gpus < 0:
        raise InputError("--num-cpus and --num-gpus must be >= 0")
    if cluster.num_cpus == 0 and cluster.num_gpus == 0:
        raise InputError("each actor needs a share of a CPU or a GPU: --num-cpus or --num-gpus")
    if cluster.actors is not None and cluster.actors < 1:
        raise InputError(f"--actors must be at least 1, got {cluster.actors}")
    if cluster.num_gpus > 0 and device == "cpu":
        raise InputError("--num-gpus reserves GPUs for the actors but --device is cpu; "
                         "add --device cuda")  # fmt: skip


def _model_digest(model: str) -> str:
    """The sha256 of a model given as a URI: each node caches it under this name."""
    if not is_uri(model):
        return ""
    try:
        return sha256_of(place_of(model))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the model {model}: {exc}") from exc


def _model_text(model: str | Path) -> str:
    """A URI or pretrained name as given; a local file as an absolute path (Ray workers
    do not run in the driver's folder)."""
    text = str(model)
    if is_uri(text) or not os.path.exists(text):
        if not is_uri(text) and (os.sep in text or "." in Path(text).name):
            raise InputError(f"model not found: {text}")
        return text
    return os.path.abspath(text)


def _prepare_output(place: Place, text: str) -> None:
    if place.local:
        check_output_dir(Path(place.path))
    else:
        try:
            make_dirs(place)
        except OSError as exc:
            raise InputError(f"cannot create the output folder {text}: {exc}") from exc


def _local_folders(out: Place, rows: list[dict[str, Any]]) -> list[str]:
    """The local folders this run writes into (where killed writers leave temps)."""
    if not out.local:
        return []
    return sorted({out.path} | {os.path.dirname(r["out_path"]) for r in rows})


def _sweep(folders: list[str]) -> list[str]:
    return [str(path) for folder in folders for path in remove_stale_temps(folder)]


@dataclass
class Attempts:
    """The run's attempt ledger settings: the bound, and where ``started`` records go."""

    max_attempts: int
    record: Callable[[Record], None]


def _run(
    rows, spec: JobSpec, cluster: Cluster, progress: bool, settle, say, attempts: Attempts
) -> tuple[int, float]:
    """Stream ``rows`` through Ray Data; (actors used, seconds)."""
    ray = require("ray", _PURPOSE, _EXTRA)
    data = require("ray.data", _PURPOSE, _EXTRA)
    started = _connect(ray, cluster.address)
    poller = None
    try:
        ledger = _start_ledger(ray, attempts.max_attempts, rows)
        poller = _AttemptPoller(ray, ledger, attempts.record)
        actors = max(1, min(cluster.actors or _default_actors(ray, cluster), len(rows)))
        say(
            f"Ray Data: {actors} actor(s) x ({cluster.num_cpus:g} CPU, {cluster.num_gpus:g} GPU, "
            f"{spec.threads or 'all'} thread(s)) on {ray.get_runtime_context().gcs_address}"
        )
        context = data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.print_on_execution_start = progress
        io_tasks = max(2, 2 * actors)  # they mostly wait on storage: no CPU reserved
        blocks = max(4 * actors, math.ceil(len(rows) / ROWS_PER_BLOCK))  # 4 per actor
        dataset = data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS, blocks))
        dataset = dataset.map(read_stage, num_cpus=0, compute=data.TaskPoolStrategy(io_tasks))
        dataset = dataset.map(
            UpscaleActor,
            fn_constructor_kwargs={"spec": spec, "ledger": ledger},
            compute=data.ActorPoolStrategy(size=actors),
            num_cpus=cluster.num_cpus,
            num_gpus=cluster.num_gpus or None,
            # restarts and task retries stay Ray Data's, unbounded (max_restarts=-1,
            # max_task_retries=-1): a lost node must not end the job; the ledger bounds
            # the attempts per file instead
        )
        dataset = dataset.map(write_stage, num_cpus=0, compute=data.TaskPoolStrategy(io_tasks))
        begin = time.perf_counter()
        stream = iter(dataset.iter_rows())
        try:
            for row in stream:
                settle(record_of(row))
        except ray.exceptions.RayError as exc:
            raise OverNetError(f"the Ray job stopped: {_first_line(exc)}") from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stops the streaming executor when the driver leaves early
        return actors, time.perf_counter() - begin
    finally:
        if poller is not None:
            poller.stop()
        if started:
            ray.shutdown()


def _start_ledger(ray: Any, max_attempts: int, rows: list[dict[str, Any]]) -> Any:
    """The run's AttemptLedger actor, on the driver's node when the driver is on one (a
    worker node's loss must not take it), with the deaths of earlier runs."""
    options: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0}
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
    except Exception:  # a Ray client driver is on no node: anywhere will do
        pass
    earlier = {r["input"]: int(r["attempts"]) for r in rows if r["attempts"]}
    return ray.remote(AttemptLedger).options(**options).remote(max_attempts, earlier)


class _AttemptPoller:
    """Copies the attempts the ledger records into the manifest every ``POLL_S``."""

    def __init__(self, ray: Any, ledger: Any, record: Callable[[Record], None]) -> None:
        self.ray, self.ledger, self.record = ray, ledger, record
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="overnet-attempts", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.done.wait(POLL_S):
            self._copy()

    def _copy(self) -> None:
        try:
            begun = self.ray.get(self.ledger.drain.remote(), timeout=60)
        except Exception:  # the ledger went with its node: the run is ending anyway
            return
        for attempt in begun:
            self.record(_started_record(attempt))

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=60)
        self._copy()  # the last ones


def _started_record(attempt: dict[str, Any]) -> Record:
    from overnet.scaleout.stages import now

    return Record(
        input=attempt["input"],
        output="",
        status="started",
        attempts=int(attempt["attempts"]),
        actor=attempt["actor"],
        host=attempt["host"],
        pid=int(attempt["pid"]),
        node=attempt["node"],
        finished=now(),
    )


def _connect(ray: Any, address: str | None) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    try:
        if address in (None, "local"):  # no dashboard and no jobs API for a local one
            ray.init(address="local", include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise OverNetError(
            f"cannot reach the Ray cluster at {address}: {_first_line(exc)}; start one with "
            "`ray start --head`, or give a bare --ray for a local instance"
        ) from exc
    return True


def _default_actors(ray: Any, cluster: Cluster) -> int:
    resources = ray.cluster_resources()
    if cluster.num_gpus:
        count = int(resources.get("GPU", 0) // cluster.num_gpus)
        if count == 0:
            raise InputError("--num-gpus asks for GPUs but the Ray cluster reports none")
        return count
    return max(1, int(resources.get("CPU", 1) // cluster.num_cpus))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line and not line.startswith(" ")]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:500]
