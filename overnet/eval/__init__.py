"""Benchmark evaluation: datasets, metrics per image, reports."""

from overnet.eval.datasets import Dataset, Sample, discover
from overnet.eval.evaluate import (
    PROTOCOLS,
    DatasetResult,
    ImageResult,
    Predictor,
    dataset_psnr_y,
    evaluate,
)

__all__ = [
    "PROTOCOLS",
    "Dataset",
    "DatasetResult",
    "ImageResult",
    "Predictor",
    "Sample",
    "dataset_psnr_y",
    "discover",
    "evaluate",
]
