"""Tile plans cover the image with batchable tiles, and blending is exact for local ops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.imaging.tiling import TileBlender, plan_tiles, seam_mask
from overnet.runtime.upscaler import Upscaler
from tests.runtime.doubles import NearestSession


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap"),
    [(100, 130, 32, 8), (7, 300, 64, 16), (64, 64, 64, 8), (65, 65, 64, 0)],
)
def test_plan_covers_everything_with_equal_tiles(h, w, tile, overlap):
    tiles = plan_tiles(h, w, tile, overlap)
    covered = np.zeros((h, w), int)
    for t in tiles:
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert (t.y1 - t.y0, t.x1 - t.x0) == (min(tile, h), min(tile, w))
    assert covered.min() >= 1
    if overlap and len(tiles) > 1:  # neighbours share at least `overlap` pixels
        ys = sorted({t.y0 for t in tiles})
        assert all(b - a <= min(tile, h) - overlap for a, b in itertools.pairwise(ys))


def test_bad_overlap_is_refused():
    with pytest.raises(InputError, match="overlap"):
        plan_tiles(100, 100, 32, 32)
    with pytest.raises(InputError, match="tile size"):
        plan_tiles(100, 100, 0, 0)


def test_blender_reproduces_a_local_operator_exactly():
    rng = np.random.default_rng(0)
    image = rng.random((3, 37, 53), dtype=np.float32)
    whole = image.repeat(2, 1).repeat(2, 2)
    tiles = plan_tiles(37, 53, 16, 5)
    blender = TileBlender(3, 37, 53, 2, 5)
    for t in tiles:
        blender.add(t, whole[:, t.y0 * 2 : t.y1 * 2, t.x0 * 2 : t.x1 * 2])
    np.testing.assert_allclose(blender.result(), whole, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_upscaler_tiles_batches_and_matches_whole(batch):
    session = NearestSession(2)
    up = Upscaler(session, tile=20, overlap=4, batch=batch)
    x = np.random.default_rng(1).random((2, 3, 45, 61), dtype=np.float32)
    plan = up.plan(45, 61)
    assert plan.tiled and plan.batch == batch
    out = up.upscale_array(x, plan)
    np.testing.assert_allclose(out, x.repeat(2, 2).repeat(2, 3), atol=1e-6)
    assert max(s[0] for s in session.shapes) == batch
    assert {s[2:] for s in session.shapes} == {(20, 20)}


def test_memory_budget_sets_the_tile_and_small_images_run_whole():
    session = NearestSession(2)
    up = Upscaler(session, max_memory="1.5GB")
    assert not up.plan(256, 256).tiled  # fits: whole image, exact result
    big = up.plan(1080, 1920)
    assert big.tiled and big.tile_h * big.tile_w * up.bytes_per_pixel <= 1.5e9
    small = Upscaler(session, max_memory="700MB").plan(1080, 1920)
    assert small.tile_h < big.tile_h  # the tile follows the budget, not the image


def test_profile_limits_are_respected_and_small_inputs_padded():
    session = NearestSession(2, min_hw=(32, 32), max_hw=(64, 64), max_batch=2)
    up = Upscaler(session, batch=8)
    assert up.batch == 2
    plan = up.plan(100, 150)
    assert plan.tile_h <= 64 and plan.tile_w <= 64
    x = np.random.default_rng(2).random((1, 3, 10, 7), dtype=np.float32)
    out = up.upscale_array(x)  # padded to 32x32 for the profile, cropped back
    np.testing.assert_allclose(out, x.repeat(2, 2).repeat(2, 3))
    assert session.shapes[-1][2:] == (32, 32)


def test_a_graph_that_ends_at_a_fractional_scale_does_not_tile_and_says_what_does():
    session = NearestSession(2)
    session.info.scale = 2.5
    with pytest.raises(InputError, match="overscale=True"):
        Upscaler(session, tile=16).plan(40, 40)


def test_seam_mask_marks_inner_borders_only():
    tiles = plan_tiles(40, 40, 24, 8)
    mask = seam_mask(40, 40, tiles, 2, band=1)
    # tiles start at 0 and 16 and end at 24 and 40: inner borders at input 16 and 24
    assert mask[32, 5] and mask[48, 5] and mask[5, 32] and mask[5, 48]
    assert not mask[0, 0] and not mask[79, 79] and not mask[40, 40]


@pytest.mark.parametrize("hw", [(360, 640), (540, 960), (1080, 1920), (700, 333)])
def test_automatic_tiles_are_balanced_so_little_work_is_repeated(hw):
    up = Upscaler(NearestSession(2), max_memory="1.5GB")
    up.bytes_per_pixel = 15_726  # OpenVINO's x2 figure (overnet/runtime/memory.py)
    plan = up.plan(*hw)
    assert plan.tiled
    computed = len(plan.tiles) * plan.tile_h * plan.tile_w
    assert computed <= 1.2 * hw[0] * hw[1]
    assert min(plan.tile_h, plan.tile_w) >= 96


def test_whole_image_batches_respect_the_batch_limit_and_thin_images_keep_overlap():
    session = NearestSession(2, max_batch=2)
    up = Upscaler(session)
    x = np.random.default_rng(3).random((5, 3, 10, 10), dtype=np.float32)
    np.testing.assert_allclose(up.upscale_array(x), x.repeat(2, 2).repeat(2, 3))
    assert max(s[0] for s in session.shapes) == 1  # CPU default batch
    thin = Upscaler(NearestSession(2), tile=64).plan(1000, 6)
    assert thin.overlap == 16  # the untiled 6-pixel side does not shrink it
