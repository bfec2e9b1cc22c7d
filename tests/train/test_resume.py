"""Resume is exact: straight N steps == N/2, stop, resume N/2 (same weights, same log)."""

from __future__ import annotations

import csv
import re

import pytest
import torch

from overnet.train import CheckpointError, train
from overnet.train.checkpoint import load_checkpoint
from tests.train.conftest import tiny_config


def _weights(run) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pth")["model_state_dict"]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _log(run) -> list[tuple[str, str, str]]:
    """(step, loss, lr) rows; timing columns differ between runs."""
    with open(run / "log.csv", newline="") as fh:
        return [(r["step"], r["loss"], r["lr"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, train_images):
    """The reference: 8 steps in one go (checkpoints at 3, 6 and 8)."""
    tmp = tmp_path_factory.mktemp("straight")
    train(tiny_config(tmp, train_images, steps=8))
    return tmp / "run"


def test_resume_in_a_fresh_trainer_gives_identical_weights(tmp_path, train_images, straight):
    train(tiny_config(tmp_path, train_images, steps=4))
    assert load_checkpoint(tmp_path / "run" / "last.pth")["step"] == 4
    result = train(tiny_config(tmp_path, train_images, steps=8, resume=True))
    assert result.step == 8
    _assert_same(_weights(straight), _weights(tmp_path / "run"))
    assert _log(tmp_path / "run") == _log(straight)


def test_kill_between_checkpoints_loses_and_repeats_nothing(tmp_path, train_images, straight):
    def kill(step: int, loss: float) -> None:
        if step == 5:  # after the checkpoint at step 3, before the one at 6
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, train_images, steps=8), on_step=kill)
    run = tmp_path / "run"
    assert load_checkpoint(run / "last.pth")["step"] == 3
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    train(tiny_config(tmp_path, train_images, steps=8, resume=True))
    _assert_same(_weights(straight), _weights(run))
    assert _log(run) == _log(straight)  # no row twice, none missing, same losses
    assert [int(row[0]) for row in _log(run)] == [2, 3, 4, 6, 8]


def test_data_workers_do_not_change_the_batches(tmp_path, train_images, straight):
    train(tiny_config(tmp_path, train_images, steps=8, workers=2))
    _assert_same(_weights(straight), _weights(tmp_path / "run"))


def test_existing_run_needs_resume_and_same_settings(tmp_path, train_images):
    train(tiny_config(tmp_path, train_images, steps=2, save_every=2))
    with pytest.raises(CheckpointError, match="--resume"):
        train(tiny_config(tmp_path, train_images, steps=4))
    with pytest.raises(CheckpointError, match=r"settings changed \(batch 4 -> 8"):
        train(tiny_config(tmp_path, train_images, steps=4, batch=8, resume=True))
    done = train(tiny_config(tmp_path, train_images, steps=2, resume=True))
    assert done.step == 2  # nothing left to do: the run is not trained further


def test_image_cache_is_built_once_and_gives_the_same_batches(tmp_path, train_images, straight):
    cache = tmp_path / "cache"
    train(tiny_config(tmp_path, train_images, steps=8, cache=cache, out=tmp_path / "a"))
    files = sorted(cache.glob("*.npy"))
    assert len(files) == 12  # per image: HR and the x2 LR made with MATLAB bicubic
    stamps = [f.stat().st_mtime_ns for f in files]
    train(tiny_config(tmp_path, train_images, steps=8, cache=cache, out=tmp_path / "b"))
    assert [f.stat().st_mtime_ns for f in sorted(cache.glob("*.npy"))] == stamps  # reused
    _assert_same(_weights(straight), _weights(tmp_path / "b"))


def test_resume_without_lr_keeps_the_rate_the_run_started_with(tmp_path, train_images):
    from overnet.config import OverNetConfig
    from overnet.model import OverNet
    from overnet.train import FINETUNE_LR
    from overnet.weights import save_weights

    model = OverNet(OverNetConfig(upscale=3, scale=2, channels=16))
    init = save_weights(model, tmp_path / "w.safetensors")
    train(tiny_config(tmp_path, train_images, init=init, lr=None, steps=2, save_every=2))
    # Resumed without --init and --lr (whose default would be 1e-3 without --init).
    done = train(tiny_config(tmp_path, train_images, lr=None, steps=4, save_every=2, resume=True))
    assert done.step == 4
    assert {float(row[2]) for row in _log(tmp_path / "run")} == {FINETUNE_LR}
    with pytest.raises(CheckpointError, match=re.escape(f"changed (lr {FINETUNE_LR} -> 0.001)")):
        train(tiny_config(tmp_path, train_images, lr=1e-3, steps=6, resume=True))
    done = train(tiny_config(tmp_path, train_images, lr=FINETUNE_LR, steps=6, resume=True))
    assert done.step == 6
