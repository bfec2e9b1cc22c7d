"""Every bad input is a clear error or a documented behaviour, and a failed run leaves
nothing under the output name."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from overnet.errors import InputError
from overnet.runtime.upscaler import Upscaler
from overnet.video import EncodeOptions, Trim, upscale_video
from tests.runtime.doubles import NearestSession
from tests.video.clips import Clip, facts, frame_times, make_clip

pytest.importorskip("av")


def _no_output(folder, name):
    assert not (folder / name).exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(f".{name}")]  # no temp


def _ffv1(tmp_path, name="f.mkv", frames=12):
    return make_clip(tmp_path / name, Clip(codec="ffv1", frames=frames, audio=False))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)), "not a video"),
    ],
)
def test_unreadable_files(tmp_path, nearest2, content, match):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=match):
        upscale_video(bad, tmp_path / "out.mp4", nearest2)
    _no_output(tmp_path, "out.mp4")


def test_truncated_mp4_is_refused(tmp_path, nearest2):
    data = make_clip(tmp_path / "whole.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    with pytest.raises(InputError, match="corrupt or truncated"):
        upscale_video(cut, tmp_path / "out.mp4", nearest2)
    _no_output(tmp_path, "out.mp4")


def test_truncated_mkv_is_written_and_counted_and_strict_refuses_it(tmp_path, nearest2):
    data = _ffv1(tmp_path, frames=75).read_bytes()  # 3 s
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.5)])
    result = upscale_video(cut, tmp_path / "out.mkv", nearest2)
    assert 0 < result.frames_out < 75 and result.missing > 0
    assert any("ends early" in note for note in result.notes)
    with pytest.raises(InputError, match="ends early"):
        upscale_video(cut, tmp_path / "strict.mkv", nearest2, strict=True)
    _no_output(tmp_path, "strict.mkv")


def _garble(source, target, frame: int, length: int, seed: int = 0):
    """Copy ``source`` with ``length`` random bytes inside frame ``frame``'s payload."""
    import av

    with av.open(str(source)) as container:
        payload = [bytes(p) for p in container.demux(video=0) if p.size][frame]
    data = bytearray(source.read_bytes())
    at = data.find(payload) + len(payload) // 3
    data[at : at + length] = np.random.default_rng(seed).bytes(length)
    target.write_bytes(bytes(data))
    return target


def test_damaged_frames_are_counted_and_strict_makes_them_fatal(tmp_path, nearest2):
    clip = Clip(width=128, height=96, audio=False, options={"bframes": "0"})
    source = make_clip(tmp_path / "h264.mkv", clip)
    damaged = _garble(source, tmp_path / "damaged.mkv", 6, 16, seed=3)
    result = upscale_video(damaged, tmp_path / "out.mkv", nearest2)
    assert result.damaged == 1 and result.frames_in == result.frames_out == 12
    assert frame_times(tmp_path / "out.mkv") == frame_times(source)  # concealed, kept
    with pytest.raises(InputError, match="damaged .*--strict"):
        upscale_video(damaged, tmp_path / "strict.mkv", nearest2, strict=True)
    _no_output(tmp_path, "strict.mkv")


def test_a_frame_that_fails_to_decode_is_counted(tmp_path, nearest2):
    source = _ffv1(tmp_path, "f.avi")
    broken = _garble(source, tmp_path / "broken.avi", 6, 300)  # ffv1 cannot decode it
    result = upscale_video(broken, tmp_path / "out.mkv", nearest2)
    assert result.damaged == 1 and result.frames_out == 11
    times = frame_times(tmp_path / "out.mkv")
    assert len(times) == 11 and Fraction(6, 25) not in times  # the others keep their time


def test_no_video_stream(tmp_path, nearest2):
    import av

    audio_only = tmp_path / "song.mp4"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(InputError, match=r"no video stream \(streams: #0 audio\)"):
        upscale_video(audio_only, tmp_path / "out.mp4", nearest2)
    _no_output(tmp_path, "out.mp4")


def test_unsupported_codec(tmp_path, nearest2):
    data = _ffv1(tmp_path).read_bytes()
    unknown = tmp_path / "unknown.mkv"
    unknown.write_bytes(data.replace(b"V_FFV1", b"V_QQQQ"))  # a codec FFmpeg does not know
    with pytest.raises(InputError, match="cannot decode"):
        upscale_video(unknown, tmp_path / "out.mkv", nearest2)
    _no_output(tmp_path, "out.mkv")


def test_zero_frames(tmp_path, nearest2):
    source = make_clip(tmp_path / "short.mp4", Clip(frames=5))  # 0.2 s
    with pytest.raises(InputError, match="no video frame could be decoded after --start 3"):
        upscale_video(source, tmp_path / "out.mp4", nearest2, trim=Trim(start=3))
    _no_output(tmp_path, "out.mp4")


def test_frame_size_changing_mid_stream(tmp_path, nearest2):
    import av

    source = tmp_path / "sizes.mkv"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuvj420p"
        for i, (w, h) in enumerate([(32, 24)] * 3 + [(40, 30)] * 2):
            encoder = av.CodecContext.create("mjpeg", "w")  # each JPEG carries its size
            encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuvj420p"
            encoder.time_base = Fraction(1, 25)
            rgb = np.full((h, w, 3), i * 40, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
            frame.pts = i
            for packet in encoder.encode(frame) + encoder.encode(None):
                packet.stream, packet.time_base = stream, Fraction(1, 25)
                packet.pts = packet.dts = i
                out.mux(packet)
    with pytest.raises(InputError, match="frame size changes from 32x24 to 40x30 at 0.120 s"):
        upscale_video(source, tmp_path / "out.mkv", nearest2)
    _no_output(tmp_path, "out.mkv")


def test_a_failing_session_stops_the_pipeline_and_leaves_nothing(tmp_path):
    class Failing(NearestSession):
        def _run(self, batch):
            if len(self.shapes) >= 3:
                raise RuntimeError("backend fell over")
            return super()._run(batch)

    source = make_clip(tmp_path / "in.mp4", Clip(frames=30))
    with pytest.raises(RuntimeError, match="fell over"):
        upscale_video(source, tmp_path / "out.mp4", Upscaler(Failing(2)))
    _no_output(tmp_path, "out.mp4")


def test_missing_hardware_encoder_is_a_clear_error(tmp_path, nearest2):
    source = make_clip(tmp_path / "in.mp4", Clip(frames=3))
    try:
        upscale_video(source, tmp_path / "out.mp4", nearest2, EncodeOptions("h264_nvenc"))
    except InputError as exc:  # no NVIDIA GPU here (the usual case on CI)
        assert "could not start the h264_nvenc" in str(exc) and "GPU and driver" in str(exc)
        _no_output(tmp_path, "out.mp4")
    else:  # a machine with NVENC: the file was written
        assert facts(tmp_path / "out.mp4")["frames"] == 3
