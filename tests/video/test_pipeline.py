"""What a video run keeps: frames, every timestamp, audio and subtitle packets, metadata,
rotation, colour, chapters, bit depth; and values equal to the Upscaler's, exactly."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.runtime.upscaler import Upscaler
from overnet.video import EncodeOptions, Trim, upscale_video
from overnet.video.encode import default_encoder_threads
from tests.runtime.doubles import NearestSession
from tests.video.clips import (
    VFR_STEPS_MS,
    Clip,
    facts,
    frame_times,
    make_clip,
    packets,
    video_frames,
)

pytest.importorskip("av")


def test_mp4_keeps_timing_audio_metadata_rotation_and_colour(tmp_path, nearest2):
    source = make_clip(tmp_path / "in.mp4", Clip(frames=20, rotation=90))
    target = tmp_path / "out.mp4"
    result = upscale_video(source, target, nearest2)
    assert (result.frames_in, result.frames_out, result.damaged) == (20, 20, 0)
    assert result.size == (128, 96) and result.bytes == target.stat().st_size
    assert frame_times(target) == frame_times(source)  # every frame, same time base
    assert packets(target, "audio") == packets(source, "audio")  # copied, not re-encoded
    out, src = facts(target), facts(source)
    assert out["size"] == (128, 96) and out["frames"] == 20
    assert out["rotation"] == src["rotation"] == 90
    assert out["colour"] == src["colour"] == (1, 1, 1, 1)
    assert out["language"] == "eng" and out["title"] == "overnet test pattern"
    assert out["streams"] == ["video", "audio"]


def test_mkv_keeps_subtitles_attachments_chapters_and_stream_order(tmp_path, nearest2):
    clip = Clip(subtitles=True, chapters=True, attachment=True)
    source = make_clip(tmp_path / "in.mkv", clip)
    target = tmp_path / "out.mkv"
    upscale_video(source, target, nearest2, EncodeOptions(codec="libx265"))
    out = facts(target)
    assert out["streams"] == ["video", "audio", "subtitle", "attachment"]
    assert out["attachments"] == facts(source)["attachments"] != []
    assert out["chapters"] == ["one", "two"]
    assert packets(target, "subtitles") == packets(source, "subtitles")
    assert packets(target, "audio") == packets(source, "audio")
    assert frame_times(target) == frame_times(source)


def test_variable_frame_rate_keeps_every_timestamp(tmp_path, nearest2):
    source = make_clip(tmp_path / "vfr.mkv", Clip(frames=13, vfr=True, audio=False))
    target = tmp_path / "vfr_out.mkv"
    upscale_video(source, target, nearest2)
    times = frame_times(target)
    gaps = [int((b - a) * 1000) for a, b in itertools.pairwise(times)]
    assert gaps == [VFR_STEPS_MS[i % 4] for i in range(12)]
    assert times == frame_times(source)
    preview = tmp_path / "vfr_preview.mkv"
    upscale_video(source, preview, nearest2, trim=Trim(frames=5))  # gaps above 1/25 s
    assert frame_times(preview) == frame_times(source)[:5]


def test_ffv1_rgb24_output_equals_the_upscaler_exactly(tmp_path):
    upscaler = Upscaler(NearestSession(2))
    source = make_clip(tmp_path / "in.mp4", Clip(width=40, height=30, frames=6))
    target = tmp_path / "out.mkv"
    result = upscale_video(source, target, upscaler, EncodeOptions("ffv1", pix_fmt="rgb24"))
    assert result.encoding.startswith("ffv1 bgr0")  # ffv1's 8-bit RGB
    decoded_in, decoded_out = video_frames(source), video_frames(target)
    assert len(decoded_out) == len(decoded_in) == 6
    for (_, lr), (_, sr) in zip(decoded_in, decoded_out, strict=True):
        assert np.array_equal(sr, upscaler.upscale(lr))


def test_ten_bit_stays_ten_bit_and_ffv1_rgb48_is_exact(tmp_path):
    class Brighter(NearestSession):  # values that 8 bits cannot hold
        def _run(self, batch):
            return super()._run(batch) * np.float32(0.999)

    upscaler = Upscaler(Brighter(2))
    source = make_clip(tmp_path / "ten.mkv", Clip(pix_fmt="yuv420p10le", frames=5))
    x264 = tmp_path / "ten_x264.mkv"
    assert upscale_video(source, x264, upscaler).encoding.startswith("libx264 yuv420p10le")
    assert facts(x264)["pix_fmt"] == "yuv420p10le"
    lossless = tmp_path / "ten_ffv1.mkv"
    upscale_video(source, lossless, upscaler, EncodeOptions("ffv1", pix_fmt="rgb48le"))
    decoded_in = video_frames(source, "rgb48le")
    decoded_out = video_frames(lossless, "rgb48le")
    for (_, lr), (_, sr) in zip(decoded_in, decoded_out, strict=True):
        expected = upscaler.upscale(lr)
        assert sr.dtype == np.uint16 and np.array_equal(sr, expected)
        assert np.any(expected % 257 != 0)  # finer than 8 bits: nothing rounded on the way


@pytest.mark.parametrize(
    "colour",
    [(1, 1, 1, 1), (6, 6, 6, 1), (9, 14, 9, 1), (1, 1, 1, 2)],
    ids=["bt709", "bt601", "bt2020-pq", "bt709-full-range"],
)
def test_colour_tags_are_kept_and_converted_with_the_right_matrix(tmp_path, colour):
    # x1 through a lossless 4:4:4 codec: only the YUV <-> RGB conversions differ. The
    # wrong matrix would be off by 27..35 levels on this pattern (measured).
    clip = Clip(codec="ffv1", pix_fmt="yuv444p", frames=2, audio=False, colour=colour)
    source = make_clip(tmp_path / "in.mkv", clip)
    target = tmp_path / "out.mkv"
    upscale_video(source, target, Upscaler(NearestSession(1)), EncodeOptions("ffv1"))
    assert facts(target)["colour"] == colour and facts(target)["pix_fmt"] == "yuv444p"
    for (_, before), (_, after) in zip(video_frames(source), video_frames(target), strict=True):
        assert np.abs(before.astype(int) - after.astype(int)).max() <= 2


def test_odd_sizes(tmp_path):
    source = make_clip(
        tmp_path / "odd.mp4", Clip(width=321, height=181, frames=3, pix_fmt="yuv444p")
    )
    x2 = upscale_video(source, tmp_path / "x2.mp4", Upscaler(NearestSession(2)))
    assert x2.size == (642, 362) and facts(tmp_path / "x2.mp4")["size"] == (642, 362)
    x3 = upscale_video(source, tmp_path / "x3.mp4", Upscaler(NearestSession(3)))
    assert x3.size == (963, 543)  # 4:4:4 takes odd sides
    cropped = upscale_video(
        source,
        tmp_path / "x3_420.mp4",
        Upscaler(NearestSession(3)),
        EncodeOptions(pix_fmt="yuv420p"),
    )
    assert cropped.size == (962, 542) and any("even sides" in n for n in cropped.notes)


def test_tiny_frames(tmp_path):
    source = make_clip(tmp_path / "tiny.mkv", Clip(width=3, height=2, codec="ffv1", frames=3))
    result = upscale_video(source, tmp_path / "tiny_out.mkv", Upscaler(NearestSession(2)))
    assert result.size == (6, 4) and facts(tmp_path / "tiny_out.mkv")["frames"] == 3


def test_trimming_frames_start_and_duration(tmp_path, nearest2):
    source = make_clip(tmp_path / "long.mp4", Clip(frames=50))  # 2 s at 25 fps
    first = upscale_video(source, tmp_path / "first.mp4", nearest2, trim=Trim(frames=5))
    assert first.frames_out == 5
    assert frame_times(tmp_path / "first.mp4") == [Fraction(i, 25) for i in range(5)]
    audio = packets(tmp_path / "first.mp4", "audio")
    assert audio and max(t for _, t in audio) < Fraction(5, 25) + Fraction(1024, 48000)
    part = upscale_video(
        source, tmp_path / "part.mp4", nearest2, trim=Trim(start=1.0, duration=0.4)
    )
    assert part.frames_out == 10
    assert frame_times(tmp_path / "part.mp4") == [Fraction(i, 25) for i in range(10)]
    source_audio = dict((payload, t) for payload, t in packets(source, "audio"))
    kept = packets(tmp_path / "part.mp4", "audio")
    assert len(kept) >= 18  # 0.4 s of 1024-sample packets at 48 kHz
    for payload, t in kept:  # the same packets, 1 s earlier (mp4 edit lists count in ms)
        assert abs(source_audio[payload] - 1 - t) <= Fraction(1, 1000)


def test_frame_batches_follow_the_upscaler(tmp_path):
    session = NearestSession(2)
    source = make_clip(tmp_path / "b.mp4", Clip(frames=7, audio=False))
    result = upscale_video(source, tmp_path / "b_out.mp4", Upscaler(session, batch=3))
    assert result.frames_out == 7
    assert [s[0] for s in session.shapes] == [3, 3, 1]


@pytest.mark.parametrize(
    ("codec", "suffix", "pix_fmt"),
    [
        ("libx264", ".mp4", "yuv420p"),
        ("libx265", ".mp4", "yuv420p"),
        ("libsvtav1", ".webm", "yuv420p"),
        ("libvpx-vp9", ".webm", "yuv420p"),
        ("prores", ".mov", "yuv422p10le"),
        ("prores_ks", ".mov", "yuv422p10le"),
        ("ffv1", ".mkv", "yuv420p"),
    ],
)
def test_every_software_encoder_writes_a_playable_file(tmp_path, nearest2, codec, suffix, pix_fmt):
    source = make_clip(tmp_path / "in.mkv", Clip(frames=4, audio=False))
    target = tmp_path / f"out{suffix}"
    upscale_video(source, target, nearest2, EncodeOptions(codec))
    made = facts(target)
    assert made["frames"] == 4 and made["size"] == (128, 96) and made["pix_fmt"] == pix_fmt


def test_data_streams_are_copied(tmp_path, nearest2):
    import av

    source = tmp_path / "data.mp4"
    with av.open(str(source), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        data = out.add_data_stream("bin_data")
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), i * 40, np.uint8), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            packet = av.Packet(b"telemetry %d" % i)
            packet.stream, packet.time_base = data, Fraction(1, 25)
            packet.pts = packet.dts = i
            out.mux(packet)
        out.mux(video.encode(None))
    target = tmp_path / "out.mp4"
    upscale_video(source, target, nearest2)
    assert facts(target)["streams"] == ["video", "data"]
    assert packets(target, "data") == packets(source, "data") != []


def x264_threads(path) -> int:
    """The frame threads libx264 ran with, from the settings it writes into the stream."""
    found = re.search(rb"threads=(\d+) ", Path(path).read_bytes())
    assert found, f"no x264 settings in {path}"
    return int(found.group(1))


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs a CPU mask of at least 2 CPUs to narrow",
)
def test_encoder_threads_do_not_follow_the_process_cpu_mask(tmp_path, nearest2):
    """A Ray actor narrows its CPU mask; left on "auto", libx264 then ran fewer threads
    (other bytes) than the local command. Read from x264's own record of its settings."""
    source = make_clip(tmp_path / "in.mp4", Clip(width=48, height=128, frames=8, audio=False))
    mask = os.sched_getaffinity(0)
    upscale_video(source, tmp_path / "wide.mp4", nearest2)
    try:
        os.sched_setaffinity(0, {min(mask)})
        upscale_video(source, tmp_path / "narrow.mp4", nearest2)
    finally:
        os.sched_setaffinity(0, mask)
    wide = x264_threads(tmp_path / "wide.mp4")
    assert wide == x264_threads(tmp_path / "narrow.mp4") == default_encoder_threads()
    assert b"sliced_threads=0" in (tmp_path / "wide.mp4").read_bytes()  # frame threads
    upscale_video(source, tmp_path / "one.mp4", nearest2, EncodeOptions(threads=1))
    assert x264_threads(tmp_path / "one.mp4") == 1
    with pytest.raises(InputError, match="encoder threads must be at least 1"):
        upscale_video(source, tmp_path / "zero.mp4", nearest2, EncodeOptions(threads=0))
    assert not (tmp_path / "zero.mp4").exists()


