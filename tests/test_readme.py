"""The README's install lines and every command its quick start shows, run as a newcomer
would: from a fresh clone (the repository's files, nothing built), in a new virtual
environment, with the `overnet` that install put on PATH (weights from a local mirror,
small generated inputs). TensorRT and serve need what this machine lacks (a GPU, a
long-lived service): their own tests run them and are named here. The wheel the install
section builds is checked by .ci/wheel_check.sh (a fresh venv without torch)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_file

README = Path(__file__).resolve().parents[1] / "README.md"
#: commands the quick start shows that run elsewhere, and the test that runs them
RUN_ELSEWHERE = {
    "export --format tensorrt": "tests/export/tensorrt/test_cli_tensorrt.py",
    "serve": "tests/serve/test_cli_serve.py",
}

pytest.importorskip("torch")
pytest.importorskip("openvino")


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def bash_blocks(title: str) -> list[list[str]]:
    """The lines of each ```bash block of the section, comments and blank lines dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", section(title), re.S)
    lines = ([line.split("#", 1)[0].strip() for line in block.splitlines()] for block in blocks)
    return [[line for line in block if line] for block in lines]


def quick_start_commands() -> list[list[str]]:
    return [
        shlex.split(line)[1:]
        for line in bash_blocks("Quick start")[0]
        if line.startswith("overnet ")
    ]


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


def test_the_install_section_is_honest_about_pypi_and_names_every_extra():
    tomllib = pytest.importorskip("tomllib")
    text = section("Install")
    clone, wheel = bash_blocks("Install")
    assert "not on PyPI yet" in text and "Once the project is published" in text
    assert any(line.startswith("pip install -e '.[") for line in clone)
    project = tomllib.loads((README.parent / "pyproject.toml").read_text("utf-8"))["project"]
    built = f"dist/overnet-{project['version']}-py3-none-any.whl"
    assert wheel[0] == "python -m build" and built in wheel[1], wheel
    extras = set(project["optional-dependencies"])
    named = set(re.findall(r"`([a-z0-9-]+)`", " ".join(re.findall(r"^\| ([^|]+)\|", text, re.M))))
    assert named == extras, named ^ extras
    for line in clone + wheel:
        for spec in re.findall(r"\[([a-z0-9,-]+)\]", line):
            assert set(spec.split(",")) <= extras, line


def _fresh_clone(tmp_path: Path) -> Path:
    """The repository's files (tracked and new, not ignored: what a commit of the working
    tree holds) copied into tmp_path/overnet, ../shared beside it as in CI."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=README.parent, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        pytest.skip(f"needs the git checkout of the project: {listed.stderr.decode().strip()}")
    clone = tmp_path / "overnet"
    for name in listed.stdout.decode().split("\0"):
        source = README.parent / name
        if name and source.is_file():  # a deleted file is still listed until committed
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    (tmp_path / "shared").symlink_to(shared_file("weights").parent.resolve())
    return clone


def _install(clone: Path) -> tuple[dict[str, str], str]:
    """Runs the README's install lines in ``clone``; returns the environment the
    activated venv gives (PATH first) and what the lines printed.

    pip resolves and installs the extras as written; the packages they pull are taken
    from this test's own environment (a .pth line in the new venv) instead of downloaded
    again: PyTorch alone is hundreds of MB. The wheel check in .ci/run installs from the
    package index into a venv that has nothing."""
    script = ["set -e"]
    for line in bash_blocks("Install")[0]:
        script.append(line)
        venv = re.search(r"-m venv (\S+)", line)
        if venv:
            purelib = f"$({venv.group(1)}/bin/python -c {shlex.quote(PURELIB)})"
            script.append(f"echo {shlex.quote(sysconfig.get_paths()['purelib'])} > "
                          f'"{purelib}/_overnet_readme_test.pth"')  # fmt: skip
    script.append('echo "VENV=$VIRTUAL_ENV"')
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "PIP_NO_INPUT": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=clone, env=env, capture_output=True, text=True
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert "does not provide the extra" not in printed, printed
    venv_dir = Path(re.search(r"^VENV=(.+)$", done.stdout, re.M).group(1))
    assert venv_dir.is_relative_to(clone), venv_dir
    env = {**env, "VIRTUAL_ENV": str(venv_dir), "PATH": f"{venv_dir / 'bin'}{os.pathsep}{path}"}
    return env, printed


PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


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
def test_the_install_and_quick_start_run_from_a_fresh_clone(mirror, tmp_path):
    shared_file("data", "Set5")  # skips with a reason when ../shared is absent
    clone = _fresh_clone(tmp_path)
    env, _ = _install(clone)
    (tmp_path / "elsewhere").mkdir()  # not the clone's folder, nor the one holding it
    where = subprocess.run(
        ["python", "-c", "import overnet; print(overnet.__file__)"],
        cwd=tmp_path / "elsewhere", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(clone), where  # the clone's code runs
    _inputs(clone)
    ran = []
    for args in quick_start_commands():
        if _elsewhere(args) is not None:
            continue
        if args[0] == "bench":  # the quick suite, kept quicker here: two backends, one run
            args = [*args, "--backends", "openvino,torch", "--warmup", "0", "--iters", "1", "-q"]
        if args[0] in ("eval", "upscale"):
            args = [*args, "--no-progress"]
        done = subprocess.run(
            ["overnet", *args], cwd=clone, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        if args[0] == "upscale" and "--model" not in args and "--weights" not in args:
            first = done.stderr.splitlines()[0]
            assert first.startswith("no --model or --weights given: using the pretrained x2"), first
        ran.append(args[0])
    assert Image.open(clone / "out" / "photo.png").size == (64, 48)
    assert Image.open(clone / "out" / "sub" / "b.png").size == (44, 32)
    assert (clone / "out" / "clip.mp4").stat().st_size > 0
    assert Image.open(clone / "x1.5" / "photo.png").size == (48, 36)  # any scale
    assert (clone / "x2.onnx").stat().st_size > 1_000_000
    assert ran.count("upscale") == 4 and {"weights", "export", "bench", "eval"} <= set(ran)
