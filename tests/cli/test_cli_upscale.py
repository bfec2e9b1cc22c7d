"""`overnet upscale`: batches, resume, and every bad input a clear error with nothing lost."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main

pytest.importorskip("openvino")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).save(folder / "a.png")
    rgba = Image.fromarray((rng.random((10, 9, 4)) * 255).astype(np.uint8), "RGBA")
    rgba.save(folder / "b.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW
    Image.fromarray((rng.random((8, 14, 3)) * 255).astype(np.uint8)).save(
        folder / "c.jpg", exif=exif, icc_profile=b"\0" * 16
    )
    Image.fromarray((rng.random((9, 9)) * 65535).astype(np.uint16)).save(folder / "d16.png")
    Image.new("RGB", (1, 1), (10, 20, 30)).save(folder / "tiny.png")
    return folder


def _run(*args: str):
    return CliRunner().invoke(main, ["upscale", "--no-progress", *args])


def test_folder_upscale_keeps_modes_and_metadata_then_resumes(images, x2_onnx, tmp_path):
    out = tmp_path / "out"
    before = {p.name: _digest(p) for p in images.iterdir()}
    result = _run(str(images), "-o", str(out), "--model", str(x2_onnx))
    assert result.exit_code == 0, result.output
    assert "5 upscaled, 0 skipped" in result.output
    with Image.open(out / "a.png") as a:
        assert a.size == (32, 24) and a.mode == "RGB"
    with Image.open(out / "b.png") as b:
        assert b.mode == "RGBA" and b.size == (18, 20)
    with Image.open(out / "c.jpg") as c:
        assert c.getexif()[0x0112] == 6 and c.info.get("icc_profile") == b"\0" * 16
    with Image.open(out / "d16.png") as d:
        assert d.mode.startswith("I") and np.asarray(d).max() > 255  # still 16-bit
    with Image.open(out / "tiny.png") as t:
        assert t.size == (2, 2)
    assert {p.name: _digest(p) for p in images.iterdir()} == before  # inputs untouched
    assert not list(out.glob(".*.part"))  # no temp files left
    again = _run(str(images), "-o", str(out), "--model", str(x2_onnx))
    assert again.exit_code == 0 and "0 upscaled, 5 skipped" in again.output
    redo = _run(str(images / "a.png"), "-o", str(out), "--model", str(x2_onnx), "--overwrite")
    assert redo.exit_code == 0 and "1 upscaled" in redo.output


def test_bad_files_are_reported_and_the_rest_continue(images, x2_onnx, tmp_path):
    (images / "zero.png").touch()
    good = (images / "a.png").read_bytes()
    (images / "truncated.png").write_bytes(good[: len(good) // 2])
    (images / "notes.png").write_text("this is not an image")
    Image.new("CMYK", (6, 6)).save(images / "cmyk.jpg")
    Image.new("1", (20000, 10000)).save(images / "bomb.png")  # 200 MP, a tiny file
    out = tmp_path / "out"
    result = _run(str(images), "-o", str(out), "--model", str(x2_onnx), "--format", "png")
    assert result.exit_code == 1
    text = result.output
    assert "5 upscaled" in text and "5 failed" in text
    assert "empty (0 bytes)" in text
    assert "corrupt or truncated" in text
    assert "not an image Pillow can read" in text
    assert "CMYK" in text
    assert "decompression bombs" in text and "--max-pixels" in text
    assert not (out / "zero.png").exists() and (out / "a.png").exists()


def test_alpha_to_jpeg_is_refused_not_dropped(images, x2_onnx, tmp_path):
    result = _run(
        str(images / "b.png"), "-o", str(tmp_path / "o"), "--model", str(x2_onnx), "--format", "jpg"
    )
    assert result.exit_code == 1 and "JPEG cannot store the alpha channel" in result.output


def test_output_over_input_is_refused(images, x2_onnx):
    before = _digest(images / "a.png")
    result = _run(str(images / "a.png"), "-o", str(images), "--model", str(x2_onnx))
    assert result.exit_code == 1 and "would overwrite an input" in result.output
    assert _digest(images / "a.png") == before
    with_suffix = _run(
        str(images / "a.png"), "-o", str(images), "--model", str(x2_onnx), "--suffix", "_x2"
    )
    assert with_suffix.exit_code == 0 and (images / "a_x2.png").exists()


def test_unwritable_output_dir_fails_before_any_work(images, x2_onnx, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run(str(images), "-o", str(blocker / "sub"), "--model", str(x2_onnx))
    assert result.exit_code == 2 and "cannot write to the output folder" in result.output


def test_wrong_model_for_backend_and_missing_inputs(images, x2_onnx, tmp_path):
    result = _run(
        str(images), "-o", str(tmp_path / "o"), "--model", str(x2_onnx), "--backend", "torch"
    )
    assert result.exit_code == 2 and "ONNX model" in result.output
    result = _run(
        str(tmp_path / "nothing*.png"), "-o", str(tmp_path / "o"), "--model", str(x2_onnx)
    )
    assert result.exit_code == 2 and "matches no image files" in result.output
    result = _run(str(images), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--model" in result.output


def test_rerun_with_output_inside_the_input_folder_skips_its_own_outputs(images, x2_onnx):
    out = images / "up"
    args = [str(images), "-o", str(out), "--model", str(x2_onnx), "--recursive"]
    first = _run(*args)
    assert first.exit_code == 0 and "5 upscaled" in first.output, first.output
    again = _run(*args)
    assert again.exit_code == 0 and "0 upscaled, 5 skipped" in again.output, again.output
    assert not (out / "up").exists()
