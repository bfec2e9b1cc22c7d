"""The edge files the tests share, each converted once per session through the CLI
(conversions take 20-60 s each on 2 cores): x2 at a small fixed tile."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

#: (height, width) the shared files are converted at: small (quick), not square (the
#: tile's axes must not be swapped anywhere)
TILE = (40, 48)


def export_cli(weights: Path, fmt: str, output: Path, *extra: str) -> str:
    """`overnet export --format FMT --static-shape 48x40` (WxH); returns its output."""
    from overnet.cli import main

    args = ["export", "--weights", str(weights), "--format", fmt, "-o", str(output)]
    size = f"{TILE[1]}x{TILE[0]}"
    result = CliRunner().invoke(main, [*args, "--static-shape", size, *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def x2_pte(tmp_path_factory, x2_weights) -> tuple[Path, str]:
    """The x2 weights as an fp32 ExecuTorch program (path, the CLI's output)."""
    pytest.importorskip("executorch", reason="needs the executorch extra")
    path = tmp_path_factory.mktemp("edge") / "x2.pte"
    return path, export_cli(x2_weights, "executorch", path)


@pytest.fixture(scope="session")
def x2_tflite(tmp_path_factory, x2_weights) -> tuple[Path, str]:
    """The x2 weights as an fp32 LiteRT file (path, the CLI's output)."""
    pytest.importorskip(
        "litert_torch",
        reason="needs the litert-export extra (litert-torch), which is not in dev: its "
        "converter pins typing-extensions < 4.13 against the serve extra's pydantic",
    )
    path = tmp_path_factory.mktemp("edge") / "x2.tflite"
    return path, export_cli(x2_weights, "litert", path)


@pytest.fixture(scope="session")
def x2_mlpackage(tmp_path_factory, x2_weights) -> tuple[Path, str]:
    """The x2 weights as an fp16 Core ML package (path, the CLI's output)."""
    pytest.importorskip("coremltools", reason="needs the coreml extra")
    path = tmp_path_factory.mktemp("edge") / "x2.mlpackage"
    return path, export_cli(x2_weights, "coreml", path)
