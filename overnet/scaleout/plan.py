"""Before Ray starts: list the inputs, name the outputs, and decide what is left to do.

Inputs are local files, folders and globs (listed as the local command lists them,
:func:`overnet.video.files.split_inputs`) or ``pyarrow.fs`` URIs of files, folders and
globs (``*``, ``[...]``, ``**``; a ``?`` starts the URI's query; images and videos told
apart by extension). Output names are the local command's
(:func:`overnet.imaging.files.output_path`, :func:`overnet.video.files.video_output_path`)
below the output folder or URI.

What is done: an input whose manifest record says done (or skipped) with an output that
still exists at the recorded size is skipped here, without Ray; an output that exists
without such a record (the local command's, or one written just before a crash) is hashed
by a read task and skipped, as the local command skips existing outputs. ``overwrite``
redoes everything; failed inputs are always tried again.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from overnet._optional import require
from overnet.errors import InputError
from overnet.imaging.files import InputFile, output_format, output_path
from overnet.imaging.io import is_image_path
from overnet.jobs.boundary import Step
from overnet.jobs.naming import OutputNames
from overnet.scaleout.manifest import Record
from overnet.scaleout.stages import new_row, now
from overnet.scaleout.storage import (
    Place,
    file_info,
    is_uri,
    list_files,
    place_of,
    safe_relative,
)
from overnet.video.probe import VIDEO_SUFFIXES


@dataclass(frozen=True)
class Source:
    place: Place
    relative: str  # posix path of its output below the output folder (before renaming)
    kind: str  # image | video
    size: int = 0
    refused: str = ""  # why this input is not run (a key that leaves its folder)


@dataclass
class Plan:
    rows: list[dict[str, Any]] = field(default_factory=list)  # work for the Ray dataset
    settled: list[Record] = field(default_factory=list)  # decided here (done before, refused)
    images: int = 0
    videos: int = 0


def find_inputs(specs: list[str], recursive: bool, out: Place) -> tuple[list[Source], list[str]]:
    """Every input once (first spec wins), and the specs that matched nothing."""
    from overnet.video.files import split_inputs

    found: dict[Place, Source] = {}
    problems: list[str] = []
    plain = [s for s in specs if not is_uri(s)]
    if plain:
        exclude = Path(out.path) if out.local else None
        images, videos, local_problems = split_inputs(plain, recursive, exclude=exclude)
        problems += local_problems
        for kind, items in (("image", images), ("video", videos)):
            for item in items:
                place = Place("", os.path.abspath(item.path))
                size = _local_size(item.path)
                found.setdefault(place, Source(place, item.relative.as_posix(), kind, size))
    for spec in specs:
        if is_uri(spec):
            sources, problem = _uri_inputs(spec, recursive, out)
            problems += [problem] if problem else []
            for source in sources:
                found.setdefault(source.place, source)
    return list(found.values()), problems


def _local_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _kind(name: str) -> str | None:
    if posixpath.splitext(name)[1].lower() in VIDEO_SUFFIXES:
        return "video"
    return "image" if is_image_path(Path(name)) else None


def _uri_inputs(spec: str, recursive: bool, out: Place) -> tuple[list[Source], str]:
    place = place_of(spec)
    fs = require("pyarrow.fs", "overnet upscale --ray", "ray")
    if any(ch in place.path for ch in "*?["):
        base, pattern = _split_glob(place.path)
        deep = "**" in pattern or "/" in pattern
        listed = list_files(Place(place.root, base), recursive=deep)
        pats = pattern.split("/")
        matches = [
            (p, size, p.name)
            for p, size in listed
            if _glob_match(p.path[len(base.rstrip("/")) + 1 :].split("/"), pats)
        ]
        what = "the pattern matches no image or video files"
    else:
        info = file_info(place)
        if info.type == fs.FileType.File:
            return [Source(place, place.name, _kind(place.name) or "image", info.size)], ""
        if info.type != fs.FileType.Directory:
            return [], f"{spec}: no such file or folder"
        listed = list_files(place, recursive)
        matches = [(p, size, p.path[len(place.path.rstrip("/")) + 1 :]) for p, size in listed]
        what = "no images or videos in this folder" + ("" if recursive else " (--recursive?)")
        base = place.path
    inside = ((out.local and place.local) or out.root == place.root) and out.path != base
    sources = [
        Source(p, rel, kind, size, _refusal(p.path, base))
        for p, size, rel in matches
        if (kind := _kind(p.name)) and not (inside and _below(p.path, out.path))
    ]
    return sources, "" if sources else f"{spec}: {what}"


def _refusal(path: str, base: str) -> str:
    """Why the key ``path`` listed below ``base`` is refused ("" when it is not)."""
    try:
        safe_relative(path, base)
    except InputError as exc:
        return str(exc)
    return ""


def _below(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _split_glob(path: str) -> tuple[str, str]:
    parts = path.split("/")
    first = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    return "/".join(parts[:first]) or "/", "/".join(parts[first:])


def _glob_match(parts: list[str], pats: list[str]) -> bool:
    """Segment-wise glob: ``*`` within a name, ``**`` across any number of folders."""
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_glob_match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and _glob_match(parts[1:], pats[1:])
    )


@dataclass(frozen=True)
class Naming:
    """How outputs are named: --format, --suffix, and for videos the encoder and container."""

    fmt: str | None = None
    suffix: str = ""
    encode: Any = None  # overnet.video.EncodeOptions
    video_format: str | None = None


def output_of(source: Source, out: Place, naming: Naming) -> tuple[Place, str]:
    """(output place, image format or '') named as the local command names it."""
    item = InputFile(Path(source.place.name), Path(source.relative))
    fmt, suffix = naming.fmt, naming.suffix
    if source.kind == "video":
        from overnet.video.encode import EncodeOptions
        from overnet.video.files import video_output_path

        if source.place.local:  # the extension may come from the container's first bytes
            item = InputFile(Path(source.place.path), Path(source.relative))
        encode = naming.encode or EncodeOptions()
        relative, _ = video_output_path(item, Path(), encode, naming.video_format, suffix)
        return _inside(out, relative.as_posix()), ""
    chosen = output_format(item.path, fmt)
    return _inside(out, output_path(item, Path(), chosen, suffix).as_posix()), chosen


def _inside(out: Place, relative: str) -> Place:
    """``out`` joined with ``relative``, refused unless the result stays below ``out``."""
    target = out.join(relative)
    safe_relative(posixpath.normpath(target.path), out.path)
    return target


def make_plan(
    sources: list[Source],
    out: Place,
    earlier: dict[str, Record],
    naming: Naming,
    overwrite: bool,
) -> Plan:
    """Rows for the inputs left to do, records for the ones settled without Ray."""
    plan = Plan()
    existing = {p.path: size for p, size in list_files(out, recursive=True)}
    names = OutputNames((s.place for s in sources), _local_path)
    for source in sources:
        text = source.place.text()
        step, target = Step(text), None
        if source.refused:
            reason = step.failure(InputError(source.refused))
            plan.settled.append(Record(text, "", "failed", reason, finished=now()))
            continue
        try:
            target, chosen = output_of(source, out, naming)
            names.claim(target, target.text(), text)
        except Exception as exc:  # this input fails, the plan goes on
            shown = target.text() if target is not None else ""
            plan.settled.append(Record(text, shown, "failed", step.failure(exc), finished=now()))
            continue
        plan.images += source.kind == "image"
        plan.videos += source.kind == "video"
        size = existing.get(target.path, 0)
        before = earlier.get(text)
        if (
            not overwrite
            and before is not None
            and before.status in ("done", "skipped")
            and before.output == target.text()
            and before.output_size == size > 0
        ):
            plan.settled.append(replace(before, status="skipped", error="", seconds=0.0,
                                        finished=now()))  # fmt: skip
            continue
        action = "verify" if size > 0 and not overwrite else "upscale"
        plan.rows.append(
            new_row(
                input=text,
                in_root=source.place.root,
                in_path=source.place.path,
                output=target.text(),
                out_root=target.root,
                out_path=target.path,
                kind=source.kind,
                fmt=chosen,
                action=action,
                input_size=source.size,
                # an earlier run that ended with this file begun: its worker died on it
                attempts=before.attempts if before and before.status == "started" else 0,
            )
        )
    return plan


def _local_path(place: Place) -> str | None:
    return place.path if place.local else None
