"""`overnet demo` (what `make demo` runs first) offline without weights, and with the
weights served from a local mirror."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main
from overnet.weights import pretrained

pytest.importorskip("torch")


def test_offline_without_weights_ends_well_and_says_what_to_run(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on: no network
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(pretrained.BASE_URL_ENV, f"http://127.0.0.1:{port}/")
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--shared", str(tmp_path / "none"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "parameters     923,358" in result.output  # what it can show without weights
    assert "Run `overnet weights fetch x2` when online" in result.output
    assert "not done: upscale, export and Set5 evaluation need weights" in result.output


def test_with_the_mirror_it_upscales_the_sample(mirror, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--shared", str(tmp_path / "none"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "done: upscaled the sample image" in result.output
    assert "done: exported and validated" in result.output
    assert "not done: Set5 evaluation" in result.output
    sample, upscaled = Image.open(out / "sample.png"), Image.open(out / "sample_x2.png")
    assert upscaled.size == (2 * sample.width, 2 * sample.height)
    assert (out / "overnet_x2.onnx").stat().st_size > 1_000_000
