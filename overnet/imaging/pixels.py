"""The one conversion between stored pixel values and the network's float32 [0, 1].

Every path that feeds the network or stores its output goes through here (numpy and PIL
images in :mod:`overnet.imaging.modes`, video frames in :mod:`overnet.video.frames`,
the HWC uint8 helpers of :mod:`overnet.imaging.io`), so an image upscaled by any of them
is stored with the same values, bit for bit:

* uint8 / uint16 -> float32: divide by the type's maximum (255, 65535);
* float -> float32: clip to [0, 1];
* float -> uint8 / uint16: clip to [0, 1], multiply by the maximum, round half up
  (``floor(x * max + 0.5)``);
* float -> float: clip to [0, 1], cast.

numpy only.
"""

from __future__ import annotations

import numpy as np

from overnet.errors import InputError

#: integer pixel types and the value that stands for 1.0
INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def is_pixel_dtype(dtype: np.dtype) -> bool:
    """True for the pixel types the conversions take: uint8, uint16 or any float."""
    dtype = np.dtype(dtype)
    return dtype in INT_MAX or np.issubdtype(dtype, np.floating)


def to_float(values: np.ndarray) -> np.ndarray:
    """uint8, uint16 or float pixels (any shape) -> float32 in [0, 1]."""
    if values.dtype in INT_MAX:
        return values.astype(np.float32) / INT_MAX[values.dtype]
    if np.issubdtype(values.dtype, np.floating):
        return np.clip(values.astype(np.float32, copy=False), 0.0, 1.0)
    raise InputError(
        f"expected uint8, uint16 or float pixel values, got {values.dtype}; convert the array "
        "first (float images must be scaled to [0, 1])"
    )


def from_float(values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Float pixels (any shape, not clipped) -> ``dtype``: clipped to [0, 1]; integer
    types are scaled by their maximum and rounded half up."""
    dtype = np.dtype(dtype)
    values = np.clip(values, 0.0, 1.0)
    if dtype in INT_MAX:
        return np.floor(values * INT_MAX[dtype] + 0.5).astype(dtype)
    return values.astype(dtype)


def hwc_to_nchw(image: np.ndarray) -> np.ndarray:
    """HxWxC pixels -> contiguous 1xCxHxW float32 in [0, 1]."""
    return np.ascontiguousarray(to_float(image).transpose(2, 0, 1)[None])


def nhwc_to_nchw(images: np.ndarray) -> np.ndarray:
    """NxHxWxC pixels -> contiguous NxCxHxW float32 in [0, 1]."""
    return np.ascontiguousarray(to_float(images).transpose(0, 3, 1, 2))


def nchw_to_nhwc(batch: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """NxCxHxW float (not clipped) -> NxHxWxC of ``dtype`` (a view of the converted
    array: index it per image and make each contiguous as needed)."""
    return from_float(batch, dtype).transpose(0, 2, 3, 1)
