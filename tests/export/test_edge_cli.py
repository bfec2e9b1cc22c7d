"""`overnet export --format litert|executorch|coreml` refuses what it cannot honour
before converting anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from overnet.cli import main


@pytest.mark.parametrize(
    ("fmt", "extra", "message"),
    [
        ("litert", ["--fp32"], "--fp32 applies to --format coreml"),
        ("coreml", ["--fp32", "--fp16"], "--fp32 applies to --format coreml alone"),
        ("executorch", ["--tile", "0"], "needs a fixed tile"),
        ("litert", ["--tile", "64", "--static-shape", "64x48"], "not both"),
        ("executorch", ["--overscale"], "--overscale does not apply to --format executorch"),
        ("coreml", ["--opset", "19"], "--opset would be ignored"),
        ("litert", ["--ort", "npm"], "--ort would be ignored"),
        ("executorch", ["--tile", "4"], "between 8 and 2048"),
    ],
)
def test_options_the_format_cannot_honour_are_refused(tmp_path, fmt, extra, message):
    weights = tmp_path / "missing.pth"  # refused before the weights are read
    suffix = {"litert": ".tflite", "executorch": ".pte", "coreml": ".mlpackage"}[fmt]
    output = str(tmp_path / f"m{suffix}")
    args = ["export", "--weights", str(weights), "--format", fmt, "-o", output]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
