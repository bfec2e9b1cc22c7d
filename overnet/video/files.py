"""Many inputs: tell videos from images, name outputs, run each video, one failure at a time.

Inputs are sorted by content: a file whose first bytes are a video container (or named
.mp4 .mkv .mov .webm .avi .m4v) is a video, everything else goes the image way. Folders
and globs are searched for both. Video outputs are ``OUTDIR/<stem><suffix><ext>``: the
extension is --video-format's, else the input's, else (a codec the input's container
cannot hold, e.g. ffv1 in .webm) .mkv. Existing outputs are skipped unless --overwrite.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable
from pathlib import Path

from overnet._atomic import remove_stale_temps
from overnet.imaging.files import InputFile, check_output_dir, expand_inputs
from overnet.jobs.boundary import Step
from overnet.jobs.naming import OutputNames, already_done, local_size
from overnet.runtime.upscaler import Upscaler
from overnet.video.decode import Trim
from overnet.video.encode import EncodeOptions, choose_suffix
from overnet.video.probe import VIDEO_SUFFIXES, is_video_file, probe_video, video_suffix
from overnet.video.report import VideoReport, VideoResult

#: makes a progress callback for one video: (name, estimated frames or None) -> (on_frame,
#: close)
ProgressFactory = Callable[[str, "int | None"], "tuple[Callable[[int], None], Callable[[], None]]"]


def split_inputs(
    specs: list[str], recursive: bool = False, exclude: Path | None = None
) -> tuple[list[InputFile], list[InputFile], list[str]]:
    """Files, folders and globs -> (images, videos, problems). A spec is a problem only
    when it matches neither images nor videos."""
    images: dict[Path, InputFile] = {}
    videos: dict[Path, InputFile] = {}
    problems: list[str] = []
    for spec in specs:
        found, spec_problems = expand_inputs([spec], recursive, exclude)
        extra = _video_files(spec, recursive, exclude)
        for item in [*found, *extra]:
            key = item.path.resolve()
            if key in images or key in videos:
                continue
            (videos if is_video_file(item.path) else images)[key] = item
        if not found and not extra:
            problems += spec_problems
    return list(images.values()), list(videos.values()), problems


def _video_files(spec: str, recursive: bool, exclude: Path | None) -> list[InputFile]:
    """Video-named files in a folder or glob (expand_inputs finds image names only)."""
    path = Path(spec)
    if any(ch in spec for ch in "*?["):
        root = Path(spec.split("*")[0].split("?")[0].split("[")[0] or ".")
        root = root if root.is_dir() else root.parent
        files = sorted(Path(m) for m in glob.glob(spec, recursive=True))
        named = [(f, Path(f.name)) for f in files]
    elif path.is_dir():
        root = path
        walker = path.rglob("*") if recursive else path.iterdir()
        named = [(f, f.relative_to(path)) for f in sorted(walker)]
    else:
        return []
    out = exclude.resolve() if exclude is not None else None
    return [
        InputFile(f, rel)
        for f, rel in named
        if f.is_file()
        and f.suffix.lower() in VIDEO_SUFFIXES
        and not (out and out != root.resolve() and f.resolve().is_relative_to(out))
    ]


def video_output_path(
    item: InputFile, out_dir: Path, options: EncodeOptions, fmt: str | None, suffix: str
) -> tuple[Path, str]:
    """(output path, note or '') for the video ``item``."""
    ext, note = choose_suffix(video_suffix(item.path), fmt, options.codec)
    rel = item.relative
    return out_dir / rel.parent / f"{rel.stem}{suffix}{ext}", note


def upscale_video_files(
    videos: list[InputFile],
    out_dir: Path,
    upscaler: Upscaler,
    options: EncodeOptions,
    *,
    fmt: str | None = None,
    suffix: str = "",
    overwrite: bool = False,
    trim: Trim | None = None,
    strict: bool = False,
    progress: ProgressFactory | None = None,
    inputs: set[Path] | None = None,
) -> VideoReport:
    """Upscale each video into ``out_dir``; failures are recorded, never raised (Ctrl-C
    is: it stops the run, and the video in progress leaves nothing behind)."""
    check_output_dir(out_dir)
    upscaler.check_tile()
    report = VideoReport()
    names = OutputNames(set(inputs or ()) | {v.path.resolve() for v in videos})
    swept: set[Path] = set()
    start = time.perf_counter()
    for item in videos:
        target = None
        step = Step(str(item.path))
        try:
            target, note = video_output_path(item, out_dir, options, fmt, suffix)
            if target.parent not in swept:
                swept.add(target.parent)
                report.removed_temps += remove_stale_temps(target.parent)
            names.claim(target.resolve(), str(target), str(item.path))
            if already_done(local_size(target), overwrite):
                report.results.append(VideoResult(item.path, target, "skipped"))
                continue
            step.output = str(target)
            step("write the output")  # its folder first: a failure there is the output's
            target.parent.mkdir(parents=True, exist_ok=True)
            step("upscale")
            result = _one(item.path, target, upscaler, options, trim, strict, progress)
            if note:
                result.notes.insert(0, note)
            report.results.append(result)
        except Exception as exc:  # this video fails, the rest go on (Ctrl-C stops the run)
            report.results.append(VideoResult(item.path, target, "failed", step.failure(exc)))
    report.seconds = time.perf_counter() - start
    return report


def _one(source, target, upscaler, options, trim, strict, progress) -> VideoResult:
    from overnet.video.pipeline import upscale_video

    on_frame, close = None, None
    if progress is not None:
        facts = probe_video(source)
        trim_ = trim or Trim()
        total = facts.estimated_frames(trim_.start, trim_.duration)
        if trim_.frames is not None:
            total = min(total, trim_.frames) if total is not None else trim_.frames
        on_frame, close = progress(source.name, total)
    try:
        return upscale_video(
            source, target, upscaler, options, trim=trim, strict=strict, on_frame=on_frame
        )
    finally:
        if close is not None:
            close()
