"""Sampler, augmentation and AdamP in isolation; a multi-scale run with AMP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from overnet.train import AdamP, train
from overnet.train.augment import crop_pair, flip_rotate
from overnet.train.data import TrainImage
from overnet.train.optim import build_optimizer, build_scheduler
from overnet.train.sampler import StepBatches, plan_step
from overnet.weights import load_model
from tests.train.conftest import tiny_config


def _block_mean(img: np.ndarray, s: int) -> np.ndarray:
    h, w, c = img.shape
    return img.reshape(h // s, s, w // s, s, c).astype(np.float64).mean(axis=(1, 3))


def test_crops_stay_aligned_under_every_flip_and_rotation():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(36, 48, 3)).astype(np.uint8)
    lr = _block_mean(hr, 3)  # an LR whose pixels summarise 3x3 HR blocks
    for variant in [(v, h, r) for v in (0, 1) for h in (0, 1) for r in range(4)]:
        hr_p, lr_p = crop_pair(hr, lr, 2, 5, 6, 3)
        hr_a, lr_a = flip_rotate(hr_p, *variant), flip_rotate(lr_p, *variant)
        np.testing.assert_allclose(_block_mean(np.ascontiguousarray(hr_a), 3), lr_a)


def test_plan_is_a_function_of_seed_and_step_and_ranks_split_the_global_batch():
    images = [
        TrainImage(f"i{k}", np.full((64 + 8 * k, 48, 3), k, np.uint8),
                   {2: np.full((32 + 4 * k, 24, 3), k, np.uint8),
                    3: np.full((21 + 3 * k, 16, 3), k, np.uint8)})
        for k in range(3)
    ]  # fmt: skip
    a = plan_step(7, 11, images, [2, 3], 8, 12)
    b = plan_step(7, 11, images, [2, 3], 8, 12)
    assert all(
        np.array_equal(x, y) for x, y in zip(a.__dict__.values(), b.__dict__.values(), strict=True)
    )
    assert {plan_step(7, s, images, [2, 3], 8, 12).scale for s in range(20)} == {2, 3}
    whole = StepBatches(images, [2, 3], 8, 12, seed=7)[11]
    halves = [StepBatches(images, [2, 3], 8, 12, seed=7, rank=r, world=2)[11] for r in (0, 1)]
    assert whole[0] == halves[0][0] == halves[1][0]
    np.testing.assert_array_equal(whole[1], np.concatenate([halves[0][1], halves[1][1]]))
    np.testing.assert_array_equal(whole[2], np.concatenate([halves[0][2], halves[1][2]]))
    scale, lr, hr = whole
    assert lr.shape == (8, 3, 12, 12) and hr.shape == (8, 3, 12 * scale, 12 * scale)
    assert lr.dtype == np.float32 and lr.min() >= 0.0 and lr.max() <= 1.0


def test_adamp_removes_the_radial_part_for_scale_invariant_weights():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
    bias = torch.nn.Parameter(torch.randn(4))
    # A loss of w / ||w|| per row is scale-invariant: its gradient is orthogonal to w.
    x = torch.randn(27)
    loss = ((w.view(4, -1) / w.view(4, -1).norm(dim=1, keepdim=True)) @ x).pow(2).sum()
    loss = loss + (bias**2).sum()
    loss.backward()
    before_w, before_b = w.detach().clone(), bias.detach().clone()
    opt = AdamP([w, bias], lr=0.01)
    opt.step()
    step = (w.detach() - before_w).view(4, -1)
    radial = (step * before_w.view(4, -1)).sum(dim=1) / before_w.view(4, -1).norm(dim=1)
    assert radial.abs().max() < 1e-6  # only the direction changes
    # A 1-D tensor gets plain Adam: the first step is lr * sign(grad).
    torch.testing.assert_close(bias.detach(), before_b - 0.01 * torch.sign(2 * before_b))


def test_step_decay_halves_the_rate_every_decay_steps():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, "adam", 1e-3)
    sched = build_scheduler(opt, 3)
    rates = []
    for _ in range(7):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([1e-3] * 3 + [5e-4] * 3 + [2.5e-4])


def test_multiscale_run_with_amp_serves_every_scale(tmp_path, train_images, val_images):
    cfg = tiny_config(tmp_path, train_images, scales=[2, 3], steps=4, amp=True,
                      val=[val_images], val_every=4, deterministic=False)  # fmt: skip
    result = train(cfg)
    assert result.model.upscale == 4  # upstream pairing for the largest scale: x3 -> 4
    assert set(result.last_val.per_set) == {f"{val_images.name}_x2", f"{val_images.name}_x3"}
    model = load_model(tmp_path / "run" / "best.safetensors")
    assert (model.upscale, model.scale) == (4, 3.0)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 10, 10), 2).shape == (1, 3, 20, 20)


def test_failed_ranks_without_a_process_group():
    from overnet.train.distributed import DistInfo, failed_ranks

    cpu = torch.device("cpu")
    assert failed_ranks(False, DistInfo(), cpu) == []
    assert failed_ranks(True, DistInfo(), cpu) == [0]
