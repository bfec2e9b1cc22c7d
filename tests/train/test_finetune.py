"""Fine-tuning the upstream x2 weights a few steps keeps Set5 PSNR (it must not wreck them)."""

from __future__ import annotations

import csv

import pytest

from overnet.train import FINETUNE_LR, train
from overnet.weights import load_model
from tests.train.conftest import tiny_config


@pytest.mark.slow
def test_finetune_upstream_x2_keeps_set5_psnr(tmp_path, x2_weights, set5, train_images):
    # Trained on other images (the synthetic structured ones), validated on Set5: this
    # checks the optimizer (default fine-tune lr, AdamP's full-size first steps) does
    # not knock a trained model off its optimum for images it did not train on.
    cfg = tiny_config(
        tmp_path, train_images, init=x2_weights, val=[set5], channels=64, lr=None, steps=4,
        batch=4, patch=24, save_every=4, val_every=4, deterministic=False, val_at_start=True,
    )  # fmt: skip
    assert cfg.learning_rate == FINETUNE_LR
    result = train(cfg)
    with open(tmp_path / "run" / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # Step 0 is the unmodified upstream weights on Set5, measured by the same run.
    assert [int(r["step"]) for r in rows if r["val_psnr"]] == [0, 4]
    before, after = float(rows[0]["val_psnr"]), float(rows[-1]["val_psnr"])
    print(f"Set5 x2 PSNR-Y {before:.3f} -> {after:.3f} dB")
    assert before > 37.9, before  # the upstream weights, as tests/eval measure them
    assert abs(after - before) < 0.1, (before, after)
    assert result.step == 4
    model = load_model(tmp_path / "run" / "final.safetensors")
    assert (model.upscale, model.scale) == (3, 2.0)
