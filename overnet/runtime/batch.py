"""Upscale many files: resumable, atomic, never over an input, one bad file at a time."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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
        return "\n".join(lines)


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
            )
        )
    report.seconds = time.perf_counter() - start
    return report


def _one(item, out_dir, upscaler, fmt, suffix, overwrite, max_pixels, quality, inputs, claimed):
    target = None
    begin = time.perf_counter()
    try:
        chosen = output_format(item.path, fmt)
        target = output_path(item, out_dir, chosen, suffix)
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
        image = load_image(item.path, max_pixels)
        h, w = image.height, image.width
        tiles = len(upscaler.plan(h, w).tiles)
        if isinstance(image, Png16Image):
            result = Png16Image(upscaler.upscale(image.pixels), image.chunks)
        else:
            result = upscaler.upscale(image)
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
    except OSError as exc:  # disk full, permissions: this file fails, the batch goes on
        return FileResult(item.path, target, "failed", f"could not write {target}: {exc}")
