"""Disjoint image sets for INT8: calibration (activation ranges), validation (the gate) and,
for the accuracy-aware search only, search (what NNCF's accuracy control scores candidate
models on; plain INT8 has none).

An image is known by the sha256 of its decoded RGB pixels and size, so a copy under another
name, or a PNG of the same pixels, is the same image. An image found in two sets stays in
the later one (calibration < search < validation) and leaves the other, which the notes
say; a set that ends up empty is an error. A set not given is split from the calibration
images, by the order of their hashes (so neither names nor listing order choose it).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from overnet.errors import InputError

#: fewest images per set; validation needs two for a spread at all
MIN_IMAGES = {"calibration": 1, "search": 1, "validation": 2}
#: share of the calibration folder split off for a set not given
SPLIT_SHARE = 0.25


@dataclass(frozen=True)
class ImageSets:
    """Image files per role (HR images, any size) and how they were chosen."""

    calibration: tuple[Path, ...]
    search: tuple[Path, ...]
    validation: tuple[Path, ...]
    #: the folder the gate scores: the one given, or a folder of links to the split images
    validation_folder: Path
    hashes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> 16-hex hashes
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """``calibration 7 images, search 3, validation 8 (split from calib)``."""
        return (
            f"calibration {len(self.calibration)} images, search {len(self.search)}, "
            f"validation {len(self.validation)}"
        )


def content_hash(path: Path) -> str:
    """sha256 of the decoded RGB8 pixels and their size (not of the file's bytes)."""
    from overnet.imaging import read_rgb8

    rgb = read_rgb8(path)[0]
    digest = hashlib.sha256(f"{rgb.shape[0]}x{rgb.shape[1]}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def folder_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (and below it with ``recursive``), sorted."""
    from overnet.imaging import is_image_path

    if not folder.is_dir():
        raise InputError(f"image folder {folder} does not exist (expected a folder of images)")
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_image_path(p))


def validation_images(folder: Path) -> list[Path]:
    """The HR images of a validation folder: NAME/HR when there is one (the SR benchmark
    layout, LR_bicubic beside it), else every image in or below the folder."""
    hr = folder / "HR"
    return folder_images(hr) if hr.is_dir() else folder_images(folder, recursive=True)


def _hashed(files: list[Path], role: str, notes: list[str]) -> dict[str, Path]:
    """hash -> file, duplicates within one set dropped with a note."""
    out: dict[str, Path] = {}
    for path in files:
        key = content_hash(path)
        if key in out:
            notes.append(f"{role}: {path.name} has the same pixels as {out[key].name}: used once")
            continue
        out[key] = path
    return out


def _take_out(later: dict[str, Path], earlier: dict[str, Path], roles: str, notes: list[str]):
    """Drop from ``earlier`` the images ``later`` holds too (``roles``: "search/calibration")."""
    shared = [key for key in earlier if key in later]
    for key in shared:
        notes.append(
            f"{earlier[key].name} is in the {roles.split('/')[1]} and the {roles.split('/')[0]} "
            f"set (same pixels as {later[key]}): kept for {roles.split('/')[0]} only"
        )
        del earlier[key]


def _split_off(pool: dict[str, Path], count: int) -> dict[str, Path]:
    """The first ``count`` images of ``pool`` in hash order, removed from ``pool``."""
    keys = sorted(pool)[:count]
    return {key: pool.pop(key) for key in keys}


def plan_sets(
    calibration: Path,
    search: Path | None,
    validation: Path | None,
    staging: Path,
    *,
    needs_search: bool = True,
) -> ImageSets:
    """Resolve the sets; ``staging`` receives the split validation folder (links).
    ``needs_search`` False (plain INT8): no search set, ``search`` must be None.

    InputError when a set is left with fewer images than MIN_IMAGES (saying which images
    went where) or a folder holds no images.
    """
    if not needs_search and search is not None:
        raise InputError("a search set is given but plain INT8 scores none")
    notes: list[str] = []
    cal = _hashed(folder_images(calibration), "calibration", notes)
    if not cal:
        raise InputError(f"no images in the calibration folder {calibration}")
    given = len(cal)
    val = _hashed(validation_images(validation), "validation", notes) if validation else None
    srch = _hashed(folder_images(search), "search", notes) if search else None
    if val is not None:
        if not val:
            raise InputError(f"no images in the validation folder {validation}")
        _take_out(val, cal, "validation/calibration", notes)
        if srch is not None:
            _take_out(val, srch, "validation/search", notes)
    if srch is not None:
        if not srch and search is not None:
            raise InputError(f"no images in the search folder {search}")
        _take_out(srch, cal, "search/calibration", notes)
    share = max(1, math.floor(given * SPLIT_SHARE + 0.5))
    if val is None:
        val = _split_off(cal, max(MIN_IMAGES["validation"], share))
        notes.append(f"validation: {len(val)} of the {given} calibration images (split by hash)")
    if srch is None and needs_search:
        srch = _split_off(cal, max(MIN_IMAGES["search"], share))
        notes.append(f"search: {len(srch)} of the {given} calibration images (split by hash)")
    sets = {"calibration": cal, "search": srch or {}, "validation": val}
    for role, images in sets.items():
        if len(images) < MIN_IMAGES[role] and (role != "search" or needs_search):
            raise InputError(
                f"the {role} set has {len(images)} image(s) left, at least {MIN_IMAGES[role]} "
                f"needed; every image may serve one set only ({'; '.join(notes) or 'no overlap'})."
                " Give more images: --calibration DIR (split into calibration, search and "
                "validation when --search-set/--validation are not given), or separate "
                "--search-set and --validation folders"
            )
    if validation is not None:
        folder = validation
    else:
        folder = staging / "validation"
        folder.mkdir(parents=True, exist_ok=True)
        for path in val.values():
            os.symlink(path.resolve(), folder / path.name)
    return ImageSets(
        tuple(cal.values()),
        tuple(sets["search"].values()),
        tuple(val.values()),
        folder,
        {role: tuple(k[:16] for k in sorted(images)) for role, images in sets.items()},
        tuple(notes),
    )
