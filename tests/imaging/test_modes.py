"""Upscaler returns the input's kind, mode and bit depth; alpha is upscaled separately."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from overnet.errors import InputError
from overnet.runtime.upscaler import Upscaler
from tests.runtime.doubles import NearestSession

rng = np.random.default_rng(0)


@pytest.fixture
def upscaler() -> Upscaler:
    return Upscaler(NearestSession(2))


@pytest.mark.parametrize(
    "image",
    [
        (rng.random((9, 11, 3)) * 255).astype(np.uint8),
        (rng.random((9, 11, 4)) * 255).astype(np.uint8),
        (rng.random((9, 11)) * 65535).astype(np.uint16),
        (rng.random((9, 11, 3)) * 65535).astype(np.uint16),
        (rng.random((9, 11, 2)) * 255).astype(np.uint8),
        rng.random((9, 11, 1)).astype(np.float32),
    ],
    ids=["rgb8", "rgba8", "gray16", "rgb16", "gray-alpha8", "gray-float"],
)
def test_numpy_kinds_round_trip(upscaler, image):
    out = upscaler.upscale(image)
    assert out.dtype == image.dtype
    assert out.shape == (18, 22, *image.shape[2:])
    expected = image.repeat(2, 0).repeat(2, 1)
    if image.ndim == 3 and image.shape[2] in (2, 4):  # alpha is bicubic, not nearest
        expected, out = expected[..., :-1], out[..., :-1]
    tolerance = 1e-6 if image.dtype == np.float32 else 1
    assert np.abs(out.astype(np.float64) - expected).max() <= tolerance


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "I;16", "1", "F"])
def test_pil_modes_round_trip(upscaler, mode):
    base = Image.fromarray((rng.random((8, 10, 3)) * 255).astype(np.uint8))
    if mode == "I;16":
        image = Image.fromarray((rng.random((8, 10)) * 65535).astype(np.uint16))
    elif mode == "F":
        image = Image.fromarray(rng.random((8, 10)).astype(np.float32), "F")
    else:
        image = base.convert(mode)
    image.info["icc_profile"] = b"fake-icc"
    out = upscaler.upscale(image)
    assert out.mode == image.mode and out.size == (20, 16)
    assert out.info["icc_profile"] == b"fake-icc"


def test_palette_with_transparency_keeps_palette_and_transparent_index(upscaler):
    indices = np.full((8, 8), 1, np.uint8)  # red
    indices[:, 6:] = 2  # green
    indices[:4, :4] = 0  # transparent
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 9))
    image.info["transparency"] = 0
    out = upscaler.upscale(image)
    assert out.mode == "P" and out.size == (16, 16)
    assert out.info["transparency"] == 0
    assert out.getpalette()[:9] == [0, 0, 0, 200, 0, 0, 0, 200, 0]
    out_idx = np.array(out)
    assert (out_idx[:6, :6] == 0).all()
    assert (out_idx[10:, :10] == 1).all() and (out_idx[:, 13:] == 2).all()


def test_alpha_is_upscaled_separately(upscaler):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 8, dtype=np.uint8)[None, :]
    out = upscaler.upscale(rgba)
    alpha = out[..., 3].astype(int)
    assert (np.diff(alpha[4]) >= 0).all()  # a smooth ramp, not blocks of nearest copies
    assert len(np.unique(alpha[4])) > 8


def test_cmyk_and_bad_arrays_are_refused(upscaler):
    with pytest.raises(InputError, match="CMYK"):
        upscaler.upscale(Image.new("CMYK", (4, 4)))
    with pytest.raises(InputError, match="HxW"):
        upscaler.upscale(np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(InputError, match="uint8, uint16 or float"):
        upscaler.upscale(np.zeros((4, 4, 3), np.int64))


def test_one_pixel_image(upscaler):
    assert upscaler.upscale(np.full((1, 1, 3), 7, np.uint8)).shape == (2, 2, 3)


def test_opaque_pixels_sharing_the_transparent_colour_stay_opaque(upscaler):
    indices = np.full((8, 8), 1, np.uint8)  # opaque black (entry 1)
    indices[:4] = 0  # transparent (entry 0, also black)
    indices[:, 6:] = 2
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 0, 0, 0, 200, 0, 0] + [0] * (256 * 3 - 9))
    image.info["transparency"] = 0
    out = np.array(upscaler.upscale(image))
    assert (out[10:, :10] == 1).all() and (out[:6, :10] == 0).all()


def test_palette_with_alpha_channel_comes_back_as_rgba(upscaler):
    image = Image.fromarray((rng.random((6, 6, 4)) * 255).astype(np.uint8), "RGBA").convert("PA")
    out = upscaler.upscale(image)
    assert out.mode == "RGBA" and out.size == (12, 12)


def test_palette_collision_on_a_large_image_is_fast_and_exact(upscaler):
    """600x600 palette image whose transparent entry's colour (black) is also an opaque
    entry's, used by most pixels: the former per-pixel distance table took 47 s and 8 GB;
    the nearest entry is now found per distinct colour."""
    import time

    from overnet.imaging.modes import nearest_entry

    local = np.random.default_rng(4)
    indices = local.integers(1, 60, (600, 600)).astype(np.uint8)
    indices[:, :300] = 1  # opaque black, the transparent entry's colour
    indices[:50, :50] = 0  # transparent
    palette = local.integers(0, 256, (256, 3)).astype(np.uint8)
    palette[0] = palette[1] = (0, 0, 0)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.tobytes())
    image.info["transparency"] = 0
    start = time.perf_counter()
    out = np.array(upscaler.upscale(image))
    assert time.perf_counter() - start < 5.0
    expected = indices.repeat(2, 0).repeat(2, 1)
    clear = expected == 0
    assert (out[clear] == 0).all() and (out[~clear] != 0).all()
    # each opaque pixel keeps its own entry (entries equal in colour count as the same)
    np.testing.assert_array_equal(palette[out[~clear]], palette[expected[~clear]])

    colours = local.integers(0, 256, (5000, 3)).astype(np.uint8)
    brute = ((colours[:, None].astype(int) - palette[None].astype(int)) ** 2).sum(-1)
    brute[:, 0] = np.iinfo(np.int64).max
    np.testing.assert_array_equal(nearest_entry(colours, palette, exclude=0), brute.argmin(1))
