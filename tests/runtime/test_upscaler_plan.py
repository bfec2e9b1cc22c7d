"""Upscaler planning: the memory budget holds for the batch that runs, GPU sessions are
recognised by ``SessionInfo.device_type``, and ``tile=0`` runs whole images."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.runtime.base import Session, SessionInfo
from overnet.runtime.memory import host_bytes
from overnet.runtime.upscaler import MIN_AUTO_TILE, Upscaler

BPP = 10_000  # bytes per input pixel, fixed so the budgets below are exact


class FakeGpuSession(Session):
    """Nearest x2 on a 'GPU' whose name says nothing of CUDA; records the shapes run."""

    def __init__(self, device_type: str = "gpu", device: str = "NVIDIA H200", **limits):
        self.info = SessionInfo(
            backend="fake",
            device=device,
            precision="fp32",
            scale=2,
            upscale=2,
            device_type=device_type,
            **limits,
        )
        self.shapes: list[tuple[int, ...]] = []

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        return batch.repeat(2, axis=2).repeat(2, axis=3)


def _upscaler(session, budget_pixels: int, image=(700, 900), **kwargs) -> Upscaler:
    """An upscaler whose network gets ``budget_pixels`` input pixels of working memory
    for an image of ``image`` (height, width): its host buffers come on top."""
    height, width = image
    host = host_bytes(height, width, 2 * height, 2 * width)
    up = Upscaler(session, max_memory=budget_pixels * BPP + host, **kwargs)
    up.bytes_per_pixel = BPP
    return up


def _peak_run_bytes(session) -> int:
    return max(n * h * w for n, _, h, w in session.shapes) * BPP


def test_gpu_is_told_by_device_type_not_by_the_device_name():
    assert Upscaler(FakeGpuSession()).batch == 4  # "NVIDIA H200": no "cuda" or "gpu" in it
    cpu = FakeGpuSession(device_type="cpu", device="CPU (onnxruntime-gpu build)")
    assert Upscaler(cpu).batch == 1
    assert Upscaler(FakeGpuSession(), batch=2).batch == 2


@pytest.mark.parametrize("tiles_of_budget", [1, 2, 3, 5, 40])
def test_automatic_tiles_keep_the_whole_batch_within_the_budget(tiles_of_budget):
    budget = tiles_of_budget * MIN_AUTO_TILE**2
    session = FakeGpuSession()
    up = _upscaler(session, budget)
    plan = up.plan(700, 900)
    assert plan.tiled and 1 <= plan.batch <= 4
    assert plan.batch * plan.tile_h * plan.tile_w <= budget
    assert min(plan.tile_h, plan.tile_w) >= MIN_AUTO_TILE
    x = np.random.default_rng(0).random((1, 3, 700, 900), dtype=np.float32)
    np.testing.assert_allclose(up.upscale_array(x, plan), x.repeat(2, 2).repeat(2, 3), atol=1e-6)
    assert _peak_run_bytes(session) <= budget * BPP


def test_whole_images_are_batched_only_as_far_as_the_budget_allows():
    session = FakeGpuSession()
    up = _upscaler(session, 2 * 40 * 50, image=(40, 50))  # two 40x50 images at a time
    x = np.random.default_rng(1).random((7, 3, 40, 50), dtype=np.float32)
    plan = up.plan(40, 50)
    assert not plan.tiled and plan.batch == 2
    np.testing.assert_allclose(up.upscale_array(x), x.repeat(2, 2).repeat(2, 3))
    assert [s[0] for s in session.shapes] == [2, 2, 2, 1]
    assert _peak_run_bytes(session) <= 2 * 40 * 50 * BPP


def test_an_explicit_tile_is_kept_and_the_batch_lowered_to_fit():
    session = FakeGpuSession()
    up = _upscaler(session, 2 * 128 * 128, image=(500, 600), tile=128)
    plan = up.plan(500, 600)
    assert (plan.tile_h, plan.tile_w, plan.batch) == (128, 128, 2)


def test_a_budget_below_one_minimum_tile_is_refused():
    up = _upscaler(FakeGpuSession(), MIN_AUTO_TILE**2 // 2)
    with pytest.raises(InputError, match="max.memory"):
        up.plan(700, 900)


def test_tile_zero_runs_the_whole_image_without_memory_planning():
    session = FakeGpuSession()
    up = _upscaler(session, 100, tile=0)  # a budget far below this image
    plan = up.plan(300, 400)
    assert not plan.tiled and (plan.tile_h, plan.tile_w) == (300, 400)
    x = np.random.default_rng(2).random((3, 3, 30, 40), dtype=np.float32)
    np.testing.assert_allclose(up.upscale_array(x), x.repeat(2, 2).repeat(2, 3))
    assert session.shapes == [(3, 3, 30, 40)]  # the GPU batch of 4, whole images


def test_tile_zero_beyond_an_engine_profile_is_refused():
    session = FakeGpuSession(max_hw=(64, 64))
    with pytest.raises(InputError, match="profile"):
        Upscaler(session, tile=0).plan(100, 50)


@pytest.mark.parametrize("bad", [{"tile": -1}, {"batch": 0}, {"overlap": -2}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(InputError):
        Upscaler(FakeGpuSession(), **bad)


def test_the_tile_side_does_not_depend_on_the_batch():
    # every path (the command at batch 1, the service at 8) must cut an image the same way
    plans = [_upscaler(FakeGpuSession(), 9 * MIN_AUTO_TILE**2, batch=b).plan(700, 900)
             for b in (1, 2, 4, 8)]  # fmt: skip
    assert len({(p.tile_h, p.tile_w, p.overlap, p.tiles) for p in plans}) == 1
    assert [p.batch for p in plans] == [1, 1, 1, 1]  # one such tile fills the budget


def test_the_host_buffers_count_in_the_budget_and_an_image_over_it_is_refused():
    session = FakeGpuSession()
    host = host_bytes(700, 900, 1400, 1800)
    up = Upscaler(session, max_memory=host + 3 * MIN_AUTO_TILE**2 * BPP)
    up.bytes_per_pixel = BPP
    plan = up.plan(700, 900)
    assert plan.host_bytes == host and plan.total_bytes <= up.max_memory
    tight = Upscaler(session, max_memory=host)  # the buffers alone fill it
    tight.bytes_per_pixel = BPP
    with pytest.raises(InputError, match=r"700 -> 1800x1400 needs about \d+ MB"):
        tight.plan(700, 900)
