"""PSNR and SSIM as the SR benchmark scripts compute them (numpy only).

Images are HWC RGB; float arrays are in [0, 1], uint8 arrays in [0, 255].
Y is ITU-R BT.601 luma as MATLAB's rgb2ycbcr (studio range, 16..235).
"""

from __future__ import annotations

import math

import numpy as np

from overnet.errors import InputError

#: rgb2ycbcr Y row for RGB in [0, 255]; the upstream code writes it as (65.738,
#: 129.057, 25.064) / 256, which is the same to 5 significant digits.
Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] -> float64 [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    return img.astype(np.float64, copy=False)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """HWC RGB -> HW luma in [16, 235] (float64, not rounded)."""
    _check_rgb(img)
    return 16.0 + to_float(img) @ (Y_WEIGHTS * 255.0)


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from every side (the benchmark crops ``scale`` pixels)."""
    if border <= 0:
        return img
    h, w = img.shape[:2]
    if h <= 2 * border or w <= 2 * border:
        raise InputError(
            f"image of {h}x{w} is too small to remove a {border}-pixel border; "
            f"it must be larger than {2 * border}x{2 * border}"
        )
    return img[border:-border, border:-border]


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB of two same-shaped arrays with signal peak ``peak``; inf when equal."""
    _check_same(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """PSNR on the Y channel (peak 255) after removing ``border`` pixels."""
    return psnr(shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border), 255.0)


def psnr_rgb(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """PSNR over the three RGB channels (values in [0, 1], peak 1)."""
    return psnr(shave(to_float(sr), border), shave(to_float(hr), border), 1.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation, 'valid' region (MATLAB filter2(w, img, 'valid'))."""
    k = kernel.size
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ kernel


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM of two HW arrays (Wang et al.: 11x11 Gaussian, sigma 1.5, K1 .01, K2 .03)."""
    _check_same(a, b)
    if a.ndim != 2:
        raise InputError(f"ssim expects single-channel HxW arrays, got shape {a.shape}")
    if min(a.shape) < 11:
        raise InputError(f"ssim needs images of at least 11x11 pixels, got {a.shape}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    w = _gaussian_window()
    mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
    var_a = _filter_valid(a * a, w) - mu_a**2
    var_b = _filter_valid(b * b, w) - mu_b**2
    cov = _filter_valid(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """SSIM on Y in [0, 255] after removing ``border`` pixels."""
    return ssim(shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border), 255.0)


def _check_rgb(img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"expected an HxWx3 RGB image, got shape {img.shape}")


def _check_same(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
