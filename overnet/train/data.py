"""Find, decode and check training images: HR uint8 plus an LR image per scale.

Layouts are the ones ``overnet eval`` reads (:func:`overnet.eval.discover`):
DIV2K (``DIV2K_train_HR`` + ``DIV2K_train_LR_bicubic/X{s}``), benchmark
(``HR`` + ``LR_bicubic/X{s}``), upstream ``x{s}/*_HR.png``, or any folder of HR
images, whose LR is made once per image with the MATLAB-compatible bicubic
(:func:`overnet.metrics.imresize`), the degradation the benchmarks use.
Corrupt, unpaired and too-small images are skipped and counted; an LR image whose
size does not match its HR is an error (the folder is probably the wrong scale).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from overnet.errors import InputError
from overnet.eval.datasets import discover
from overnet.imaging import read_rgb8
from overnet.metrics import imresize
from overnet.train.cache import cached_array
from overnet.train.errors import TrainDataError


@dataclass
class TrainImage:
    """One HR image (HWC uint8 RGB) and its LR image per scale (h // s x w // s)."""

    name: str
    hr: np.ndarray
    lr: dict[int, np.ndarray]


@dataclass
class TrainSet:
    """Usable images plus what was skipped and why."""

    images: list[TrainImage]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Hash of names and sizes: a resumed run must sample from the same images."""
        text = "|".join(f"{im.name}:{im.hr.shape}" for im in self.images)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def summary(self) -> str:
        parts = [f"{len(self.images)} training images"]
        parts += [f"{len(names)} skipped ({reason})" for reason, names in self.skipped.items()]
        return ", ".join(parts)


@dataclass
class _Source:
    name: str
    hr: Path
    lr: dict[int, Path | None]  # None: made from HR


def _find_sources(
    folders: list[Path], scales: list[int], skipped: dict[str, list[str]], notes: list[str]
) -> list[_Source]:
    sources: dict[Path, _Source] = {}
    for folder in folders:
        if not folder.is_dir():
            raise TrainDataError(
                f"training data folder not found: {folder}; expected a folder of HR images "
                "or a DIV2K-style folder (DIV2K_train_HR + DIV2K_train_LR_bicubic/X{s})"
            )
        for scale in scales:
            try:
                dataset = discover(folder, scale)
            except InputError as exc:
                raise TrainDataError(
                    f"no training images in {folder}: {exc}. Point --data at a folder of "
                    "PNG/JPEG HR images or a DIV2K-style folder"
                ) from exc
            notes.extend(dataset.notes)
            for sample in dataset.samples:
                if sample.error or sample.hr_path is None:
                    skipped.setdefault("unpaired", []).append(f"{sample.name}: {sample.error}")
                    continue
                key = sample.hr_path.resolve()
                src = sources.setdefault(key, _Source(sample.hr_path.stem, sample.hr_path, {}))
                src.lr[scale] = sample.lr_path
    # An image must have an LR source at every scale (a missing partner skipped it).
    return [s for s in sources.values() if len(s.lr) == len(scales)]


def _load_lr(src: _Source, hr: np.ndarray, scale: int, cache: Path | None) -> np.ndarray:
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    lr_path = src.lr[scale]
    if lr_path is None:

        def make() -> np.ndarray:
            # MATLAB crops HR to a multiple of the scale before downscaling.
            return imresize(np.asarray(hr[: h * scale, : w * scale]), 1.0 / scale)

        lr, _ = cached_array(cache, src.hr, f"x{scale}bicubic", make)
    else:
        lr, _ = cached_array(cache, lr_path, "lr", lambda: read_rgb8(lr_path)[0])
    if lr.shape[:2] != (h, w):
        raise TrainDataError(
            f"LR image {lr_path} is {lr.shape[0]}x{lr.shape[1]} but its HR {src.hr} is "
            f"{hr.shape[0]}x{hr.shape[1]}, so x{scale} needs LR {h}x{w}. Is the LR folder "
            f"for another scale? Regenerate X{scale} with MATLAB bicubic, or remove the LR "
            "folder to have LR made from HR"
        )
    return lr


def load_train_set(
    folders: list[Path],
    scales: list[int],
    patch: int,
    cache: Path | None = None,
    progress: bool = True,
) -> TrainSet:
    """Decode every usable image in ``folders`` for ``scales`` (LR patch side ``patch``).

    Raises TrainDataError when nothing usable remains or an LR/HR pair mismatches.
    """
    skipped: dict[str, list[str]] = {}
    notes: list[str] = []
    sources = _find_sources(folders, scales, skipped, notes)
    from tqdm import tqdm

    images: list[TrainImage] = []
    what = "caching" if cache is not None else "decoding"
    bar = tqdm(
        sources,
        desc=f"{what} training images",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    min_hr = patch * max(scales)
    for src in bar:
        try:
            hr, _ = cached_array(cache, src.hr, "hr", lambda s=src: read_rgb8(s.hr)[0])
        except InputError as exc:
            if isinstance(exc, TrainDataError):
                raise
            skipped.setdefault("corrupt", []).append(str(exc))
            continue
        too_small = [s for s in scales if min(hr.shape[0] // s, hr.shape[1] // s) < patch]
        if too_small:
            skipped.setdefault("smaller than the patch", []).append(
                f"{src.hr} ({hr.shape[0]}x{hr.shape[1]})"
            )
            continue
        try:
            lr = {s: _load_lr(src, hr, s, cache) for s in scales}
        except TrainDataError:
            raise
        except InputError as exc:
            skipped.setdefault("corrupt", []).append(str(exc))
            continue
        images.append(TrainImage(src.name, hr, lr))
    if not images:
        raise TrainDataError(_nothing_usable(folders, skipped, patch, min_hr, scales))
    return TrainSet(images, skipped, sorted(set(notes)))


def _nothing_usable(
    folders: list[Path], skipped: dict[str, list[str]], patch: int, min_hr: int, scales: list[int]
) -> str:
    where = ", ".join(str(f) for f in folders)
    if not skipped:
        return f"no training images in {where}; expected PNG/JPEG HR images"
    counts = "; ".join(
        f"{len(items)} {reason} (e.g. {items[0]})" for reason, items in skipped.items()
    )
    advice = []
    if "smaller than the patch" in skipped:
        advice.append(
            f"use a smaller --patch (now {patch} LR pixels, so HR images need at least "
            f"{min_hr}x{min_hr} at x{max(scales)}) or larger images"
        )
    if "corrupt" in skipped:
        advice.append("replace the corrupt files")
    if "unpaired" in skipped:
        advice.append("give every HR image its LR partner (or remove the LR folder)")
    return f"no usable training images in {where}: {counts}. To fix: {'; '.join(advice)}"
