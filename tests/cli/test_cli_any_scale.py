"""Fractional scales from the command line: `overnet upscale --scale 1.5` tiles a photo
that whole-image inference would not fit, and `overnet eval --overscale` keeps Set5's
figures."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main

pytest.importorskip("openvino")


def test_upscale_at_x1_5_tiles_within_the_budget(x2_weights, tmp_path):
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((150, 230, 3)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "upscale", str(photo), "-o", str(out), "--weights", str(x2_weights),
            "--scale", "1.5", "--max-memory", "300MB", "--backend", "openvino",
            "--precision", "fp32", "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 upscaled" in result.output and "overscale" in result.output
    with Image.open(out / "photo.png") as made:
        assert made.size == (345, 225)  # round(230 * 1.5), round(150 * 1.5)


def test_eval_overscale_keeps_the_whole_image_figures(x2_weights, set5):
    def mean_psnr(*extra: str) -> float:
        result = CliRunner().invoke(
            main,
            [
                "eval", "--weights", str(x2_weights), "--data", str(set5),
                "--backend", "openvino", "--no-progress", "--no-compare-paper", *extra,
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return float(re.search(r"mean \(5 images\)\s+([\d.]+)", result.output).group(1))

    whole = mean_psnr()
    assert abs(mean_psnr("--overscale") - whole) <= 0.001
    assert abs(mean_psnr("--overscale", "--tile", "96") - whole) <= 0.01
