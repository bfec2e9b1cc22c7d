"""Upscale many image files: resumable, atomic, never over an input, one bad file at a
time, and within ``--max-memory`` for the whole run.

Each file is an item of the job core: its output is named and claimed
(:class:`~overnet.jobs.naming.OutputNames`, O(1) per file), checked and planned from its
header (:func:`~overnet.jobs.images.plan_image`), admitted against the run's memory
budget, decoded, upscaled, encoded and written atomically. Anything raised on the way
fails that file alone (:mod:`overnet.jobs.boundary`); Ctrl-C stops the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overnet._atomic import remove_stale_temps, write_bytes_atomic
from overnet.errors import InputError
from overnet.imaging.files import (
    DEFAULT_MAX_PIXELS,
    InputFile,
    check_output_dir,
    output_format,
    output_path,
)
from overnet.jobs.boundary import Step, failure_line
from overnet.jobs.budget import MemoryBudget
from overnet.jobs.images import (
    ImageOptions,
    PlannedImage,
    check_fits_budget,
    encode_output,
    plan_image,
    read_image,
    upscale_image,
)
from overnet.jobs.naming import OutputNames, already_done, local_size
from overnet.jobs.pipeline import run_pipeline
from overnet.runtime.upscaler import Upscaler


@dataclass
class FileResult:
    input: Path
    output: Path | None
    status: str  # "done" | "skipped" | "failed"
    error: str = ""
    seconds: float = 0.0
    tiles: int = 0


@dataclass
class BatchReport:
    results: list[FileResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # inputs that matched nothing
    seconds: float = 0.0
    #: temp files of an interrupted earlier run, removed from the output folders
    removed_temps: list[Path] = field(default_factory=list)
    #: the run's memory budget (--max-memory)
    budget_bytes: int = 0
    #: the tiles followed --max-memory (no --tile given)
    auto_tiles: bool = True
    #: an INT8 session's run-time guard: how many tiles ran in float (overnet.runtime.int8_guard)
    guard: str = ""

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return not self.problems and self.count("failed") == 0

    def summary(self) -> str:
        done = self.count("done")
        rate = done / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{done} upscaled, {self.count('skipped')} skipped (output exists; --overwrite to "
            f"redo), {self.count('failed')} failed in {self.seconds:.1f} s ({rate:.3g} images/s)"
        ]
        tiled = sum(r.status == "done" and r.tiles > 1 for r in self.results)
        if tiled and self.auto_tiles:
            lines.append(
                f"{tiled} image(s) ran in tiles to fit --max-memory {self.budget_bytes / 1e9:.3g} "
                "GB (tiles of 96+ pixels with the default overlap changed Set5 x2 PSNR-Y by "
                "under 0.02 dB, docs/runtime.md#tiling); a larger --max-memory runs them whole"
            )
        if self.guard:
            lines.append(self.guard)
        lines += [failure_line(str(r.input), r.error) for r in self.results if r.status == "failed"]
        lines += [f"  input: {p}" for p in self.problems]
        if self.removed_temps:
            count = len(self.removed_temps)
            lines.append(
                f"removed {count} stale temp file{'s' if count > 1 else ''} left by an "
                "interrupted run:"
            )
            lines += [f"  {p}" for p in self.removed_temps]
        return "\n".join(lines)


class _TempSweep:
    """Removes stale temp files from each output folder once, the first time it is used
    (an interrupted run leaves them; a concurrent run's are kept, see overnet._atomic)."""

    def __init__(self, removed: list[Path]) -> None:
        self.removed = removed
        self.seen: set[Path] = set()

    def __call__(self, folder: Path) -> None:
        if folder not in self.seen:
            self.seen.add(folder)
            self.removed += remove_stale_temps(folder)


@dataclass
class _Job:
    """One input on its way through the stages; ``result`` set once it is settled."""

    item: InputFile
    begin: float
    step: Step
    target: Path | None = None
    planned: PlannedImage | None = None
    held: int = 0  # bytes of the run's budget this file holds
    image: Any = None
    output: Any = None
    result: FileResult | None = None

    def fail(self, exc: BaseException) -> None:
        self.result = FileResult(self.item.path, self.target, "failed", self.step.failure(exc))
        self.image = self.output = None


@dataclass
class _Run:
    """What every file of one run shares."""

    upscaler: Upscaler
    options: ImageOptions
    names: OutputNames
    out_dir: Path
    suffix: str
    overwrite: bool
    sweep: _TempSweep
    budget: MemoryBudget


def _read(job: _Job, run: _Run) -> _Job:
    """Name, check, plan, admit, decode (reader thread)."""
    item = job.item
    try:
        fmt = output_format(item.path, run.options.fmt)
        job.target = output_path(item, run.out_dir, fmt, run.suffix)
        job.step.output = str(job.target)
        run.sweep(job.target.parent)
        run.names.claim(job.target.resolve(), str(job.target), str(item.path))
        if already_done(local_size(job.target), run.overwrite):
            job.result = FileResult(item.path, job.target, "skipped")
            return job
        job.step("read the input")
        job.planned = plan_image(item.path, run.upscaler, run.options)
        check_fits_budget(job.planned, run.upscaler, run.budget)
        if not run.budget.take(job.planned.estimate):  # waits for earlier files' writes
            raise InputError("the run stopped before this file was read")
        job.held = job.planned.estimate
        job.image = read_image(item.path, job.planned, run.options)
    except Exception as exc:
        job.fail(exc)
    return job


def _infer(job: _Job, run: _Run) -> _Job:
    """The model (caller's thread: sessions are not shared across threads)."""
    if job.result is None:
        job.step("upscale")
        try:
            job.output = upscale_image(job.image, run.upscaler)
        except Exception as exc:
            job.fail(exc)
    job.image = None  # the input's memory goes as soon as the model is done with it
    return job


def _write(job: _Job, run: _Run) -> FileResult:
    """Encoding and the atomic write (writer thread)."""
    try:
        if job.result is None:
            job.step("write the output")
            assert job.planned is not None and job.target is not None
            data = encode_output(job.output, job.planned, run.options)
            job.output = None
            write_bytes_atomic(job.target, data)
            job.result = FileResult(
                job.item.path,
                job.target,
                "done",
                seconds=time.perf_counter() - job.begin,
                tiles=job.planned.tiles,
            )
    except Exception as exc:
        job.fail(exc)
    finally:
        job.output = None
        run.budget.give_back(job.held)
        job.held = 0
    assert job.result is not None
    return job.result


def upscale_files(
    inputs: list[InputFile],
    out_dir: Path,
    upscaler: Upscaler,
    *,
    fmt: str | None = None,
    suffix: str = "",
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quality: int = 95,
    progress: bool = True,
    overlap_io: bool = True,
    other_inputs: set[Path] | None = None,
) -> BatchReport:
    """Upscale each input into ``out_dir``; failures are recorded, never raised.

    ``overlap_io``: decode the next image and encode the previous one in worker threads
    while the model runs; images are admitted against ``upscaler.max_memory`` for the
    whole run (the next one is decoded once there is room), so memory stays bounded
    either way. Results and their order are the same with and without it.
    ``other_inputs``: resolved paths of the run's other inputs (its videos), which no
    output may overwrite either.
    """
    from tqdm import tqdm

    upscaler.check_tile()
    check_output_dir(out_dir)
    report = BatchReport()
    sweep = _TempSweep(report.removed_temps)
    sweep(out_dir)
    run = _Run(
        upscaler,
        ImageOptions(fmt, quality, max_pixels),
        OutputNames({item.path.resolve() for item in inputs} | set(other_inputs or ())),
        out_dir,
        suffix,
        overwrite,
        sweep,
        MemoryBudget(upscaler.max_memory),
    )
    start = time.perf_counter()
    bar = tqdm(total=len(inputs), unit="img", disable=not progress, dynamic_ncols=True)

    def read(item: InputFile) -> _Job:
        step = Step(str(item.path))
        step("plan the output")
        return _read(_Job(item, time.perf_counter(), step), run)

    def settle(result: FileResult) -> None:
        report.results.append(result)
        bar.set_postfix_str(result.input.name[-30:])
        bar.update()

    try:
        if overlap_io:
            run_pipeline(
                inputs,
                read,
                lambda job: _infer(job, run),
                lambda job: _write(job, run),
                settle,
                on_stop=run.budget.close,
            )
        else:
            for item in inputs:
                settle(_write(_infer(read(item), run), run))
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start
    report.budget_bytes = run.budget.total
    # a fixed-shape file (LiteRT, ExecuTorch) tiles at its shape whatever the budget
    info = upscaler.session.info
    fixed = info.max_hw is not None and info.max_hw == info.min_hw
    report.auto_tiles = upscaler.tile is None and not fixed
    counts = getattr(upscaler.session, "counts", None)  # an INT8 session behind its guard
    if counts is not None and counts.tiles:
        report.guard = counts.format()
    return report
