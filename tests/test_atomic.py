"""Atomic writes leave the old file or the new one, no temp files, and normal permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from overnet._atomic import (
    _host_tag,
    atomic_target,
    is_stale_temp,
    remove_stale_temps,
    replace_tree,
    write_bytes_atomic,
)


def test_finished_file_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "sub" / "out.bin", b"data")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["out.bin"]


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def _plant(path, age_s: float = 0.0):
    """Create ``path`` (a small file) last modified ``age_s`` seconds ago."""
    path.write_bytes(b"x")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_names_carry_the_writer_and_a_live_writers_temp_is_kept(tmp_path):
    target = tmp_path / "out.png"
    with atomic_target(target) as tmp:
        assert tmp.name.startswith(f".out.png.overnet-{os.getpid()}-")
        assert tmp.name.endswith(".part")
        tmp.write_bytes(b"half")
        assert not is_stale_temp(tmp)  # this process is still writing it
        assert remove_stale_temps(tmp_path) == []
        assert tmp.exists()
    assert target.read_bytes() == b"half"


def test_remove_stale_temps_removes_only_the_projects_orphans(tmp_path):
    host = _host_tag()
    other = f"{(int(host, 16) + 1) % 2**32:08x}"
    dead, alive = _dead_pid(), os.getppid()
    hour = 3600 + 60
    stale = [
        _plant(tmp_path / ".out.png.abc123xy.part", hour),  # older names: by age alone
        _plant(tmp_path / ".w.safetensors.k2j4h6g8.tmp", hour),
        _plant(tmp_path / ".overnet-write-test.ab_cd123", hour),
        _plant(tmp_path / f".out.png.overnet-{dead}-{host}-abcd_fgh.part"),  # writer gone
        _plant(tmp_path / f".a.png.overnet-{alive}-{host}-abcdefgh.part", hour),  # pid reused
        _plant(tmp_path / f".b.png.overnet-{dead}-{other}-abcdefgh.png", hour),
    ]
    kept = [
        _plant(tmp_path / "out.png"),
        _plant(tmp_path / "notes.part", hour),
        _plant(tmp_path / ".out.png.part.keep", hour),
        _plant(tmp_path / ".out.png.abc123.part", hour),  # not mkstemp's 8 characters
        _plant(tmp_path / ".out.png.abcdefgh.part.bak", hour),
        _plant(tmp_path / ".abcdefgh.part", hour),  # no NAME
        _plant(tmp_path / "out.png.abcdefgh.part", hour),  # not hidden
        _plant(tmp_path / ".new.png.abcdefgh.part"),  # an older overnet writing it now
        _plant(tmp_path / f".c.png.overnet-{alive}-{host}-abcdefgh.part"),  # live writer
        _plant(tmp_path / f".d.png.overnet-{dead}-{other}-abcdefgh.part"),  # other host
    ]
    folder = tmp_path / f".e.png.overnet-{dead}-{host}-abcdefgh.part"
    folder.mkdir()
    link = tmp_path / f".f.png.overnet-{dead}-{host}-abcdefgh.part"
    link.symlink_to(tmp_path / "out.png")

    removed = remove_stale_temps(tmp_path)

    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
    assert folder.is_dir() and link.is_symlink()
    assert remove_stale_temps(tmp_path / "missing") == []


def test_min_age_decides_for_temps_without_a_pid(tmp_path):
    temp = _plant(tmp_path / ".out.png.abcdefgh.part", 120)
    assert not is_stale_temp(temp)
    assert is_stale_temp(temp, min_age_s=60)
    assert remove_stale_temps(tmp_path, min_age_s=60) == [temp]


def _stale_pair(folder):
    """A stale temp (writer gone) and a user's file that looks a little like one."""
    folder.mkdir(parents=True, exist_ok=True)
    stale = _plant(folder / f".x.png.overnet-{_dead_pid()}-{_host_tag()}-abcdefgh.part")
    user = _plant(folder / ".x.png.part.keep", 7200)
    return stale, user


def test_eval_save_dir_is_cleaned_and_noted(tmp_path):
    import numpy as np
    from PIL import Image

    from overnet.eval import discover, evaluate

    Image.fromarray(np.full((24, 32, 3), 120, np.uint8)).save(tmp_path / "a.png")
    dataset = discover(tmp_path, 2)
    stale, user = _stale_pair(tmp_path / "saved" / dataset.name)
    result = evaluate(
        dataset, lambda x: x.repeat(2, axis=2).repeat(2, axis=3), save_dir=tmp_path / "saved"
    )
    assert not stale.exists() and user.exists()
    assert any("stale temp" in n and str(stale) in n for n in result.notes)
    assert (tmp_path / "saved" / dataset.name / "a_x2.png").exists()


def test_training_checkpoint_save_cleans_the_run_folder(tmp_path):
    import logging

    pytest.importorskip("torch")
    from overnet.train.checkpoint import save_checkpoint

    stale, user = _stale_pair(tmp_path / "run")
    logger = logging.getLogger("overnet.train.checkpoint")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        save_checkpoint({"step": 1}, tmp_path / "run" / "last.pth")
    finally:
        logger.removeHandler(handler)
    assert not stale.exists() and user.exists()
    assert any(str(stale) in r.getMessage() for r in records)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".x.png.part.keep", "last.pth"]


def test_tensorrt_export_cleans_its_folder(tmp_path, monkeypatch, x2_weights):
    import types

    import overnet.export.onnx_export as onnx_export
    from overnet.export.tensorrt import engine_export
    from tests.fakes.fixtures import install

    install(monkeypatch)
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: None)
    build = types.SimpleNamespace(timing_cache_reused=False, engine_bytes=1, seconds=0.1)
    monkeypatch.setattr(
        engine_export, "build_with_sidecar", lambda onnx, engine, *a, **k: (build, engine)
    )
    stale, user = _stale_pair(tmp_path / "engines")
    lines: list[str] = []
    engine_export.export_tensorrt(x2_weights, tmp_path / "engines", echo=lines.append)
    assert not stale.exists() and user.exists()
    assert any("stale temp" in line and str(stale) in line for line in lines)


def test_replace_tree_swaps_a_folder_and_removes_the_old(tmp_path):
    output = tmp_path / "site"
    output.mkdir()
    (output / "old.txt").write_text("old")
    staged = tmp_path / ".site.staging"
    staged.mkdir()
    (staged / "new.txt").write_text("new")
    assert replace_tree(staged, output) == output
    assert sorted(p.name for p in output.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing left aside


def test_replace_tree_keeps_the_old_when_the_move_fails(tmp_path):
    output = tmp_path / "model.mlpackage"
    output.mkdir()
    (output / "old.bin").write_text("old")
    missing = tmp_path / ".never-built"  # the rename of a staged folder that is not there
    with pytest.raises(FileNotFoundError):
        replace_tree(missing, output)
    assert (output / "old.bin").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.mlpackage"]


def test_replace_tree_moves_a_file_into_a_new_place(tmp_path):
    staged = tmp_path / ".out.staging"
    staged.write_text("x")
    replace_tree(staged, tmp_path / "out.tflite")
    assert (tmp_path / "out.tflite").read_text() == "x" and not staged.exists()
