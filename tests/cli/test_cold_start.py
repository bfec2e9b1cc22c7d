"""A checkpoint whose ONNX export is cached upscales without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

pytest.importorskip("openvino")


def test_upscale_with_a_cached_export_never_imports_torch(x2_weights, tmp_path, monkeypatch):
    from overnet.runtime import open_session

    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    with open_session(x2_weights, "openvino"):  # makes the cached export (torch is here)
        pass
    Image.new("RGB", (24, 16), (90, 120, 200)).save(tmp_path / "in.png")
    script = textwrap.dedent(
        f"""
        import sys
        from overnet.cli import main
        try:
            main(["upscale", {str(tmp_path / "in.png")!r}, "-o", {str(tmp_path / "out")!r},
                  "--weights", {str(x2_weights)!r}, "--no-progress"])
        except SystemExit as exc:
            assert not exc.code, exc.code
        print("torch imported:", "torch" in sys.modules)
        """
    )
    env = {**os.environ, "OVERNET_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "torch imported: False" in done.stdout
    assert Image.open(tmp_path / "out" / "in.png").size == (48, 32)
