"""Data and measurements for INT8 quantisation: calibration crops, their PSNR-Y, the
default held-out set, and interleaved latency of several OpenVINO models (numpy +
OpenVINO only)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overnet.errors import InputError

#: NCHW float32 RGB [0, 1] batch -> NCHW float32 SR batch
Predictor = Callable[[np.ndarray], np.ndarray]
#: (predictor, held-out folder, scale) -> (PSNR-Y in dB by image name, a label for the set):
#: the gate's score, given by the caller (``overnet.eval.dataset_psnr_y`` from the command
#: line), as evaluation sits above export
HeldOutScore = Callable[[Predictor, Path, int], tuple[dict[str, float], str]]


@dataclass(frozen=True)
class Pair:
    """A low-resolution network input and the high-resolution image it should become."""

    lr: np.ndarray  # 1x3xhxw float32 [0, 1]
    hr: np.ndarray  # (h*scale)x(w*scale)x3 uint8


def calibration_pairs(
    source: Path | Sequence[Path], scale: int, count: int, lr_size: int, seed: int = 0
) -> list[Pair]:
    """``count`` random crops of the images in ``source`` (a folder or a list of files; HR
    side ``lr_size * scale``), each with its LR made by MATLAB-style bicubic as the SR
    benchmarks make theirs."""
    from overnet.imaging import is_image_path, read_rgb8, rgb8_to_nchw
    from overnet.metrics import imresize

    if isinstance(source, Path):
        if not source.is_dir():
            raise InputError(f"calibration folder {source} does not exist")
        files = sorted(p for p in source.iterdir() if p.is_file() and is_image_path(p))
        folder = str(source)
    else:
        files, folder = list(source), "the images given"
    if not files:
        raise InputError(f"no images in the calibration folder {folder}")
    side = lr_size * scale
    images = [read_rgb8(p)[0] for p in files]
    usable = [img for img in images if min(img.shape[:2]) >= side]
    if not usable:
        raise InputError(
            f"every image in {folder} is smaller than the {side}x{side} crops asked for; "
            "use a smaller --crop-size or larger images"
        )
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(count):
        img = usable[i % len(usable)]
        y = int(rng.integers(0, img.shape[0] - side + 1))
        x = int(rng.integers(0, img.shape[1] - side + 1))
        hr = np.ascontiguousarray(img[y : y + side, x : x + side])
        pairs.append(Pair(rgb8_to_nchw(imresize(hr, 1.0 / scale)), hr))
    return pairs


def pairs_psnr_y(predict: Predictor, pairs: list[Pair], scale: int) -> list[float]:
    """PSNR-Y (border ``scale``, float output as the paper protocol) of each pair."""
    from overnet.metrics import psnr_y

    values = []
    for pair in pairs:
        sr = np.asarray(predict(pair.lr))[0].transpose(1, 2, 0).astype(np.float64)
        values.append(psnr_y(sr, pair.hr, scale))
    return values


def interleaved_latency(
    runners: dict[str, Predictor], shape: tuple[int, ...], rounds: int = 3
) -> dict[str, float]:
    """Median seconds per run of each predictor on one random input, one warm-up each,
    then ``rounds`` rounds that run every predictor in turn (load changes hit all alike)."""
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        run(x)
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(x)
            samples[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in samples.items()}


def ov_predictor(compiled: Any) -> Predictor:
    """A predictor over an openvino.CompiledModel (one infer request, output copied)."""
    request = compiled.create_infer_request()

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.array(request.infer({0: batch})[0], dtype=np.float32, copy=True)

    return predict


def hint_cost(model: Any, pairs: list[Pair], scale: int, hint: str) -> float:
    """PSNR-Y (dB) that computing ``model`` in ``hint`` instead of fp32 costs on ``pairs``."""
    if hint == "fp32":
        return 0.0
    from overnet._optional import require

    ov = require("openvino", "INT8 quantisation")
    core, scores = ov.Core(), []
    for precision in ("f32", {"bf16": "bf16", "fp16": "f16"}[hint]):
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
        values = pairs_psnr_y(ov_predictor(compiled), pairs, scale)
        scores.append(sum(values) / len(values))
    return max(0.0, scores[0] - scores[1])