def test_libx264_writes_the_same_bytes_for_the_same_frames(tmp_path, nearest2):
    """Left to its AVX-512 code, libx264 wrote other bytes for the same frames (see
    benchmarks/encoder_repeatability.py); on CPUs without AVX-512 this has nothing to
    catch."""
    odd = make_clip(tmp_path / "odd.mp4", Clip(width=321, height=181, frames=3, pix_fmt="yuv444p"))
    upscale_video(odd, tmp_path / "odd_x3.mp4", Upscaler(NearestSession(3)))  # as in a batch
    source = make_clip(tmp_path / "in.mp4", Clip(width=48, height=128, frames=8, audio=False))
    digests = set()
    for run in range(6):
        target = tmp_path / f"run{run}.mp4"
        upscale_video(source, target, nearest2)  # the default: frame threads
        digests.add(hashlib.sha256(target.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_svt_av1_prints_no_banner(tmp_path, nearest2, capfd, monkeypatch):
    monkeypatch.delenv("SVT_LOG", raising=False)
    source = make_clip(tmp_path / "in.mp4", Clip(frames=2, audio=False))
    upscale_video(source, tmp_path / "out.mkv", nearest2, EncodeOptions(codec="libsvtav1"))
    assert "Svt[info]" not in capfd.readouterr().err
