"""Dataset layouts and bad input, with a cheap bicubic 'model' (no torch needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from overnet.errors import InputError
from overnet.eval import discover, evaluate
from overnet.eval.report import format_table, write_csv, write_json
from overnet.metrics import imresize


def bicubic_predictor(scale):
    def predict(x):
        img = x[0].transpose(1, 2, 0).astype(np.float64)
        return imresize(img, scale).transpose(2, 0, 1)[None].astype(np.float32)

    return predict


def _save(path, shape=(24, 32, 3), mode=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    img.save(path)
    return arr


def test_benchmark_layout_pairs_by_name(tmp_path):
    lr_dir = tmp_path / "Toy" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for i, name in enumerate(["a", "b"]):
        hr = _save(tmp_path / "Toy" / "HR" / f"{name}.png", seed=i)
        Image.fromarray(imresize(hr, 0.5)).save(lr_dir / f"{name}x2.png")
    ds = discover(tmp_path / "Toy", 2)
    assert ds.layout == "benchmark" and [s.name for s in ds.samples] == ["a", "b"]
    assert all(s.lr_path is not None for s in ds.samples)
    result = evaluate(ds, bicubic_predictor(2), progress=False)
    # The 'model' is the bicubic baseline itself.
    assert result.mean("psnr_y") == pytest.approx(result.mean("bicubic_psnr_y"), abs=0.05)


def test_div2k_and_upstream_layouts(tmp_path):
    hr = _save(tmp_path / "div" / "DIV2K_valid_HR" / "0801.png")
    lr_dir = tmp_path / "div" / "DIV2K_valid_LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    Image.fromarray(imresize(hr, 0.5)).save(lr_dir / "0801x2.png")
    ds = discover(tmp_path / "div", 2)
    assert ds.layout == "div2k" and ds.samples[0].lr_path == lr_dir / "0801x2.png"

    up = tmp_path / "up" / "x3"
    hr = _save(up / "img_001_SRF_3_HR.png", shape=(30, 33, 3))
    Image.fromarray(imresize(hr, 1 / 3)).save(up / "img_001_SRF_3_LR.png")
    _save(up / "img_002_SRF_3_HR.png")
    ds = discover(tmp_path / "up", 3)
    assert ds.layout == "upstream"
    assert ds.samples[0].error is None
    assert "no LR partner" in ds.samples[1].error and "img_002_SRF_3_HR.png" in ds.samples[1].error


def test_plain_folder_makes_lr_and_crops_hr(tmp_path):
    _save(tmp_path / "imgs" / "odd.png", shape=(25, 31, 3))
    (tmp_path / "imgs" / "README.txt").write_text("not an image")
    ds = discover(tmp_path / "imgs", 2)
    assert ds.layout == "folder" and ds.samples[0].lr_path is None
    assert any("non-image" in n for n in ds.notes)
    result = evaluate(ds, bicubic_predictor(2), progress=False)
    assert not result.failed and np.isfinite(result.images[0].psnr_y)


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(InputError, match="not found"):
        discover(tmp_path / "nope", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        discover(tmp_path / "empty", 2)


def test_bad_images_are_reported_and_the_rest_continue(tmp_path):
    root = tmp_path / "Bad"
    _save(root / "HR" / "good.png", seed=1)
    _save(root / "HR" / "gray.png", mode="L", seed=2)
    _save(root / "HR" / "rgba.png", mode="RGBA", seed=3)
    _save(root / "HR" / "tiny.png", shape=(4, 4, 3))
    good = (root / "HR" / "good.png").read_bytes()
    (root / "HR" / "corrupt.png").write_bytes(good[: len(good) // 2])
    (root / "HR" / "fake.png").write_bytes(b"this is text")
    lr_dir = root / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for name in ("good", "gray", "rgba", "tiny"):
        hr = np.asarray(Image.open(root / "HR" / f"{name}.png").convert("RGB"))
        Image.fromarray(imresize(hr, 0.5)).save(lr_dir / f"{name}x2.png")
    for name in ("corrupt", "fake"):
        _save(lr_dir / f"{name}x2.png", shape=(12, 16, 3))
    _save(lr_dir / "mismatchx2.png", shape=(5, 5, 3))
    _save(root / "HR" / "mismatch.png")

    result = evaluate(discover(root, 2), bicubic_predictor(2), progress=False)
    by_name = {r.name: r for r in result.images}
    assert by_name["good"].error is None
    assert by_name["gray"].error is None and "grayscale" in by_name["gray"].notes[0]
    assert by_name["rgba"].error is None and "alpha" in by_name["rgba"].notes[0]
    assert "too small" in by_name["tiny"].error
    assert "corrupt or truncated" in by_name["corrupt"].error
    assert "not an image" in by_name["fake"].error
    assert "does not match HR" in by_name["mismatch"].error
    assert len(result.failed) == 4
    table = format_table(result)
    assert "FAILED" in table and "4 image(s) failed" in table

    write_json([result], tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data[0]["failed"] == 4 and len(data[0]["images"]) == 7
    write_csv([result], tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().count("\n") == 8


def test_cli_eval_exits_non_zero_when_an_image_fails(x2_weights, tmp_path):
    from click.testing import CliRunner

    from overnet.cli import main

    root = tmp_path / "Mini"
    _save(root / "HR" / "ok.png", shape=(24, 24, 3))
    (root / "HR" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = CliRunner().invoke(
        main,
        [
            "eval",
            "--weights",
            str(x2_weights),
            "--data",
            str(root),
            "--no-progress",
            "--save-dir",
            str(tmp_path / "sr"),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert out.exit_code == 1, out.output
    assert "broken" in out.output and "FAILED" in out.output
    assert (tmp_path / "sr" / "Mini" / "ok_x2.png").exists()
    assert Image.open(tmp_path / "sr" / "Mini" / "ok_x2.png").size == (24, 24)
