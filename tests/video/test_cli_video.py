"""`overnet upscale` with videos: mixed with images, one failure at a time, options,
resume, and the real x2 model end to end."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import overnet.runtime
from overnet.cli import main
from tests.runtime.doubles import NearestSession
from tests.video.clips import Clip, facts, frame_times, make_clip, packets

pytest.importorskip("av")


@pytest.fixture
def nearest_cli(monkeypatch):
    """`overnet upscale` opens a nearest-neighbour x2 session whatever the model."""
    monkeypatch.setattr(overnet.runtime, "open_session", lambda *a, **k: NearestSession(2))


def _run(*args: str):
    return CliRunner().invoke(main, ["upscale", "--no-progress", "--model", "unused.onnx", *args])


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4", Clip(frames=8))
    disguised = make_clip(tmp_path / "x.mp4", Clip(frames=4, audio=False))
    (folder / "named_like_an_image.png").write_bytes(disguised.read_bytes())
    (folder / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3 not really matroska")
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(folder / "photo.png")
    return folder


def test_images_and_videos_in_one_call_one_failure_does_not_stop_the_rest(
    nearest_cli, inputs, tmp_path
):
    out = tmp_path / "out"
    result = _run(str(inputs), "-o", str(out))
    assert result.exit_code == 1, result.output
    assert "1 upscaled, 0 skipped" in result.output  # the image
    assert "2 video(s) upscaled, 0 skipped (output exists; --overwrite to redo), 1 failed" in (
        result.output
    )
    assert "failed: " in result.output and "broken.mkv" in result.output
    assert "8 frames in, 8 out, 0 damaged" in result.output
    assert facts(out / "clip.mp4")["frames"] == 8
    assert facts(out / "named_like_an_image.mp4")["frames"] == 4  # told by content
    assert packets(out / "clip.mp4", "audio") == packets(inputs / "clip.mp4", "audio")
    with Image.open(out / "photo.png") as photo:
        assert photo.size == (16, 12)
    assert not (out / "broken.mkv").exists()

    again = _run(str(inputs / "clip.mp4"), "-o", str(out))
    assert again.exit_code == 0 and "0 video(s) upscaled, 1 skipped" in again.output
    redo = _run(str(inputs / "clip.mp4"), "-o", str(out), "--overwrite", "--frames", "2")
    assert redo.exit_code == 0 and facts(out / "clip.mp4")["frames"] == 2


def test_video_options(nearest_cli, tmp_path):
    source = make_clip(tmp_path / "clip.mp4", Clip(frames=50))
    out = tmp_path / "out"
    result = _run(
        str(source), "-o", str(out), "--codec", "ffv1", "--pix-fmt", "rgb24",
        "--start", "0:01", "--duration", "0.2", "--suffix", "_x2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mp4 cannot hold ffv1" not in result.output  # mp4 takes ffv1 here
    made = out / "clip_x2.mp4"
    assert facts(made)["pix_fmt"] == "bgr0" and len(frame_times(made)) == 5
    mkv = _run(str(source), "-o", str(out), "--video-format", "mkv", "--frames", "2",
               "--codec", "libx265", "--crf", "30", "--preset", "fast")  # fmt: skip
    assert mkv.exit_code == 0, mkv.output
    assert facts(out / "clip.mkv")["frames"] == 2
    prores = _run(
        str(source), "-o", str(out), "--codec", "prores_ks", "--frames", "1", "--suffix", "_p"
    )
    assert prores.exit_code == 0 and "cannot hold prores_ks: written as .mkv" in prores.output


def test_encoder_options_and_threads(nearest_cli, tmp_path):
    source = make_clip(tmp_path / "clip.mp4", Clip(frames=3))
    out = tmp_path / "out"
    options = ["--encoder-option", "tune=film", "--encoder-option", "x264-params=aq-mode=3"]
    result = _run(str(source), "-o", str(out), *options, "--encoder-threads", "1")
    assert result.exit_code == 0, result.output
    assert "tune film" in result.output and "aq-mode=3" in result.output
    assert b"aq=3:" in (out / "clip.mp4").read_bytes()  # x264's own record of its settings
    assert b" threads=1 " in (out / "clip.mp4").read_bytes()
    bad = _run(str(source), "-o", str(tmp_path / "bad"), "--encoder-option", "nosuch=1")
    assert bad.exit_code != 0 and "libx264 has no option nosuch" in bad.output
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    usage = _run(str(source), "-o", str(out), "--encoder-option", "film")
    assert usage.exit_code == 2 and "expected KEY=VALUE" in usage.output
    zero = _run(str(source), "-o", str(out), "--encoder-threads", "0")
    assert zero.exit_code == 2


def test_progress_bar_counts_frames(nearest_cli, tmp_path):
    source = make_clip(tmp_path / "clip.mp4", Clip(frames=6))
    result = CliRunner().invoke(
        main, ["upscale", str(source), "-o", str(tmp_path / "out"), "--model", "x.onnx"]
    )
    assert result.exit_code == 0, result.output
    assert "clip.mp4: 100%" in result.output and "6/6" in result.output
    assert "frame/s" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codec", "libnothing"], "no encoder 'libnothing'"),
        (["--codec", "ffv1", "--crf", "10"], "--crf does not apply to ffv1"),
        (["--video-format", "webm"], "cannot hold libx264"),
        (["--pix-fmt", "rgb48le"], "cannot encode --pix-fmt rgb48le"),
        (["--start", "soon"], "expected seconds"),
        (["--frames", "0"], "0 is not in the range"),
    ],
)
def test_bad_video_options_are_usage_errors(nearest_cli, tmp_path, args, message):
    source = make_clip(tmp_path / "clip.mp4", Clip(frames=2))
    result = _run(str(source), "-o", str(tmp_path / "out"), *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out" / "clip.mp4").exists()


@pytest.mark.slow  # ~20 s when the checkpoint's ONNX export is not cached yet, 3 s when it is
def test_real_x2_model_end_to_end(x2_weights, tmp_path):
    pytest.importorskip("openvino")
    pytest.importorskip("torch")
    source = make_clip(tmp_path / "tiny.mp4", Clip(width=48, height=32, frames=3))
    out = tmp_path / "out"
    begin = time.perf_counter()
    result = CliRunner().invoke(
        main,
        ["upscale", str(source), "-o", str(out), "--weights", str(x2_weights), "--no-progress",
         "--codec", "ffv1", "--pix-fmt", "rgb24"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    made = facts(out / "tiny.mp4")
    assert made["size"] == (96, 64) and made["frames"] == 3
    assert frame_times(out / "tiny.mp4") == frame_times(source)
    assert packets(out / "tiny.mp4", "audio") == packets(source, "audio")
    assert "openvino" in result.output or "x2" in result.output
    assert time.perf_counter() - begin < 120


def test_a_fractional_scale_video_tiles_frames_through_the_overscale_graph(x2_weights, tmp_path):
    """x1.5 with a budget that forces tiles: every frame is finished window by window."""
    pytest.importorskip("openvino")
    pytest.importorskip("torch")
    source = make_clip(tmp_path / "tiny.mp4", Clip(width=120, height=80, frames=2))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["upscale", str(source), "-o", str(out), "--weights", str(x2_weights), "--no-progress",
         "--scale", "1.5", "--tile", "48", "--codec", "ffv1", "--pix-fmt", "rgb24"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "overscale" in result.output
    made = facts(out / "tiny.mp4")
    assert made["size"] == (180, 120) and made["frames"] == 2
