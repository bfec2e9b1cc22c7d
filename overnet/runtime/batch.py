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
) -> BatchReport:
    """Upscale each input into ``out_dir``; failures are recorded, never raised."""
    from tqdm import tqdm

    check_output_dir(out_dir)
    report = BatchReport()
    sweep = _TempSweep(report.removed_temps)
    sweep(out_dir)
    input_paths = {item.path.resolve() for item in inputs}
    claimed: dict[Path, Path] = {}
    start = time.perf_counter()
    bar = tqdm(inputs, unit="img", disable=not progress, dynamic_ncols=True)
    for item in bar:
        bar.set_postfix_str(item.path.name[-30:])
        report.results.append(
            _one(
                item,
                out_dir,
                upscaler,
                fmt,
                suffix,
                overwrite,
                max_pixels,
                quality,
                input_paths,
                claimed,
                sweep,
            )
        )
    report.seconds = time.perf_counter() - start
    return report


def _one(
    item, out_dir, upscaler, fmt, suffix, overwrite, max_pixels, quality, inputs, claimed, sweep
):
    target = None
    begin = time.perf_counter()
    # What an OSError means depends on where it happened: say which file, and which way.
    doing = "check the output"
    try:
        chosen = output_format(item.path, fmt)
        target = output_path(item, out_dir, chosen, suffix)
        sweep(target.parent)
        resolved = target.resolve()
        if resolved in inputs:
            raise OverNetError(
                f"the output {target} would overwrite an input; choose another -o or --suffix"
            )
        if resolved in claimed:
            raise OverNetError(
                f"the output {target} is also the output of {claimed[resolved]}; give one of "
                "them another name, or use --suffix"
            )
        claimed[resolved] = item.path
        if target.exists() and any(os.path.samefile(target, p) for p in inputs):
            # case-insensitive filesystems and hard links: same file, different name
            raise OverNetError(
                f"the output {target} is the same file as an input; choose another -o or --suffix"
            )
        if target.exists() and target.stat().st_size > 0 and not overwrite:
            return FileResult(item.path, target, "skipped")
        doing = "read the input"
        image = load_image(item.path, max_pixels)
        doing = "upscale"
        h, w = image.height, image.width
        tiles = len(upscaler.plan(h, w).tiles)
        if isinstance(image, Png16Image):
            result = Png16Image(upscaler.upscale(image.pixels), image.chunks)
        else:
            result = upscaler.upscale(image)
        doing = "write the output"
        save_image(result, target, chosen, quality)
        return FileResult(
            item.path, target, "done", seconds=time.perf_counter() - begin, tiles=tiles
        )
    except OverNetError as exc:
        return FileResult(item.path, target, "failed", str(exc))
    except MemoryError:
        return FileResult(
            item.path, target, "failed", "out of memory; lower --max-memory or --tile"
        )
    except OSError as exc:  # unreadable input, disk full: this file fails, the batch goes on
        path = target if doing.endswith("the output") else item.path
        reason = exc.strerror or str(exc)
        return FileResult(item.path, target, "failed", f"could not {doing} {path}: {reason}")
