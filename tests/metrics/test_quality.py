import math

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.metrics import psnr, psnr_rgb, psnr_y, rgb_to_y, shave, ssim, ssim_y


def test_identical_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert psnr_y(img, img) == math.inf
    assert ssim_y(img, img) == pytest.approx(1.0)


def test_known_noise_gives_the_expected_psnr():
    a = np.zeros((64, 64))
    b = a + 5.0  # MSE 25 at peak 255
    assert psnr(a, b, 255.0) == pytest.approx(10 * math.log10(255**2 / 25))
    rng = np.random.default_rng(1)
    noise = rng.choice([-0.1, 0.1], size=(50, 50, 3))
    assert psnr_rgb(np.full((50, 50, 3), 0.5) + noise, np.full((50, 50, 3), 0.5)) == (
        pytest.approx(20.0)
    )


def test_y_of_white_and_black_is_studio_range():
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)
    # uint8 and float inputs agree
    img = np.random.default_rng(2).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(img), rgb_to_y(img / 255.0))


def test_border_crop_ignores_errors_at_the_edges():
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr.copy()
    sr[:2] = 0
    sr[:, -2:] = 255
    assert psnr_y(sr, hr, border=2) == math.inf
    assert psnr_y(sr, hr, border=1) < 30
    assert shave(hr, 3).shape == (14, 14, 3)
    with pytest.raises(InputError, match="too small"):
        shave(hr, 10)


def test_ssim_drops_with_noise_and_needs_11_pixels():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 255, (48, 48))
    noisy = a + rng.normal(0, 80, a.shape)
    assert 0 < ssim(a, noisy) < 0.9
    assert ssim(a, a * 0.5 + 10) < ssim(a, a * 0.9 + 2) < 1.0
    with pytest.raises(InputError, match="11x11"):
        ssim(a[:10, :10], a[:10, :10])


def test_shape_mismatch_is_refused():
    with pytest.raises(InputError, match="differ in shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)), 1.0)
