"""A short CPU run learns: loss falls, validation PSNR rises above bicubic; outputs load."""

from __future__ import annotations

import csv

import torch

from overnet.train import train
from overnet.train.checkpoint import load_checkpoint
from overnet.weights import load_model, load_weights
from tests.train.conftest import tiny_config


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_short_run_beats_bicubic_and_outputs_load(tmp_path, train_images, val_images):
    cfg = tiny_config(
        tmp_path, train_images, val=[val_images], steps=40, batch=8, lr=2e-3,
        val_every=20, log_every=10, save_every=20,
    )  # fmt: skip
    result = train(cfg)
    run = cfg.out
    rows = _rows(run / "log.csv")
    assert [int(r["step"]) for r in rows] == [0, 10, 20, 30, 40]
    losses = [float(r["loss"]) for r in rows[1:]]
    assert losses[-1] < 0.7 * losses[0], losses
    start, end = float(rows[0]["val_psnr"]), float(rows[-1]["val_psnr"])
    print(f"val PSNR {start:.3f} -> {end:.3f} dB")
    bicubic = float(rows[-1]["bicubic_psnr"])
    # Measured here: start 26.3 dB (random init), end 33.21 dB, bicubic 33.08 dB.
    assert end > start + 3.0, (start, end)
    assert end > bicubic + 0.05, (end, bicubic)
    best_logged = max(float(r["val_psnr"]) for r in rows if r["val_psnr"])
    assert abs(result.best_psnr - best_logged) < 1e-4
    assert all(float(r["patches_per_s"]) > 0 for r in rows[1:])

    # Everything the run writes loads through the project's weights API.
    assert {p.name for p in run.iterdir()} >= {
        "config.json", "log.csv", "last.pth", "best.safetensors", "final.safetensors",
    }  # fmt: skip
    best = load_model(run / "best.safetensors")
    assert (best.upscale, best.scale, best.config.channels) == (3, 2.0, 16)
    info = load_weights(run / "last.pth")  # the resume checkpoint, as eval/export read it
    assert info.weight_norm and "optimizer_state_dict" in info.extras
    resumed = load_model(run / "last.pth")
    final = load_model(run / "final.safetensors")
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(resumed(x), final(x), atol=1e-5, rtol=0)
        assert best(x).shape == (1, 3, 40, 48)
    payload = load_checkpoint(run / "last.pth")
    assert payload["step"] == 40 and payload["sampler"]["kind"] == "seed-step"
    assert set(payload["rng"]) >= {"python", "numpy", "torch"}


def test_cli_trains_and_resumes(tmp_path, train_images, monkeypatch):
    from click.testing import CliRunner

    from overnet.cli import main

    monkeypatch.chdir(tmp_path)  # no ../shared/data/Set5 here: no default validation
    args = ["train", "--data", str(train_images), "--channels", "16", "--patch", "16",
            "--batch", "4", "--save-every", "2", "--out", str(tmp_path / "run"),
            "--no-progress"]  # fmt: skip
    first = CliRunner().invoke(main, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    assert "trained to step 2" in first.output
    assert "no validation: ../shared/data/Set5 not found" in first.output
    again = CliRunner().invoke(main, [*args, "--steps", "3", "--resume"])
    assert again.exit_code == 0, again.output
    assert "resumed" in again.output and "trained to step 3" in again.output


def test_cli_validates_on_shared_set5_by_default(tmp_path, train_images, val_images, monkeypatch):
    import shutil

    from click.testing import CliRunner

    from overnet.cli import main

    shutil.copytree(val_images, tmp_path / "shared" / "data" / "Set5" / "HR")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    args = ["train", "--data", str(train_images), "--channels", "16", "--patch", "16",
            "--batch", "4", "--steps", "2", "--no-progress"]  # fmt: skip
    res = CliRunner().invoke(main, [*args, "--out", "a"])
    assert res.exit_code == 0, res.output
    assert "validating on ../shared/data/Set5 (the default" in res.output
    assert "validation PSNR-Y" in res.output
    assert (tmp_path / "work" / "a" / "best.safetensors").exists()
    res = CliRunner().invoke(main, [*args, "--out", "b", "--no-val"])
    assert res.exit_code == 0, res.output
    assert "validat" not in res.output
    assert not (tmp_path / "work" / "b" / "best.safetensors").exists()
