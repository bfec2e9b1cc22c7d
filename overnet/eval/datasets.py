"""Find HR/LR pairs in the dataset layouts SR research uses.

Layouts, detected in this order:
- benchmark: ``NAME/HR/*`` + ``NAME/LR_bicubic/X{s}/<stem>x{s}.png`` (Set5, Set14, B100...)
- DIV2K: ``DIV2K_valid_HR/*`` + ``DIV2K_valid_LR_bicubic/X{s}/<stem>x{s}.png``
- upstream OverNet: ``x{s}/<stem>_HR.png`` + ``x{s}/<stem>_LR.png``
- a plain folder of HR images: LR made on the fly with the MATLAB-compatible bicubic.
Pairs are matched by name only; a missing partner becomes a per-image error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from overnet.errors import InputError
from overnet.imaging import is_image_path


@dataclass(frozen=True)
class Sample:
    name: str
    hr_path: Path | None
    lr_path: Path | None  # None: make LR from HR
    error: str | None = None  # a pairing problem found while scanning


@dataclass
class Dataset:
    name: str
    root: Path
    layout: str
    scale: int
    samples: list[Sample]
    notes: list[str] = field(default_factory=list)


def _images(folder: Path) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return [p for p in files if is_image_path(p)], [p for p in files if not is_image_path(p)]


def _pair_by_stem(hr_dir: Path, lr_dir: Path | None, scale: int) -> list[Sample]:
    hr_files, _ = _images(hr_dir)
    if lr_dir is None:
        return [Sample(p.stem, p, None) for p in hr_files]
    lr_files, _ = _images(lr_dir)
    lr_by_key: dict[str, Path] = {}
    for p in lr_files:
        stem = p.stem
        key = stem[: -len(f"x{scale}")] if stem.lower().endswith(f"x{scale}") else stem
        lr_by_key[key] = p
    samples = []
    for hr in hr_files:
        lr = lr_by_key.pop(hr.stem, None)
        error = None if lr else f"no LR partner for {hr} in {lr_dir} (expected {hr.stem}x{scale}.*)"
        samples.append(Sample(hr.stem, hr, lr, error))
    for key, lr in sorted(lr_by_key.items()):
        samples.append(Sample(key, None, lr, f"no HR partner for {lr} in {hr_dir}"))
    return samples


def discover(root: str | Path, scale: int) -> Dataset:
    """Scan ``root`` for one of the supported layouts at ``scale``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    notes: list[str] = []
    if (root / "HR").is_dir():
        layout, hr_dir = "benchmark", root / "HR"
        lr_dir = root / "LR_bicubic" / f"X{scale}"
    elif div2k := sorted(p for p in root.glob("DIV2K_*_HR") if p.is_dir()):
        layout, hr_dir = "div2k", div2k[0]
        lr_dir = root / f"{hr_dir.name[: -len('_HR')]}_LR_bicubic" / f"X{scale}"
    elif (root / f"x{scale}").is_dir():
        return _upstream_layout(root, scale)
    else:
        layout, hr_dir, lr_dir = "folder", root, None
    if lr_dir is not None and not lr_dir.is_dir():
        notes.append(f"{lr_dir} not found: LR images made from HR with MATLAB-style bicubic")
        lr_dir = None
    samples = _pair_by_stem(hr_dir, lr_dir, scale)
    if not samples:
        _, others = _images(hr_dir)
        extra = f" ({len(others)} non-image files ignored)" if others else ""
        raise InputError(f"no images found in {hr_dir}{extra}; expected {', '.join(_LAYOUTS)}")
    _, others = _images(hr_dir)
    if others:
        notes.append(f"ignored {len(others)} non-image files in {hr_dir} (e.g. {others[0].name})")
    return Dataset(root.name, root, layout, scale, samples, notes)


_LAYOUTS = ("NAME/HR + NAME/LR_bicubic/X{s}", "DIV2K_*_HR", "x{s}/*_HR.png", "a folder of images")


def _upstream_layout(root: Path, scale: int) -> Dataset:
    folder = root / f"x{scale}"
    images, _ = _images(folder)
    hr = {p.stem[: -len("_HR")]: p for p in images if p.stem.endswith("_HR")}
    lr = {p.stem[: -len("_LR")]: p for p in images if p.stem.endswith("_LR")}
    samples = []
    for key in sorted(set(hr) | set(lr)):
        error = None
        if key not in lr:
            error = f"no LR partner for {hr[key]} (expected {key}_LR.png)"
        elif key not in hr:
            error = f"no HR partner for {lr[key]} (expected {key}_HR.png)"
        samples.append(Sample(key, hr.get(key), lr.get(key), error))
    if not samples:
        raise InputError(f"no *_HR/*_LR images found in {folder}")
    return Dataset(root.name, root, "upstream", scale, samples)
