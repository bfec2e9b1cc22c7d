"""The runtime and its ONNX backends work where torch is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")


def test_runtime_runs_onnx_backends_with_torch_blocked(x2_onnx):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import overnet.runtime
        from overnet.runtime import open_session, backend_status
        from overnet.runtime.upscaler import Upscaler
        status = {{s.name: s for s in backend_status()}}
        assert not status["torch"].available, status["torch"]
        x = np.random.default_rng(0).random((1, 3, 20, 24), dtype=np.float32)
        outs = []
        for backend in ("openvino", "onnxruntime"):
            with open_session({str(x2_onnx)!r}, backend) as session:
                outs.append(session.run(x))
                img = (np.random.default_rng(1).random((30, 40, 4)) * 255).astype(np.uint8)
                assert Upscaler(session, tile=16, overlap=4).upscale(img).shape == (60, 80, 4)
        assert np.abs(outs[0] - outs[1]).max() < 1e-4
        try:
            open_session({str(x2_onnx)!r}, "torch")
        except Exception as exc:
            assert "overnet[torch]" in str(exc), exc
        else:
            raise AssertionError("torch backend opened without torch")
        print("ok", "torch" in sys.modules and sys.modules["torch"] is None)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "True"]


def _run_blocked(script: str, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "OVERNET_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env
    )


def test_checkpoint_on_openvino_without_torch(x2_weights, tmp_path, monkeypatch):
    """No cached export: a MissingDependencyError naming the extra, no traceback. Once the
    export is cached (made where torch is), the same call runs without torch."""
    script = f"""
        import sys
        sys.modules["torch"] = None
        from overnet.errors import MissingDependencyError
        from overnet.runtime import open_session
        try:
            session = open_session({str(x2_weights)!r}, "openvino")
        except MissingDependencyError as exc:
            print("missing:", exc)
        else:
            print("ran:", session.info.backend, session.info.scale, session.info.model)
        """
    first = _run_blocked(script, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("missing:"), first.stdout
    assert "pip install 'overnet[export]'" in first.stdout
    assert "overnet export --weights" in first.stdout
    assert "Traceback" not in first.stderr

    from overnet.runtime import open_session  # here torch is installed: makes the export

    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path))
    with open_session(x2_weights, "openvino") as session:
        assert session.info.model.startswith(str(tmp_path / "onnx"))
    second = _run_blocked(script, tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("ran: openvino 2.0"), second.stdout
