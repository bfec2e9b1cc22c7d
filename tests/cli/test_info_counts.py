"""`overnet info` counts parameters and multiply-adds without torch (an install with only
the runtime extras has none); the counts must equal those measured on the torch module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from overnet import info
from overnet.config import SUPPORTED_UPSCALES, OverNetConfig, default_scale_for


def _configs() -> list[OverNetConfig]:
    configs = []
    for upscale in SUPPORTED_UPSCALES:
        for scale in {default_scale_for(upscale), 1.5, min(2.5, upscale), upscale}:
            for channels in (16, 64):
                configs.append(OverNetConfig(upscale, scale, channels))
    return configs


@pytest.mark.parametrize(
    "config", _configs(), ids=lambda c: f"up{c.upscale}-x{c.scale:g}-f{c.channels}"
)
def test_counts_equal_the_torch_module(config):
    model = pytest.importorskip("overnet.model")
    assert info.count_parameters(config) == model.count_parameters(config)
    for height, width in ((24, 24), (7, 5), (1, 1)):
        measured = model.count_macs(config, height, width)
        counted = info.count_macs(config, height, width)
        assert counted == (measured.per_pixel_maps, measured.per_image), (height, width)


def test_info_runs_without_torch():
    """torch hidden as an install without it would be: the default architecture is shown;
    a checkpoint needs torch, and the error names the extra (one line, exit status 2)."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # import torch raises ImportError, as when absent
        from click.testing import CliRunner
        from overnet.cli import main
        shown = CliRunner().invoke(main, ["info", "--json"])
        refused = CliRunner().invoke(main, ["info", "model.pth"])
        print(shown.exit_code, refused.exit_code)
        print(shown.output)
        print(refused.output)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    codes, rest = done.stdout.split("\n", 1)
    assert codes == "0 2", done.stdout
    shown, refused = rest.rsplit("}\n", 1)
    data = json.loads(shown + "}")
    assert data["parameters"] == 923_358 and data["macs_per_input_pixel"] == 913_197
    assert round(data["macs_1280x720_output"] / 1e8) == 2104  # 210.4 G
    assert refused.strip().startswith("error: 'torch' is not installed")
    assert "pip install 'overnet[torch]'" in refused
