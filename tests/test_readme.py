"""Every command the README's quick start shows, run as a newcomer would (weights from a
local mirror, small generated inputs). TensorRT and serve need what this machine lacks
(a GPU, a long-lived service): their own tests run them and are named here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main
from tests.conftest import shared_file

README = Path(__file__).resolve().parents[1] / "README.md"
#: commands the quick start shows that run elsewhere, and the test that runs them
RUN_ELSEWHERE = {
    "export --format tensorrt": "tests/export/tensorrt/test_cli_tensorrt.py",
    "serve": "tests/serve/test_cli_serve.py",
}

pytest.importorskip("torch")
pytest.importorskip("openvino")


def quick_start_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("overnet "):
            commands.append(shlex.split(line)[1:])
    return commands


def _elsewhere(args: list[str]) -> str | None:
    joined = " ".join(args)
    return next((test for key, test in RUN_ELSEWHERE.items() if joined.startswith(key) or (
        key.startswith("export") and "--format tensorrt" in joined)), None)  # fmt: skip


def test_the_quick_start_lists_the_commands_a_newcomer_needs():
    names = {args[0] for args in quick_start_commands()}
    assert {"weights", "upscale", "export", "bench", "serve", "eval"} <= names


def test_commands_run_elsewhere_are_really_run_there():
    root = README.parent
    for args in quick_start_commands():
        test = _elsewhere(args)
        if test is not None:
            body = (root / test).read_text(encoding="utf-8")
            assert args[0] in body, (args, test)


def _inputs(folder: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(folder / "photo.png")
    (folder / "photos" / "sub").mkdir(parents=True)
    Image.fromarray((rng.random((20, 18, 3)) * 255).astype(np.uint8)).save(
        folder / "photos" / "a.jpg", quality=95
    )
    Image.fromarray((rng.random((16, 22, 4)) * 255).astype(np.uint8)).save(
        folder / "photos" / "sub" / "b.png"
    )
    av = pytest.importorskip("av")
    with av.open(str(folder / "clip.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(4):
            frame = np.full((24, 32, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.slow
def test_the_quick_start_runs(mirror, tmp_path, monkeypatch):
    shared = shared_file("data", "Set5").parents[1]  # skips with a reason when absent
    monkeypatch.chdir(tmp_path)
    _inputs(tmp_path)
    runner = CliRunner()
    ran = []
    for args in quick_start_commands():
        if _elsewhere(args) is not None:
            continue
        args = [a.replace("../shared", str(shared)) for a in args]
        if args[0] == "bench":  # the quick suite, kept quicker here: two backends, one run
            args += ["--backends", "openvino,torch", "--warmup", "0", "--iters", "1", "-q"]
        if args[0] == "eval":
            args += ["--no-progress"]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        ran.append(args[0])
    assert Image.open(tmp_path / "out" / "photo.png").size == (64, 48)
    assert Image.open(tmp_path / "out" / "sub" / "b.png").size == (44, 32)
    assert (tmp_path / "out" / "clip.mp4").stat().st_size > 0
    assert Image.open(tmp_path / "x1.5" / "photo.png").size == (48, 36)  # any scale
    assert (tmp_path / "x2.onnx").stat().st_size > 1_000_000
    assert ran.count("upscale") == 4 and {"weights", "export", "bench", "eval"} <= set(ran)
