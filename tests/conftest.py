"""Shared fixtures: the ../shared folder (upstream weights, Set5), skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Ray re-initialises itself when a Ray API is touched after ray.shutdown() (Ray Data's
# background threads do): one test module's Ray must not leak into the next module's checks.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OVERNET_SHARED", ROOT.parent / "shared"))


def shared_file(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared folder is absent)")
    return path


@pytest.fixture(scope="session")
def x2_weights() -> Path:
    return shared_file("weights", "OverNet_x2.pth.tar")


@pytest.fixture(scope="session")
def x3_weights() -> Path:
    return shared_file("weights", "OverNet_x3.pth.tar")


@pytest.fixture(scope="session")
def set5() -> Path:
    return shared_file("data", "Set5")


def read_rgb(path: Path) -> np.ndarray:
    """HWC uint8 RGB."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def to_nchw(rgb: np.ndarray) -> np.ndarray:
    """HWC uint8 -> 1x3xHxW float32 in [0, 1]."""
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


@pytest.fixture(scope="session")
def x2_onnx(tmp_path_factory, x2_weights) -> Path:
    """The shared x2 weights exported once (fp32, dynamic shapes) for runtime tests."""
    from overnet.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "x2.onnx"
    return export_onnx(x2_weights, path, validate=False).path


from tests.fakes.weights_mirror import mirror  # noqa: E402, F401  (a shared fixture)
