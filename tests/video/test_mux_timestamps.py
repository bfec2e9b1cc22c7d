"""Encoder timestamps the muxer would refuse are repaired as the ffmpeg CLI does.

libx265 with frame threads (x265 picks them from the core count) sometimes hands out a
garbage dts above the pts for the first packets of a short run; matroska then refuses
the packet ("pts (0) < dts (19126026245)"), which failed CI once on a machine whose
x265 ran frame-threaded."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from overnet.video.encode import EncodeOptions, plan_encoding
from overnet.video.mux import Encoder
from overnet.video.stages import Link

pytest.importorskip("av")


class _Output:
    def __init__(self) -> None:
        self.muxed: list[tuple[int, int]] = []

    def mux(self, packet) -> None:
        self.muxed.append((packet.pts, packet.dts))


def _encoder() -> tuple[Encoder, _Output]:
    output, stop = _Output(), threading.Event()
    plan = plan_encoding(EncodeOptions(codec="libx265"), "yuv420p", 8)
    return Encoder(output, None, {}, plan, Link(4, stop), stop), output  # type: ignore[arg-type]


def _packets(*stamps: tuple[int, int]) -> list[SimpleNamespace]:
    return [SimpleNamespace(pts=p, dts=d) for p, d in stamps]


def test_a_garbage_dts_above_the_pts_is_replaced_and_dts_stay_increasing():
    encoder, output = _encoder()
    encoder._mux_video(_packets((0, 19126026245), (2048, -512), (512, 0), (1024, 512)))
    dts = [d for _, d in output.muxed]
    assert all(p >= d for p, d in output.muxed)
    assert dts == sorted(set(dts))  # strictly increasing
    assert [p for p, _ in output.muxed] == [0, 2048, 512, 1024]  # frame times kept
    assert encoder.repaired == 3  # the garbage one and the two it pushed up


def test_valid_timestamps_pass_untouched():
    encoder, output = _encoder()
    stamps = [(0, -1024), (2048, -512), (512, 0), (1024, 512)]
    encoder._mux_video(_packets(*stamps))
    assert output.muxed == stamps and encoder.repaired == 0


def test_pyav_logging_is_on_only_while_a_video_runs(tmp_path):
    """FFmpeg's reasons reach our errors while a video runs; PyAV's log callback is off
    again afterwards (left on, it may be called by codec threads at interpreter exit)."""
    import av

    from overnet.runtime import Upscaler
    from overnet.video import upscale_video
    from tests.runtime.doubles import NearestSession
    from tests.video.clips import Clip, make_clip

    seen = []

    def on_frame(_n: int) -> None:
        seen.append(av.logging.get_level())

    source = make_clip(tmp_path / "clip.mp4", Clip(frames=2, audio=False))
    assert av.logging.get_level() is None
    upscale_video(source, tmp_path / "out.mp4", Upscaler(NearestSession(2)), on_frame=on_frame)
    assert seen and set(seen) == {av.logging.ERROR}
    assert av.logging.get_level() is None
