"""One pixel conversion for every path, equal bit for bit to the three it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.imaging.io import float_to_uint8, rgb8_to_nchw
from overnet.imaging.pixels import from_float, hwc_to_nchw, to_float
from overnet.video.frames import from_batch, to_batch

rng = np.random.default_rng(8)
# values around every rounding edge and outside [0, 1], in float32 and float64
EDGES = np.concatenate(
    [np.arange(-3, 259) / 255.0, (np.arange(-3, 259) + 0.5) / 255.0, rng.random(5000) * 1.2 - 0.1]
)


def _old_modes_to_float(values: np.ndarray) -> np.ndarray:
    maxima = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
    if values.dtype in maxima:
        return values.astype(np.float32) / maxima[values.dtype]
    return np.clip(values.astype(np.float32, copy=False), 0.0, 1.0)


def _old_modes_from_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    maxima = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
    values = np.clip(values, 0.0, 1.0)
    if dtype in maxima:
        return np.floor(values * maxima[dtype] + 0.5).astype(dtype)
    return values.astype(dtype)


def _old_float_to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(img * 255.0 + 0.5), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("float_type", [np.float32, np.float64])
def test_float_to_int_is_the_old_round_half_up_bit_for_bit(float_type):
    values = EDGES.astype(float_type)
    np.testing.assert_array_equal(float_to_uint8(values), _old_float_to_uint8(values))
    for dtype in (np.uint8, np.uint16, np.float32, np.float16):
        np.testing.assert_array_equal(
            from_float(values, dtype), _old_modes_from_float(values, np.dtype(dtype))
        )
    assert from_float(np.array([0.5 / 255, 1.5 / 255]), np.uint8).tolist() == [1, 2]  # half up


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.float16])
def test_to_float_is_the_old_conversion_bit_for_bit(dtype):
    if np.issubdtype(dtype, np.integer):
        values = rng.integers(0, np.iinfo(dtype).max + 1, (7, 9, 3)).astype(dtype)
    else:
        values = (rng.random((7, 9, 3)) * 1.4 - 0.2).astype(dtype)
    np.testing.assert_array_equal(to_float(values), _old_modes_to_float(values))
    assert to_float(values).dtype == np.float32


def test_video_batches_and_rgb8_helpers_use_the_same_conversion():
    frames = [rng.integers(0, 65536, (5, 6, 3)).astype(np.uint16) for _ in range(3)]
    batch = to_batch(frames)
    old = np.stack(frames).astype(np.float32) / 65535.0
    np.testing.assert_array_equal(batch, np.ascontiguousarray(old.transpose(0, 3, 1, 2)))
    assert batch.flags.c_contiguous
    noisy = batch * 1.3 - 0.1
    for dtype in (np.uint8, np.uint16, np.float32):
        back = from_batch(noisy, dtype)
        expected = _old_modes_from_float(noisy.transpose(0, 2, 3, 1), np.dtype(dtype))
        np.testing.assert_array_equal(np.stack(back), expected)
        assert all(frame.flags.c_contiguous for frame in back)
    rgb = rng.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    old = np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
    np.testing.assert_array_equal(rgb8_to_nchw(rgb), old)
    np.testing.assert_array_equal(hwc_to_nchw(rgb), old)


def test_other_integer_types_are_refused():
    with pytest.raises(InputError, match="uint8, uint16 or float"):
        to_float(np.zeros((2, 2), np.int32))
