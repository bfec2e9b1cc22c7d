"""precision="auto": the fastest native precision whose output stays within the stated
bound of fp32, else fp32; the choice and the reason are in Session.info."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.imaging import read_rgb8, rgb8_to_nchw
from overnet.runtime import open_session, precision
from overnet.runtime.precision import AUTO_BOUND_DB

pytest.importorskip("torch")
pytest.importorskip("openvino")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")


@pytest.fixture
def crops(set5) -> list[np.ndarray]:
    images = sorted((set5 / "LR_bicubic" / "X2").glob("*.png"))[:3]
    return [rgb8_to_nchw(read_rgb8(p)[0])[:, :, :48, :48].copy() for p in images]


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_auto_takes_bf16_on_a_bf16_cpu_within_the_bound(backend, bf16_cpu, x2_weights, crops):
    with (
        open_session(x2_weights, backend, precision="auto") as auto,
        open_session(x2_weights, backend, precision="fp32") as fp32,
    ):
        note = auto.info.notes[0]
        if auto.info.precision == "fp32":  # OpenVINO may still report no BF16 here
            assert "bf16 refused" in note, note
            return
        assert auto.info.precision == "bf16"
        assert note.startswith("precision auto: bf16 (this CPU has avx512_bf16")
        for crop in crops:
            assert _psnr(auto.run(crop), fp32.run(crop)) >= AUTO_BOUND_DB


def test_auto_is_fp32_without_native_bf16(plain_cpu, x2_weights):
    with open_session(x2_weights, "openvino", precision="auto") as session:
        assert session.info.precision == "fp32"
        assert "no faster native precision here" in session.info.notes[0]


def test_a_refused_precision_falls_back_to_fp32(bf16_cpu, x2_weights, monkeypatch):
    from overnet.runtime import openvino_backend

    monkeypatch.setitem(openvino_backend._CAPABILITY, "bf16", "NO_SUCH_CAPABILITY")
    with open_session(x2_weights, "openvino", precision="auto") as session:
        assert session.info.precision == "fp32"
        assert "bf16 refused: OpenVINO cannot run bf16" in session.info.notes[0]


def test_files_keep_their_own_precision(x2_onnx, bf16_cpu):
    with open_session(x2_onnx, "onnxruntime", precision="auto") as session:
        assert session.info.precision == "fp32"
        assert "an ONNX file runs in the precision it holds" in session.info.notes[0]


def test_this_machines_flags_are_read():
    from overnet.cpu import cpu_flags

    flags = cpu_flags()
    assert not flags or "fpu" in flags or "avx2" in flags or "sse2" in flags


def test_upscale_defaults_to_auto_and_says_what_it_chose(x2_weights, tmp_path, bf16_cpu):
    from click.testing import CliRunner
    from PIL import Image

    from overnet.cli import main

    Image.new("RGB", (20, 14), (10, 200, 90)).save(tmp_path / "in.png")
    args = ["upscale", str(tmp_path / "in.png"), "--weights", str(x2_weights), "--no-progress"]
    auto = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a"), "--backend", "torch"])
    assert auto.exit_code == 0, auto.output
    assert "precision auto: bf16 (this CPU has avx512_bf16" in auto.output
    exact = CliRunner().invoke(
        main, [*args, "-o", str(tmp_path / "b"), "--backend", "torch", "--precision", "fp32"]
    )
    assert exact.exit_code == 0 and "precision auto" not in exact.output
    assert "torch on CPU (fp32" in exact.output
