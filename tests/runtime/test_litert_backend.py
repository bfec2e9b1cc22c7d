"""The litert backend in CI, where the LiteRT converter cannot be installed (the
`litert-export` extra conflicts with `serve`): a 16-channel x2 model with fresh weights
(data/fresh16_x2.safetensors, torch.manual_seed(0), OverNetConfig(3, 2, 16)) and its
.tflite at a 24x16 tile with overlap 4, written once in a venv with litert-torch by
``export_litert(weights, "data/fresh16_x2_24x16.tflite", tile=(16, 24), overlap=4)``
(its check: max abs 2.4e-7 against PyTorch). The interpreter must give PyTorch's output
for those weights, and the runtime must tile at the file's shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from overnet.errors import InputError, ModelLoadError

pytest.importorskip("ai_edge_litert", reason="needs the litert extra (ai-edge-litert)")

DATA = Path(__file__).parent / "data"
WEIGHTS = DATA / "fresh16_x2.safetensors"
TFLITE = DATA / "fresh16_x2_24x16.tflite"


@pytest.fixture(scope="module")
def graph():
    from overnet.model.graph import InferenceGraph
    from overnet.weights import load_model

    return InferenceGraph(load_model(WEIGHTS)).eval()


def test_the_interpreter_gives_pytorchs_output_for_the_same_weights(graph):
    import torch

    from overnet.runtime import open_session

    x = np.random.default_rng(1).random((1, 3, 16, 24), dtype=np.float32)
    with open_session(TFLITE) as session, torch.no_grad():
        assert session.info.backend == "litert"
        got = session.run(x)
        with pytest.raises(InputError, match="batch 2 is above"):
            session.run(np.concatenate([x, x]))  # one tile per run: Upscaler batches 1
        expected = graph(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 3, 32, 48)
    assert np.abs(got - expected).max() <= 1e-4


def test_metadata_and_tiling_follow_the_file():
    from overnet.runtime import open_session
    from overnet.runtime.litert_backend import read_litert_metadata
    from overnet.runtime.upscaler import Upscaler

    meta = read_litert_metadata(TFLITE.read_bytes(), TFLITE)
    assert meta.tile == (16, 24) and meta.overlap == 4 and meta.model.channels == 16
    assert meta.format == "litert" and meta.model.precision == "fp32"
    with open_session(TFLITE, "litert", threads=1) as session:
        assert session.info.min_hw == session.info.max_hw == (16, 24)
        assert session.info.threads == 1
        upscaler = Upscaler(session, overlap=4)
        plan = upscaler.plan(40, 50)
        assert (plan.tile_h, plan.tile_w) == (16, 24) and len(plan.tiles) == 9
        image = (np.random.default_rng(2).random((40, 50, 3)) * 255).astype(np.uint8)
        assert upscaler.upscale(image).shape == (80, 100, 3)
        assert upscaler.upscale(image[:10, :7]).shape == (20, 14, 3)  # padded to the tile


def test_files_that_are_not_overnets_are_refused(tmp_path):
    from overnet.runtime import open_session
    from overnet.runtime.litert_backend import read_litert_metadata

    with pytest.raises(InputError, match="exported for x2, not x3"):
        open_session(TFLITE, scale=3)
    not_tflite = tmp_path / "x.tflite"
    not_tflite.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a .tflite flatbuffer"):
        open_session(not_tflite)
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(TFLITE.read_bytes()))
    model.metadata = [m for m in model.metadata if m.name != b"overnet"]
    bare = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    with pytest.raises(ModelLoadError, match="no readable overnet metadata"):
        read_litert_metadata(bare, "bare.tflite")
