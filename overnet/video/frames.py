"""The frames API: HWC RGB frames in, super-resolved frames out, no file layer.

For a pipeline of one's own (a PyAV or OpenCV loop, a camera)::

    for sr in upscale_frames(frames, Upscaler(session)):
        writer.write(sr)

Frames are numpy HxWx3 RGB arrays: uint8 (0..255), uint16 (0..65535, e.g. 10-bit video
decoded to ``rgb48le``) or float (0..1). Each result has the input's dtype. The network
runs on float32 frames, so 16-bit input keeps its depth all the way through.
Conversions are :mod:`overnet.imaging.pixels`, the ones ``Upscaler.upscale`` uses, so
the values match it bit for bit (uint -> float: divide by the maximum; float -> uint:
clip to [0, 1], multiply by the maximum, round half up).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from overnet.errors import InputError
from overnet.imaging.pixels import is_pixel_dtype, nchw_to_nhwc, nhwc_to_nchw
from overnet.runtime.upscaler import Upscaler


def check_frame(frame: object) -> np.ndarray:
    """``frame`` if it is an HxWx3 uint8/uint16/float array, else an InputError."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"expected a numpy HxWx3 frame, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(
            f"expected an HxWx3 RGB frame, got shape {frame.shape}; gray and alpha images "
            "go through Upscaler.upscale"
        )
    if not is_pixel_dtype(frame.dtype):
        raise InputError(f"expected uint8, uint16 or float [0, 1] frames, got {frame.dtype}")
    return frame


def to_batch(frames: Sequence[np.ndarray]) -> np.ndarray:
    """N HxWx3 frames of one shape and dtype -> Nx3xHxW float32 in [0, 1]."""
    return nhwc_to_nchw(np.stack(frames))


def from_batch(batch: np.ndarray, dtype: np.dtype) -> list[np.ndarray]:
    """Nx3xHxW float (not clipped) -> N HxWx3 frames of ``dtype``."""
    return [np.ascontiguousarray(frame) for frame in nchw_to_nhwc(batch, dtype)]


def frames_per_run(upscaler: Upscaler, height: int, width: int) -> int:
    """Whole frames one ``Session.run`` takes: the plan's batch when a frame runs untiled
    (within --max-memory), else 1 (its tiles are batched instead)."""
    plan = upscaler.plan(height, width)
    return 1 if plan.tiled else plan.batch


def upscale_batch(
    upscaler: Upscaler, frames: Sequence[np.ndarray], dtype: np.dtype | None = None
) -> list[np.ndarray]:
    """Upscale frames of one shape and dtype in one go; results in ``dtype`` (default:
    the input's)."""
    out = upscaler.upscale_array(to_batch(frames))
    return from_batch(out, dtype if dtype is not None else frames[0].dtype)


def upscale_frames(
    frames: Iterable[np.ndarray], upscaler: Upscaler, *, batch: int | None = None
) -> Iterator[np.ndarray]:
    """Yield the upscaled version of each frame, in order.

    Consecutive frames of one shape and dtype are run together, up to ``batch`` frames
    (default: as many as the upscaler's memory budget and batch allow); a frame's result
    comes once its group is full or the input ends. Frames are pulled lazily, so an
    endless source works and at most one group is held.
    """
    if batch is not None and batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    group: list[np.ndarray] = []
    size = 1
    for frame in frames:
        frame = check_frame(frame)
        if group and (frame.shape != group[0].shape or frame.dtype != group[0].dtype):
            yield from upscale_batch(upscaler, group)
            group = []
        if not group:
            size = batch or frames_per_run(upscaler, frame.shape[0], frame.shape[1])
        group.append(frame)
        if len(group) >= size:
            yield from upscale_batch(upscaler, group)
            group = []
    if group:
        yield from upscale_batch(upscaler, group)
