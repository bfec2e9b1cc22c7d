"""Evaluate a super-resolver on SR datasets the way the benchmark tables are made."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from overnet._atomic import remove_stale_temps
from overnet.errors import InputError, OverNetError
from overnet.eval.datasets import Dataset, Sample, discover
from overnet.imaging import float_to_uint8, read_rgb8, rgb8_to_nchw, write_image_atomic
from overnet.metrics import imresize, psnr_rgb, psnr_y, ssim_y

#: NCHW float32 RGB [0, 1] batch -> NCHW float32 SR batch.
Predictor = Callable[[np.ndarray], np.ndarray]

PROTOCOLS = ("paper", "standard")


@dataclass
class ImageResult:
    dataset: str
    name: str
    psnr_y: float = math.nan
    ssim_y: float = math.nan
    psnr_rgb: float = math.nan
    bicubic_psnr_y: float = math.nan
    bicubic_ssim_y: float = math.nan
    seconds: float = math.nan
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class DatasetResult:
    name: str
    layout: str
    scale: int
    protocol: str
    images: list[ImageResult]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[ImageResult]:
        return [r for r in self.images if r.error is None]

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.images if r.error is not None]

    def mean(self, metric: str) -> float:
        values = [getattr(r, metric) for r in self.ok]
        return float(np.mean(values)) if values else math.nan

    def to_dict(self) -> dict:
        metrics = ("psnr_y", "ssim_y", "psnr_rgb", "bicubic_psnr_y", "bicubic_ssim_y", "seconds")
        return {
            "dataset": self.name,
            "layout": self.layout,
            "scale": self.scale,
            "protocol": self.protocol,
            "mean": {m: self.mean(m) for m in metrics},
            "images": [asdict(r) for r in self.images],
            "failed": len(self.failed),
            "notes": self.notes,
        }


def evaluate_sample(
    sample: Sample,
    scale: int,
    predict: Predictor,
    protocol: str,
    dataset: str = "",
    save_dir: Path | None = None,
) -> ImageResult:
    """Metrics of one HR/LR pair; any problem is recorded in ``error``, never raised."""
    result = ImageResult(dataset, sample.name)
    try:
        if sample.error:
            raise InputError(sample.error)
        hr, notes = read_rgb8(sample.hr_path)
        result.notes += notes
        h, w = hr.shape[:2]
        hr = hr[: h - h % scale, : w - w % scale]
        if hr.shape[0] <= 2 * scale or hr.shape[1] <= 2 * scale:
            raise InputError(
                f"HR {sample.hr_path} is {h}x{w}: too small for a {scale}-pixel border at x{scale}"
            )
        if sample.lr_path is None:
            lr = imresize(hr, 1.0 / scale)
        else:
            lr, lr_notes = read_rgb8(sample.lr_path)
            result.notes += [f"LR: {n}" for n in lr_notes]
            if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
                raise InputError(
                    f"LR {sample.lr_path} is {lr.shape[0]}x{lr.shape[1]}; at x{scale} that is "
                    f"{lr.shape[0] * scale}x{lr.shape[1] * scale}, which does not match HR "
                    f"{sample.hr_path} ({hr.shape[0]}x{hr.shape[1]} after cropping to a "
                    f"multiple of {scale})"
                )
        start = time.perf_counter()
        sr = np.asarray(predict(rgb8_to_nchw(lr)))[0].transpose(1, 2, 0)
        result.seconds = time.perf_counter() - start
        if sr.shape != hr.shape:
            raise InputError(f"model output {sr.shape} does not match HR {hr.shape}")
        sr_eval = sr.astype(np.float64) if protocol == "paper" else float_to_uint8(sr)
        result.psnr_y = psnr_y(sr_eval, hr, scale)
        result.ssim_y = ssim_y(sr_eval, hr, scale)
        result.psnr_rgb = psnr_rgb(sr_eval, hr, scale)
        bicubic = imresize(lr, scale)
        result.bicubic_psnr_y = psnr_y(bicubic, hr, scale)
        result.bicubic_ssim_y = ssim_y(bicubic, hr, scale)
        if save_dir is not None:
            from PIL import Image

            target = save_dir / dataset / f"{sample.name}_x{scale}.png"
            write_image_atomic(Image.fromarray(float_to_uint8(sr)), target)
    except OverNetError as exc:
        result.error = str(exc)
    return result


def evaluate(
    dataset: Dataset,
    predict: Predictor,
    protocol: str = "paper",
    save_dir: Path | None = None,
    progress: bool = True,
) -> DatasetResult:
    """Run ``predict`` on every sample of ``dataset``; failures are recorded, not raised."""
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    from tqdm import tqdm

    notes = list(dataset.notes)
    if save_dir is not None:  # a killed earlier run may have left temp files there
        notes += [
            f"removed stale temp file {path} (left by an interrupted run)"
            for path in remove_stale_temps(save_dir / dataset.name)
        ]
    results = []
    bar = tqdm(
        dataset.samples,
        desc=f"{dataset.name} x{dataset.scale}",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    for sample in bar:
        results.append(
            evaluate_sample(sample, dataset.scale, predict, protocol, dataset.name, save_dir)
        )
    return DatasetResult(dataset.name, dataset.layout, dataset.scale, protocol, results, notes)


def dataset_psnr_y(predict: Predictor, folder: Path, scale: int) -> tuple[dict[str, float], str]:
    """PSNR-Y of ``predict`` per image of a held-out dataset (paper protocol) and the set's
    label: the score of the INT8 export's quality gate
    (``overnet.export.int8_data.HeldOutScore``)."""
    dataset = discover(folder, scale)
    result = evaluate(dataset, predict, "paper", progress=False)
    if result.failed:
        raise InputError(
            f"validation set {folder}: {len(result.failed)} image(s) failed, e.g. "
            f"{result.failed[0].error}"
        )
    scores = {r.name: r.psnr_y for r in result.ok}
    return scores, f"{dataset.name} x{scale} ({len(result.ok)} images)"
