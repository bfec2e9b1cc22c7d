"""Aligned LR/HR crops and the eight flip/rotation variants (numpy, HWC uint8)."""

from __future__ import annotations

import numpy as np


def crop_pair(
    hr: np.ndarray, lr: np.ndarray, y: int, x: int, patch: int, scale: int
) -> tuple[np.ndarray, np.ndarray]:
    """LR patch ``patch``x``patch`` at (y, x) and the HR patch it was made from.

    HR pixel (y*s, x*s) starts the block LR pixel (y, x) summarises, so the pair
    stays aligned for bicubic-downscaled LR (MATLAB and DIV2K alike).
    """
    lr_patch = lr[y : y + patch, x : x + patch]
    hs, hp = y * scale, patch * scale
    hr_patch = hr[hs : hs + hp, x * scale : x * scale + hp]
    return hr_patch, lr_patch


def flip_rotate(img: np.ndarray, flip_v: bool, flip_h: bool, rot: int) -> np.ndarray:
    """Vertical flip, horizontal flip, then ``rot`` quarter turns (HWC, a view)."""
    if flip_v:
        img = img[::-1]
    if flip_h:
        img = img[:, ::-1]
    return np.rot90(img, rot, axes=(0, 1)) if rot else img


def to_nchw_float(patches: list[np.ndarray]) -> np.ndarray:
    """List of HWC uint8 patches (same size) -> NCHW float32 in [0, 1], contiguous."""
    batch = np.stack(patches).astype(np.float32) / 255.0
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
