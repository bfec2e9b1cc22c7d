"""MATLAB-compatible bicubic ``imresize`` in numpy (the benchmark's LR generator).

Facts it follows: Keys cubic (a = -0.5), kernel widened by 1/s when shrinking
(antialiasing), mirrored borders, one dimension at a time (the one shrunk most
first), and for uint8 input a round-half-away + clip to uint8 after each pass.
"""

from __future__ import annotations

import math

import numpy as np

from overnet.errors import InputError


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len x taps) and 0-based source indices, as MATLAB's contributions()."""
    antialias = scale < 1
    width = 4.0 / scale if antialias else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based like MATLAB
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, mirror.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, indices = _contributions(img.shape[axis], out_len, scale)
    moved = np.moveaxis(img, axis, 0).astype(np.float64, copy=False)
    gathered = moved[indices]  # out_len x taps x ...
    out = np.einsum("ot...,ot->o...", gathered, weights)
    return np.moveaxis(out, 0, axis)


def imresize(
    img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Resize an HW or HWC image like MATLAB ``imresize(img, scale, 'bicubic')``.

    uint8 input gives uint8 output (rounded after each dimension, as MATLAB);
    float input gives float64 output, unclipped. Give ``scale`` or ``size`` (H, W).
    """
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        raise InputError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    h, w = img.shape[:2]
    if size is None:
        if scale is None or scale <= 0:
            raise InputError(f"give a positive scale or a size, got scale={scale!r}")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        scales = (float(scale), float(scale))
    else:
        scales = (size[0] / h, size[1] / w)
    is_uint8 = img.dtype == np.uint8
    out: np.ndarray = img
    # MATLAB resizes the dimension with the smallest scale first (height on ties).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        out = _resize_axis(out, axis, size[axis], scales[axis])
        if is_uint8:
            out = np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out
