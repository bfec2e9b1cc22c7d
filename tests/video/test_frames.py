"""The frames API: HWC frames in, SR frames out, the same values as Upscaler.upscale."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.runtime.upscaler import Upscaler
from overnet.video import upscale_frames
from tests.runtime.doubles import NearestSession


class ScaledSession(NearestSession):
    """x2 nearest, times 1.003: outputs that need rounding, so conversions must match."""

    def _run(self, batch):
        return super()._run(batch) * np.float32(1.003)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_each_frame_equals_upscaler_upscale(dtype):
    rng = np.random.default_rng(0)
    peak = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    frames = [(rng.random((9, 13, 3)) * peak).astype(dtype) for _ in range(5)]
    upscaler = Upscaler(ScaledSession(2), batch=2)
    out = list(upscale_frames(iter(frames), upscaler))
    assert len(out) == 5
    for frame, sr in zip(frames, out, strict=True):
        assert sr.dtype == dtype and sr.shape == (18, 26, 3)
        assert np.array_equal(sr, upscaler.upscale(frame))


def test_frames_are_batched_and_groups_split_on_shape_change():
    session = NearestSession(2)
    frames = [np.zeros((8, 8, 3), np.uint8)] * 5 + [np.zeros((6, 10, 3), np.uint8)] * 2
    out = list(upscale_frames(frames, Upscaler(session, batch=2)))
    assert [o.shape for o in out] == [(16, 16, 3)] * 5 + [(12, 20, 3)] * 2
    assert [s[0] for s in session.shapes] == [2, 2, 1, 2]  # 5 frames as 2+2+1, then 2


def test_explicit_batch_and_laziness():
    session = NearestSession(2)
    pulled = []

    def source():
        for i in range(4):
            pulled.append(i)
            yield np.full((4, 4, 3), i, np.uint8)

    results = upscale_frames(source(), Upscaler(session), batch=3)
    first = next(results)
    assert first[0, 0, 0] == 0 and pulled == [0, 1, 2]  # one group pulled, no more
    assert [r[0, 0, 0] for r in results] == [1, 2, 3]


@pytest.mark.parametrize(
    ("frame", "what"),
    [
        (np.zeros((4, 4), np.uint8), "HxWx3"),
        (np.zeros((4, 4, 4), np.uint8), "HxWx3"),
        (np.zeros((4, 4, 3), np.int32), "uint8, uint16 or float"),
        ([[1, 2, 3]], "numpy"),
    ],
)
def test_bad_frames_are_refused(frame, what):
    with pytest.raises(InputError, match=what):
        list(upscale_frames([frame], Upscaler(NearestSession(2))))
