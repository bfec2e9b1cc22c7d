"""`overnet upscale` and `overnet eval` without --model or --weights: the pretrained x2
(x3 for a --scale above 2), fetched once as `--weights x2` would be, said on the first line."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main
from overnet.cli.options import default_pretrained
from overnet.errors import MissingDependencyError, WeightsError
from overnet.weights import pretrained
from tests.conftest import shared_file


@pytest.mark.parametrize(
    ("scale", "name"),
    [(None, "x2"), (1.5, "x2"), (2, "x2"), (2.1, "x3"), (2.5, "x3"), (3, "x3"), (4, "x3")],
)
def test_the_default_follows_the_scale(scale, name):
    assert default_pretrained(scale) == name


@pytest.fixture
def asked(monkeypatch):
    """The names the command asks ``pretrained.resolve`` for; it stops there (exit 2)."""
    names = []

    def resolve(name, say=print):
        names.append(str(name))
        raise WeightsError("stopped by the test")

    monkeypatch.setattr(pretrained, "resolve", resolve)
    return names


def _image(folder):
    Image.new("RGB", (12, 10), (80, 120, 160)).save(folder / "in.png")
    return str(folder / "in.png")


@pytest.mark.parametrize(
    ("extra", "name", "said"),
    [
        ([], "x2", "using the pretrained x2 model (as --weights x2)"),
        (["--scale", "1.5"], "x2", "using the pretrained x2 model (as --weights x2)"),
        (
            ["--scale", "2.5"],
            "x3",
            "using the pretrained x3 model for --scale 2.5 (as --weights x3)",
        ),
    ],
)
def test_upscale_without_a_model_uses_the_pretrained_one(tmp_path, asked, extra, name, said):
    result = CliRunner().invoke(main, ["upscale", _image(tmp_path), "-o", str(tmp_path), *extra])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[0] == f"no --model or --weights given: {said}"
    assert asked == [name]


def test_an_explicit_pretrained_name_says_nothing_more(tmp_path, asked):
    result = CliRunner().invoke(
        main, ["upscale", _image(tmp_path), "-o", str(tmp_path), "--weights", "x3"]
    )
    assert result.exit_code == 2 and "no --model" not in result.output
    assert result.output.splitlines()[0] == "error: stopped by the test" and asked == ["x3"]


def test_model_and_weights_together_are_refused(tmp_path):
    result = CliRunner().invoke(
        main,
        ["upscale", _image(tmp_path), "-o", str(tmp_path), "--model", "a.onnx", "--weights", "x2"],
    )
    assert result.exit_code == 2
    assert result.output == (
        "error: give --model (exported file) or --weights (checkpoint), not both\n"
    )


@pytest.mark.parametrize(("extra", "name"), [([], "x2"), (["--scale", "3"], "x3")])
def test_eval_without_weights_uses_the_pretrained_one(tmp_path, asked, extra, name):
    result = CliRunner().invoke(main, ["eval", "--data", str(tmp_path), *extra])
    assert result.exit_code == 2, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"no --weights given: using the pretrained {name} model"), first
    assert asked == [name]


@pytest.mark.slow
def test_the_default_is_fetched_once_then_used_from_the_cache(mirror, tmp_path):
    """Through a mirror of the upstream files (torch converts them, once)."""
    pytest.importorskip("torch")
    pytest.importorskip("openvino")
    _root, handler = mirror
    source = _image(tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["upscale", source, "-o", str(tmp_path / "a"), "--no-progress"])
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0].startswith("no --model or --weights given: using the pretrained x2")
    assert lines[1] == "pretrained weights x2 are not cached yet: fetching them once"
    again = runner.invoke(main, ["upscale", source, "-o", str(tmp_path / "b"), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "not cached" not in again.output and len(handler.requests) == 1
    for out in ("a", "b"):
        assert Image.open(tmp_path / out / "in.png").size == (24, 20)


def test_without_torch_the_first_conversion_names_the_extra(tmp_path, monkeypatch):
    """An install with the runtime extras only: the download is kept, the conversion to
    the project's weights (once) needs the export extra, and the error says so."""
    source = shared_file("weights", "upstream-onnx", "OverNet_x2.onnx")
    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails, as when absent
    with pytest.raises(MissingDependencyError, match=r"pip install 'overnet\[export\]'"):
        pretrained.fetch("x2", source=source, say=lambda line: None)
    assert pretrained.onnx_path("x2").is_file() and not pretrained.weights_path("x2").exists()
