"""What every `overnet` command shares: one size syntax, one memory syntax, one meaning of
--scale, --tile 0 for the whole image, backend names from the runtime, errors in one place."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from overnet.cli import main
from overnet.cli.errors import OverNetGroup
from overnet.cli.options import MEMORY, SCALE, SCALES, SIZE, SIZES
from overnet.errors import InputError

COMMANDS = sorted(main.commands)
#: the least each command needs to reach its body
MINIMAL_ARGS = {
    "bench": [],
    "check": ["{model}"],
    "demo": [],
    "eval": ["--weights", "w.pth", "--data", "d"],
    "export": ["--weights", "w.pth", "-o", "x.onnx"],
    "info": [],
    "serve": ["{model}"],
    "train": ["--data", "d"],
    "upscale": ["in.png", "-o", "out"],
    "weights": ["list"],
}


def _help(command: str) -> str:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    return re.sub(r"-\s+", "-", " ".join(result.output.split()))  # undo click's wrapping


def test_every_command_is_covered():
    assert set(COMMANDS) == set(MINIMAL_ARGS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_the_one_size_and_memory_syntax(command):
    text = _help(command)
    assert not re.search(r"\bHxW\b", text), "image sizes are WIDTHxHEIGHT"
    assert "(MiB)" not in text and not re.search(r"\b4G\b", text), "memory needs a unit"
    for param in main.commands[command].params:
        if param.type in (SIZE, SIZES):
            assert f"{param.opts[0]} WIDTHxHEIGHT" in text
            assert "320x180 is 320 wide, 180 high" in text
        if param.type is MEMORY:
            assert f"{param.opts[0]} MEMORY" in text
            assert "800MB, 1.5GB (powers of 1000) or 512MiB, 4GiB (powers of 1024)" in text
        if param.name == "scale":
            assert param.type is SCALE, f"{command} --scale is the target scale, a float"
        if param.name == "scales":
            assert param.type is SCALES


@pytest.mark.parametrize("command", COMMANDS)
def test_size_and_memory_options_use_the_shared_types(command):
    for param in main.commands[command].params:
        name = param.name or ""
        if name in ("static_shape", "sizes"):
            assert param.type in (SIZE, SIZES), name
        # an amount of memory (not a time such as serve's --memory-wait) takes MEMORY
        if ("memory" in name and not name.endswith("_wait")) or name == "workspace":
            assert param.type is MEMORY, name


def test_tensorrt_profile_shapes_say_their_order():
    text = _help("export")
    for option in ("--min", "--opt", "--max"):
        assert f"{option} NxCxHxW" in text
    assert "NxCxHxW (batch x 3 x height x width: TensorRT's and trtexec's order)" in text


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["upscale", "a.png", "-o", "out", "--max-memory", "4096"], "--max-memory"),
        (["export", "--weights", "w", "-o", "e", "--format", "tensorrt", "--workspace", "4096"],
         "--workspace"),
    ],
)  # fmt: skip
def test_a_bare_number_for_memory_is_refused(args, option, tmp_path):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output
    assert "a bare number is ambiguous, got '4096'" in result.output
    assert "1.5GB, 800MB or 4GiB (KB/MB/GB/TB = 1000^n bytes, KiB/MiB/GiB/TiB" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_an_overnet_error_in_any_command_is_one_line_and_exit_2(command, monkeypatch, tmp_path):
    def fail(**_kwargs):
        raise InputError(f"{command} cannot do that")

    monkeypatch.setattr(main.commands[command], "callback", fail)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    args = [a.format(model=model) for a in MINIMAL_ARGS[command]]
    result = CliRunner().invoke(main, [command, *args])
    assert result.exit_code == 2, result.output
    assert result.output == f"error: {command} cannot do that\n"
    assert "Traceback" not in result.output


def test_errors_go_through_the_group():
    assert isinstance(main, OverNetGroup)
    result = CliRunner().invoke(main, ["info", "no-such-file.pth"])
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert "no-such-file.pth" in result.output


def test_other_exceptions_keep_their_traceback(monkeypatch):
    def fail(**_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(main.commands["info"], "callback", fail)
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--weights", "w", "--data", "d", "--scale", "2.5"], "must be an integer"),
        (["train", "--data", "d", "--scale", "2.5"], "must be an integer"),
        (["train", "--data", "d", "--scales", "2,2.5"], "must be an integer"),
        (["bench", "--scale", "2", "--scales", "2,3"], "give --scale or --scales, not both"),
        (["info", "--scale", "two"], "expected a scale factor such as 2 or 2.5"),
        (["upscale", "a.png", "-o", "o", "--scale", "-2"], "must be positive"),
        (["export", "--weights", "w", "-o", "e.onnx", "--static-shape", "320"], "WIDTHxHEIGHT"),
        (["bench", "--sizes", "160x90,0x10"], "at least 1 pixel"),
        (["upscale", "a.png", "-o", "o", "--tile", "-1"], "--tile"),
    ],
)
def test_scale_size_and_tile_values_are_checked_before_any_work(args, message, tmp_path):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("command", ["upscale", "eval", "bench"])
def test_backend_help_lists_every_variant(command):
    from overnet.runtime import BACKENDS, VARIANTS

    text = _help(command)
    for name in (*BACKENDS, *VARIANTS):
        assert re.search(rf"[\s,(]{re.escape(name)}[,;.)\s]", text), name
    if command == "bench":  # the row of what `overnet upscale` opens by default
        assert "'auto': the backend and precision" in text


def test_defaults_come_from_the_library():
    from overnet.bench.suite import DEFAULT_BACKENDS, DEFAULT_SIZES
    from overnet.export import DEFAULT_OPSET
    from overnet.formats.profile import DEFAULT_MAX, DEFAULT_MIN, DEFAULT_OPT
    from overnet.runtime.upscaler import DEFAULT_MAX_MEMORY, DEFAULT_OVERLAP

    upscale = _help("upscale")
    assert f"[default: {DEFAULT_MAX_MEMORY}]" in upscale
    assert f"[default: {DEFAULT_OVERLAP}; x>=0]" in upscale
    export = _help("export")
    assert f"[default: {DEFAULT_OPSET}]" in export
    for shape in (DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX):
        assert f"[default: {shape}]" in export
    bench = _help("bench")
    w, h = DEFAULT_SIZES[0]
    assert f"[default: {w}x{h}]" in bench
    assert f"[default: {','.join(DEFAULT_BACKENDS)}]" in bench
    assert "[default: in-process]" in bench


def test_train_defaults_are_train_configs():
    pytest.importorskip("torch")
    from overnet.train import TrainConfig

    text = _help("train")
    config = TrainConfig()
    for option, value in (("--patch", config.patch), ("--steps", config.steps)):
        assert re.search(rf"{option} INTEGER .*?\[default: {value}\]", text), option


def test_static_shape_is_width_by_height(tmp_path, x2_weights):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("torch")
    out = tmp_path / "s.onnx"
    args = ["export", "--weights", str(x2_weights), "-o", str(out), "--no-validate"]
    result = CliRunner().invoke(main, [*args, "--static-shape", "30x20", "--static-batch"])
    assert result.exit_code == 0, result.output
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 20, 30]  # N, C, height 20, width 30


def test_tile_0_upscales_the_whole_image(tmp_path, x2_weights):
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    src = tmp_path / "in.png"
    Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(src)
    out = tmp_path / "out"
    args = ["upscale", str(src), "-o", str(out), "--weights", str(x2_weights), "--tile", "0"]
    result = CliRunner().invoke(main, [*args, "--backend", "torch", "--no-progress"])
    assert result.exit_code == 0, result.output
    with Image.open(out / "in.png") as img:
        assert img.size == (96, 80)


def test_eval_tile_0_is_the_whole_image(tmp_path, x2_weights):
    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    (tmp_path / "Mini").mkdir()
    Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(tmp_path / "Mini/a.png")
    args = ["eval", "--weights", str(x2_weights), "--data", str(tmp_path / "Mini")]
    whole = CliRunner().invoke(main, [*args, "--tile", "0", "--no-progress"])
    default = CliRunner().invoke(main, [*args, "--no-progress"])
    assert whole.exit_code == 0 and default.exit_code == 0, whole.output + default.output

    def scores(output: str) -> list[str]:  # PSNR-Y, SSIM-Y, PSNR-RGB (not the time column)
        line = next(row for row in output.splitlines() if row.startswith("mean (1 images)"))
        return line.split()[3:6]

    assert scores(whole.output) == scores(default.output)


def test_the_cli_starts_without_numpy_or_torch():
    code = (
        "import sys, overnet.cli; "
        "print(sorted(m for m in ('numpy', 'torch', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "overnet.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "overnet" in result.stdout, result.stderr


def test_entry_point_is_the_group():
    from importlib.metadata import entry_points

    (point,) = [e for e in entry_points(group="console_scripts") if e.name == "overnet"]
    assert point.value == "overnet.cli:main"
    assert isinstance(point.load(), click.Group)
