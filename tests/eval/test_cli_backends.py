"""`overnet eval --backend/--tile` runs through the runtime and gives the PyTorch figures."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from overnet.cli import main

pytest.importorskip("openvino")


def test_eval_through_openvino_tiled_matches_the_recorded_psnr(x2_onnx, set5):
    args = ["eval", "--weights", str(x2_onnx), "--data", str(set5), "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--backend", "openvino", "--tile", "96"])
    assert result.exit_code == 0, result.output
    mean = float(re.search(r"mean \(5 images\)\s+([\d.]+)", result.output).group(1))
    assert abs(mean - 38.106) <= 0.02  # whole-image PyTorch: 38.106 (benchmarks/results)
