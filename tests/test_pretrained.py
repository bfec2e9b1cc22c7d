"""Pretrained weights by name, fetched from a local HTTP server on 127.0.0.1 (the base-URL
override), verified by sha256, converted and cached; failures keep nothing."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from overnet.weights import pretrained
from overnet.weights.pretrained import FetchError
from tests.conftest import shared_file

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_fetch_x2_matches_the_shared_checkpoint(mirror, x2_weights):
    _, handler = mirror
    said: list[str] = []
    path = pretrained.fetch("x2", say=said.append)
    assert path == pretrained.weights_path("x2") and path.suffix == ".safetensors"
    assert handler.requests == ["/ONNX/x2/OverNet.onnx"]
    assert any("sha256 verified" in line for line in said)
    from overnet.weights import load_model

    fetched, reference = load_model(path), load_model(x2_weights)
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 33, 27), dtype=np.float32))
    with torch.inference_mode():
        assert float((fetched(x) - reference(x)).abs().max()) <= 1e-5
    assert pretrained.fetch("x2") == path and len(handler.requests) == 1  # cached


def test_names_resolve_and_fetch_on_first_use(mirror):
    from overnet.runtime import open_session
    from overnet.weights import load_model

    model = load_model("X2")  # any spelling of the name
    assert model.config.scale == 2 and model.config.upscale == 3
    with open_session("overnet-x2", "torch") as session:
        assert session.info.scale == 2
    assert len(mirror[1].requests) == 1


def test_tampered_file_is_refused_and_nothing_is_kept(mirror, tmp_path):
    root, _ = mirror
    served = root / pretrained.PRETRAINED["x2"].remote_path
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF
    served.write_bytes(bytes(data))
    with pytest.raises(FetchError, match="sha256 .* expected a626a2d6.*nothing was kept"):
        pretrained.fetch("x2", say=lambda _: None)
    assert _leftovers(tmp_path / "cache") == []


def test_interrupted_download_leaves_no_cached_file(mirror, tmp_path):
    mirror[1].mode = "truncate"
    with pytest.raises(FetchError, match="(ended after|broke off after) .*bytes"):
        pretrained.fetch("x3", say=lambda _: None)
    assert _leftovers(tmp_path / "cache") == []
    mirror[1].mode = "ok"  # the next run starts over and succeeds
    assert pretrained.fetch("x3", say=lambda _: None).is_file()


def test_offline_error_names_the_command_url_and_place(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(pretrained.BASE_URL_ENV, f"http://127.0.0.1:{port}/")
    with pytest.raises(FetchError) as info:
        pretrained.fetch("x2", say=lambda _: None)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/ONNX/x2/OverNet.onnx" in message
    assert "overnet weights fetch x2 --from FILE" in message
    assert str(pretrained.onnx_path("x2")) in message
    assert _leftovers(tmp_path / "cache") == []


def test_manual_file_is_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    wrong = shared_file("weights", "upstream-onnx", "OverNet_x3.onnx")
    with pytest.raises(FetchError, match="expected a626"):
        pretrained.fetch("x2", source=wrong, say=lambda _: None)
    right = shared_file("weights", "upstream-onnx", "OverNet_x2.onnx")
    assert pretrained.fetch("x2", source=right, say=lambda _: None).is_file()


def test_unknown_name_is_not_a_pretrained_model():
    assert pretrained.canonical_name("x4") is None
    assert pretrained.resolve("no/such/file.pth") == Path("no/such/file.pth")


def test_names_resolve_without_torch(tmp_path):
    # overnet.weights loads torch only for its loaders: the runtime takes "x2" without it
    script = (
        "import sys\nsys.modules['torch'] = None\n"
        "from overnet.weights import pretrained\n"
        "from overnet.runtime.model_source import detect_source\n"
        "print(pretrained.canonical_name('x2'), detect_source(sys.argv[1]).kind)\n"
    )
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07")
    args = [sys.executable, "-c", script, str(model)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["x2", "onnx"]


def test_cli_fetch_list_and_offline(mirror, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from overnet.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["weights", "fetch", "x2"])
    assert done.exit_code == 0, done.output
    assert f"x2: {pretrained.weights_path('x2')}" in done.output
    listed = runner.invoke(main, ["weights", "list"])
    assert "x2: cached at" in listed.output and "x3: not cached" in listed.output
    # --weights x2 anywhere: the cached file, no second download
    info = runner.invoke(main, ["info", "x2"])
    assert info.exit_code == 0 and "upscale 3" in info.output
    assert len(mirror[1].requests) == 1
    monkeypatch.setenv(pretrained.BASE_URL_ENV, "http://127.0.0.1:9/")  # nothing listens
    offline = runner.invoke(main, ["weights", "fetch", "x3"])
    assert offline.exit_code == 2
    assert "error: could not download http://127.0.0.1:9/ONNX/x3/OverNet.onnx" in offline.output
    assert "Traceback" not in offline.output
