"""PyTorch's bicubic resize (``F.interpolate(mode="bicubic", align_corners=False)``, Keys
a = -0.75, no antialias) in numpy, for any window of the output.

The network resizes with exactly this; computing a window of the output from a window of
the input with global coordinates gives the whole-image values, so a tiled run can resize
tile by tile (``overnet.runtime.overscale``).
"""

from __future__ import annotations

import numpy as np

_A = -0.75


def cubic_taps(in_size: int, out_size: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Source rows and weights of output indices [start, stop) for ``in_size`` -> ``out_size``.

    Returns (indices (n, 4) int64, clamped to [0, in_size), weights (n, 4) float32).
    PyTorch maps output index d to ``(d + 0.5) * in/out - 0.5`` (in float32) and reads
    out-of-range taps from the border pixel.
    """
    ratio = np.float32(in_size) / np.float32(out_size)
    real = ratio * (np.arange(start, stop, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    floor = np.floor(real)
    t = (real - floor).astype(np.float64)
    weights = np.stack(
        [
            ((_A * (t + 1) - 5 * _A) * (t + 1) + 8 * _A) * (t + 1) - 4 * _A,
            ((_A + 2) * t - (_A + 3)) * t * t + 1,
            ((_A + 2) * (1 - t) - (_A + 3)) * (1 - t) * (1 - t) + 1,
            ((_A * (2 - t) - 5 * _A) * (2 - t) + 8 * _A) * (2 - t) - 4 * _A,
        ],
        axis=1,
    ).astype(np.float32)
    indices = floor.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    return np.clip(indices, 0, in_size - 1), weights


#: output indices per matrix product: a block reads about BLOCK * in/out + 3 inputs, so
#: the band matrix stays narrow while the product still runs at BLAS speed
BLOCK = 64


def _band(local: np.ndarray, weights: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(first input, end, n x (end - first) matrix) of a block of output indices."""
    lo, hi = int(local.min()), int(local.max()) + 1
    matrix = np.zeros((len(local), hi - lo), np.float32)
    rows = np.arange(len(local))
    for k in range(4):  # one entry per row per tap: clamped taps that coincide add up
        matrix[rows, local[:, k] - lo] += weights[:, k]
    return lo, hi, matrix


def _resize_axis(
    x: np.ndarray, axis: int, in_size: int, out_size: int, origin: int, window: tuple[int, int]
) -> np.ndarray:
    """Resize axis 1 or 2 of a C x H x W array (products with narrow band matrices)."""
    indices, weights = cubic_taps(in_size, out_size, *window)
    local = indices - origin
    if local.size and (local.min() < 0 or local.max() >= x.shape[axis]):
        raise ValueError(
            f"output {window} needs input {indices.min()}..{indices.max()}, outside the "
            f"window {origin}..{origin + x.shape[axis] - 1} given"
        )
    n = len(local)
    shape = list(x.shape)
    shape[axis] = n
    out = np.empty(shape, np.float32)
    if axis == 2:  # C x H x W seen as (C*H) x W: one product per block of columns
        flat, flat_out = x.reshape(-1, x.shape[2]), out.reshape(-1, n)
    for b0 in range(0, n, BLOCK):
        b1 = min(n, b0 + BLOCK)
        lo, hi, matrix = _band(local[b0:b1], weights[b0:b1])
        if axis == 1:
            out[:, b0:b1, :] = np.matmul(matrix, x[:, lo:hi, :])
        else:
            flat_out[:, b0:b1] = flat[:, lo:hi] @ matrix.T
    return out


def resize_window(
    x: np.ndarray,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    origin: tuple[int, int],
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> np.ndarray:
    """Rows [r0, r1) x cols [c0, c1) of the bicubic resize of an ``in_size`` (H, W) image
    to ``out_size``, computed from ``x`` (C x h x w float32): the input's rows and cols
    starting at ``origin``. ValueError when ``x`` lacks a row or column the window needs.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = _resize_axis(x, 1, in_size[0], out_size[0], origin[0], rows)
    return _resize_axis(out, 2, in_size[1], out_size[1], origin[1], cols)


def needed_range(in_size: int, out_size: int, start: int, stop: int) -> tuple[int, int]:
    """Input indices [lo, hi) that output indices [start, stop) read."""
    indices, _ = cubic_taps(in_size, out_size, start, stop)
    return int(indices.min()), int(indices.max()) + 1
