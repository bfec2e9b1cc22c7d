"""Benchmark evaluation: datasets, metrics per image, reports."""

from overnet.eval.datasets import Dataset, Sample, discover
from overnet.eval.evaluate import PROTOCOLS, DatasetResult, ImageResult, Predictor, evaluate

__all__ = [
    "PROTOCOLS",
    "Dataset",
    "DatasetResult",
    "ImageResult",
    "Predictor",
    "Sample",
    "discover",
    "evaluate",
]
