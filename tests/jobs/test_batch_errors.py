"""upscale_files: errors say whether reading the input or writing the output failed, and a
rerun removes the temp files a killed run left in the output folders."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from overnet._atomic import _host_tag
from overnet.imaging.files import InputFile
from overnet.jobs import batch
from overnet.jobs.batch import upscale_files
from overnet.runtime.upscaler import Upscaler
from tests.runtime.doubles import NearestSession


def _image(path: Path) -> InputFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 5, 3), 90, np.uint8)).save(path)
    return InputFile(path, Path(path.name))


def _run(inputs, out_dir: Path):
    return upscale_files(inputs, out_dir, Upscaler(NearestSession()), progress=False)


def test_unreadable_input_is_a_read_error_naming_the_input(tmp_path):
    odd = tmp_path / "in" / "folder.png"  # a directory named like an image
    odd.mkdir(parents=True)
    report = _run([InputFile(odd, Path("folder.png"))], tmp_path / "out")
    (result,) = report.results
    assert result.status == "failed"
    assert str(odd) in result.error and "directory" in result.error, result.error
    assert "write" not in result.error


def test_failed_write_is_a_write_error_naming_the_output(tmp_path, monkeypatch):
    item = _image(tmp_path / "in" / "a.png")

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(batch, "write_bytes_atomic", disk_full)
    (result,) = _run([item], tmp_path / "out").results
    assert result.status == "failed"
    assert result.error.startswith(f"could not write the output {tmp_path / 'out' / 'a.png'}: ")
    assert "No space left on device" in result.error


def test_rerun_removes_stale_temps_and_reports_them(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    then = time.time() - 2 * 3600
    stale = [
        out / ".a.png.abc123xy.part",  # an older overnet's name: old enough
        out / "sub" / f".b.png.overnet-{child.pid}-{_host_tag()}-abcdefgh.part",  # writer gone
    ]
    users = [out / ".out.png.part.keep", out / "notes.part", out / ".out.png.abc123.part"]
    for path in stale + users:
        path.write_bytes(b"x")
        os.utime(path, (then, then))
    inputs = [_image(tmp_path / "in" / "a.png"), _image(tmp_path / "in" / "sub" / "b.png")]
    inputs[1] = InputFile(inputs[1].path, Path("sub") / "b.png")

    report = _run(inputs, out)

    assert report.ok and report.count("done") == 2
    assert sorted(report.removed_temps) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in users)
    assert "removed 2 stale temp files" in report.summary()
    assert str(stale[0]) in report.summary()
