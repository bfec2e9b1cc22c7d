"""Tiling at the smallest automatic tile with the default overlap barely changes Set5."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.eval import discover, evaluate
from overnet.imaging import read_rgb8, rgb8_to_nchw
from overnet.imaging.tiling import seam_mask
from overnet.runtime import open_session
from overnet.runtime.upscaler import DEFAULT_OVERLAP, MIN_AUTO_TILE, Upscaler

pytest.importorskip("openvino")


def test_tiled_set5_psnr_within_002_db_and_no_seams(x2_onnx, set5):
    with open_session(x2_onnx, "openvino") as session:
        upscaler = Upscaler(session, tile=MIN_AUTO_TILE, overlap=DEFAULT_OVERLAP)
        dataset = discover(set5, 2)
        whole = evaluate(dataset, session.run, "paper", None, False)
        tiled = evaluate(dataset, upscaler.upscale_array, "paper", None, False)
        assert not whole.failed and not tiled.failed
        assert abs(tiled.mean("psnr_y") - whole.mean("psnr_y")) <= 0.02
        border = elsewhere = 0.0
        tiled_images = 0
        for sample in dataset.samples:
            lr = rgb8_to_nchw(read_rgb8(sample.lr_path)[0])
            _, _, h, w = lr.shape
            plan = upscaler.plan(h, w)
            tiled_images += plan.tiled
            diff = np.abs(upscaler.upscale_array(lr, plan) - session.run(lr))[0].max(0)
            mask = seam_mask(h, w, list(plan.tiles), 2, band=4)
            border = max(border, float(diff[mask].max(initial=0)))
            elsewhere = max(elsewhere, float(diff[~mask].max(initial=0)))
        assert tiled_images >= 3  # the test really tiles
        # no visible seam: tile borders differ from whole-image no more than tile interiors
        assert border <= elsewhere
