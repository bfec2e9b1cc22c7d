"""A killed or interrupted run leaves nothing under the output name (exit 130 on Ctrl-C),
and the next run clears the temp file a killed one left."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.video.clips import Clip, facts, make_clip

pytest.importorskip("av")

SCRIPT = Path(__file__).with_name("slow_cli.py")


def _default_sigint() -> None:
    # a runner started in a non-interactive shell's background job inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: give the child the
    # default disposition, as a terminal would, so that Ctrl-C reaches it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(clip: Path, out: Path, delay: float = 0.1, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            str(delay),
            str(clip),
            "-o",
            str(out),
            "--no-progress",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )


def _temps(out: Path) -> list[Path]:
    return sorted(out.glob(".clip.mkv.overnet-*")) if out.exists() else []


def _wait_for_temp(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 60
    while not _temps(out):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    time.sleep(0.5)  # a few frames into the video


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "clip.mkv", Clip(frames=100))  # 10 s+ at 0.1 s a frame


def test_sigkill_leaves_no_output_and_the_next_run_cleans_up(clip, tmp_path):
    out = tmp_path / "out"
    proc = _start(clip, out)
    _wait_for_temp(proc, out)
    proc.kill()
    proc.wait(timeout=30)
    assert not (out / "clip.mkv").exists()
    assert len(_temps(out)) == 1  # only a hidden temp, never the final name
    again = _start(clip, out, 0.0, "--frames", "3")
    text = again.communicate(timeout=120)[0]
    assert again.returncode == 0, text
    assert "removed 1 stale temp file" in text and not _temps(out)
    assert facts(out / "clip.mkv")["frames"] == 3


def test_ctrl_c_exits_130_and_leaves_nothing(clip, tmp_path):
    out = tmp_path / "out"
    proc = _start(clip, out)
    _wait_for_temp(proc, out)
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, text
    assert "interrupted" in text
    assert not (out / "clip.mkv").exists() and not _temps(out)
