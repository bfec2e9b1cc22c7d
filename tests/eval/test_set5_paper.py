"""Upstream weights on Set5 reproduce the paper's table (whole-image, paper protocol)."""

import numpy as np
import pytest
import torch

from overnet.eval import discover, evaluate
from overnet.weights import load_model
from tests.conftest import shared_file

# scale -> (PSNR-Y, SSIM-Y) in the paper, the bicubic baseline
PAPER = {2: (38.11, 0.9608, 33.66), 3: (34.45, 0.9273, 30.39)}


def _predictor(scale):
    model = load_model(shared_file("weights", f"OverNet_x{scale}.pth.tar"))

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return predict


@pytest.mark.parametrize("scale", [2, 3])
def test_set5_matches_the_paper(scale, set5):
    predict = _predictor(scale)
    paper_result = evaluate(discover(set5, scale), predict, "paper", progress=False)
    assert not paper_result.failed
    psnr, ssim, bicubic = PAPER[scale]
    assert paper_result.mean("psnr_y") == pytest.approx(psnr, abs=0.01)
    assert paper_result.mean("ssim_y") == pytest.approx(ssim, abs=0.002)
    assert paper_result.mean("bicubic_psnr_y") == pytest.approx(bicubic, abs=0.02)
    standard = evaluate(discover(set5, scale), predict, "standard", progress=False)
    # Rounding to uint8 costs a little PSNR (38.089 / 34.449 measured upstream).
    assert 0 < paper_result.mean("psnr_y") - standard.mean("psnr_y") < 0.03
