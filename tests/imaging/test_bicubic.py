"""The numpy bicubic equals PyTorch's F.interpolate, for whole images and for windows."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.imaging.bicubic import needed_range, resize_window

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    ("size", "out"),
    [((17, 23), (25, 34)), ((48, 40), (72, 60)), ((30, 31), (30, 31)), ((9, 12), (5, 7))],
)
def test_whole_image_matches_torch(size, out):
    x = np.random.default_rng(0).random((4, *size), dtype=np.float32)
    want = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None], size=out, mode="bicubic", align_corners=False
    )[0].numpy()
    got = resize_window(x, size, out, (0, 0), (0, out[0]), (0, out[1]))
    assert got.shape == want.shape and np.abs(got - want).max() < 2e-6


def test_a_window_from_a_crop_equals_the_same_window_of_the_whole_resize():
    x = np.random.default_rng(1).random((2, 60, 50), dtype=np.float32)
    size, out = (60, 50), (83, 69)
    whole = resize_window(x, size, out, (0, 0), (0, 83), (0, 69))
    rows, cols = (20, 41), (7, 30)
    (r0, r1), (c0, c1) = needed_range(60, 83, *rows), needed_range(50, 69, *cols)
    crop = x[:, r0:r1, c0:c1]
    window = resize_window(crop, size, out, (r0, c0), rows, cols)
    np.testing.assert_allclose(window, whole[:, 20:41, 7:30], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="outside the window"):
        resize_window(crop[:, 1:], size, out, (r0 + 1, c0), rows, cols)
