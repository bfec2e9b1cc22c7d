import numpy as np
import pytest

from overnet.metrics import imresize
from tests.conftest import read_rgb


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_the_benchmark_lr_images(scale, set5):
    total = differing = 0
    for hr_path in sorted((set5 / "HR").glob("*.png")):
        hr = read_rgb(hr_path)
        h, w = hr.shape[:2]
        hr = hr[: h - h % scale, : w - w % scale]
        lr = read_rgb(set5 / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
        ours = imresize(hr, 1 / scale)
        assert ours.dtype == np.uint8 and ours.shape == lr.shape
        diff = np.abs(ours.astype(int) - lr)
        assert diff.max() <= 1
        total += diff.size
        differing += int((diff > 0).sum())
    if scale == 3:
        assert differing == 0
    assert differing <= 0.01 * total


def test_constant_image_stays_constant_and_sizes_round_up():
    img = np.full((7, 9, 3), 0.25)
    out = imresize(img, 0.5)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out, 0.25, atol=1e-12)
    assert imresize(np.zeros((10, 10), np.uint8), size=(3, 17)).shape == (3, 17)


def test_upscaling_matches_known_cubic_weights():
    # Interior sample between two pixels: Keys a=-0.5 weights at +-0.25/0.75.
    row = np.array([[0.0, 0.0, 1.0, 0.0, 0.0]])
    out = imresize(row, size=(1, 10))
    # Output 4 sits at input 1.75 (0-based): taps at distances 1.75, 0.75, 0.25, 1.25.
    expected = 1.5 * 0.25**3 - 2.5 * 0.25**2 + 1  # weight of the centre tap at distance 0.25
    assert out[0, 4] == pytest.approx(expected)
