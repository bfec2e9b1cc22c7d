"""Upscale many files: resumable, atomic, never over an input, one bad file at a time."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from overnet._atomic import remove_stale_temps
from overnet.errors import OverNetError
from overnet.imaging.files import (
    DEFAULT_MAX_PIXELS,
    InputFile,
    Png16Image,
    check_output_dir,
    load_image,
    output_format,
    output_path,
    save_image,
)
from overnet.runtime.pipeline import run_pipeline
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
        lines += [f"  failed: {r.input}: {r.error}" for r in self.results if r.status == "failed"]
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
    target: Path | None = None
    fmt: str = ""
    image: object = None
    output: object = None
    tiles: int = 0
    result: FileResult | None = None


class _Outputs:
    """Output-name checks shared by every input of one run (claimed names, inputs)."""

    def __init__(self, inputs, out_dir, fmt, suffix, overwrite, sweep) -> None:
        self.inputs = {item.path.resolve() for item in inputs}
        self.claimed: dict[Path, Path] = {}
        self.out_dir, self.fmt, self.suffix = out_dir, fmt, suffix
        self.overwrite, self.sweep = overwrite, sweep

    def target(self, item: InputFile) -> tuple[Path, str, bool]:
        """(output path, format, already done) or OverNetError when it must not be written."""
        chosen = output_format(item.path, self.fmt)
        target = output_path(item, self.out_dir, chosen, self.suffix)
        self.sweep(target.parent)
        resolved = target.resolve()
        if resolved in self.inputs:
            raise OverNetError(
                f"the output {target} would overwrite an input; choose another -o or --suffix"
            )
        if resolved in self.claimed:
            raise OverNetError(
                f"the output {target} is also the output of {self.claimed[resolved]}; give one "
                "of them another name, or use --suffix"
            )
        self.claimed[resolved] = item.path
        if target.exists() and any(os.path.samefile(target, p) for p in self.inputs):
            # case-insensitive filesystems and hard links: same file, different name
            raise OverNetError(
                f"the output {target} is the same file as an input; choose another -o or --suffix"
            )
        done = target.exists() and target.stat().st_size > 0 and not self.overwrite
        return target, chosen, done


def _failure(job: _Job, doing: str, exc: BaseException) -> FileResult:
    """A failed file, saying which step failed on which path."""
    item, target = job.item, job.target
    if isinstance(exc, OverNetError):
        return FileResult(item.path, target, "failed", str(exc))
    if isinstance(exc, MemoryError):
        return FileResult(
            item.path, target, "failed", "out of memory; lower --max-memory or --tile"
        )
    path = target if doing.endswith("the output") else item.path
    reason = getattr(exc, "strerror", None) or str(exc)
    return FileResult(item.path, target, "failed", f"could not {doing} {path}: {reason}")


_SETTLED = (OverNetError, MemoryError, OSError)  # this file fails, the batch goes on


def _read(job: _Job, outputs: _Outputs, max_pixels: int) -> _Job:
    """Output checks and decoding (reader thread)."""
    doing = "check the output"
    try:
        job.target, job.fmt, done = outputs.target(job.item)
        if done:
            job.result = FileResult(job.item.path, job.target, "skipped")
            return job
        doing = "read the input"
        job.image = load_image(job.item.path, max_pixels)
    except _SETTLED as exc:
        job.result = _failure(job, doing, exc)
    return job


def _infer(job: _Job, upscaler: Upscaler) -> _Job:
    """The model (caller's thread: sessions are not shared across threads)."""
    if job.result is not None:
        return job
    image = job.image
    try:
        job.tiles = len(upscaler.plan(image.height, image.width).tiles)
        if isinstance(image, Png16Image):
            job.output = Png16Image(upscaler.upscale(image.pixels), image.chunks)
        else:
            job.output = upscaler.upscale(image)
    except _SETTLED as exc:
        job.result = _failure(job, "upscale", exc)
    job.image = None  # the input's memory goes as soon as the model is done with it
    return job


def _write(job: _Job, quality: int) -> FileResult:
    """Encoding and the atomic write (writer thread)."""
    if job.result is None:
        try:
            save_image(job.output, job.target, job.fmt, quality)
            seconds = time.perf_counter() - job.begin
            job.result = FileResult(
                job.item.path, job.target, "done", seconds=seconds, tiles=job.tiles
            )
        except _SETTLED as exc:
            job.result = _failure(job, "write the output", exc)
    job.output = None
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
) -> BatchReport:
    """Upscale each input into ``out_dir``; failures are recorded, never raised.

    ``overlap_io``: decode the next image and encode the previous one in worker threads
    while the model runs (queues of PIPELINE_DEPTH images keep memory bounded); results
    and their order are the same either way.
    """
    from tqdm import tqdm

    check_output_dir(out_dir)
    report = BatchReport()
    sweep = _TempSweep(report.removed_temps)
    sweep(out_dir)
    outputs = _Outputs(inputs, out_dir, fmt, suffix, overwrite, sweep)
    start = time.perf_counter()
    bar = tqdm(total=len(inputs), unit="img", disable=not progress, dynamic_ncols=True)

    def read(item: InputFile) -> _Job:
        return _read(_Job(item, time.perf_counter()), outputs, max_pixels)

    def settle(result: FileResult) -> None:
        report.results.append(result)
        bar.set_postfix_str(result.input.name[-30:])
        bar.update()

    try:
        if overlap_io:
            run_pipeline(
                inputs,
                read,
                lambda job: _infer(job, upscaler),
                lambda job: _write(job, quality),
                settle,
            )
        else:
            for item in inputs:
                settle(_write(_infer(read(item), upscaler), quality))
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report
