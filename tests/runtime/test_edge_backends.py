"""The litert and executorch backends on files `overnet export` wrote: metadata read
from inside the file, a fixed tile that Upscaler tiles at, the same pixels as PyTorch
with the same tile plan, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from overnet.errors import InputError, ModelLoadError
from overnet.runtime import open_session
from overnet.runtime.upscaler import Upscaler
from tests.conftest import read_rgb
from tests.edge_files import TILE, x2_pte, x2_tflite  # noqa: F401  (session fixtures)

FORMATS = ["executorch", "litert"]

#: each file is converted once per session (20-60 s of CPU on 2 cores)
pytestmark = pytest.mark.slow


@pytest.fixture(params=FORMATS)
def edge_file(request):
    """(backend name, path, the export's CLI output) for each edge format."""
    name = request.param
    path, output = request.getfixturevalue("x2_pte" if name == "executorch" else "x2_tflite")
    return name, path, output


@pytest.fixture(scope="module")
def torch_session(x2_weights):
    with open_session(x2_weights, "torch") as session:
        yield session


def test_the_export_was_checked_and_the_file_carries_its_metadata(edge_file):
    name, path, output = edge_file
    assert f"({name}, fp32, x2, tile {TILE[1]}x{TILE[0]} (WxH)" in output
    assert "random: max abs" in output and "pattern: max abs" in output
    with open_session(path) as session:  # auto picks the one backend that loads it
        info = session.info
        assert info.backend == name and info.scale == 2 and info.upscale == 3
        assert info.precision == "fp32"
        assert info.min_hw == info.max_hw == TILE and info.max_batch == 1
        meta = info.metadata
        assert meta["overnet.format"] == name and meta["overnet.overlap"] == "16"
        assert (meta["overnet.tile_height"], meta["overnet.tile_width"]) == ("40", "48")
        from overnet._version import __version__

        assert meta["overnet.overnet_version"] == __version__


def test_upscaler_tiles_at_the_files_shape_with_the_same_pixels_as_pytorch(
    edge_file, torch_session, set5
):
    _, path, _ = edge_file
    image = read_rgb(set5 / "LR_bicubic" / "X2" / "birdx2.png")[:56, :80]
    with open_session(path) as session:
        upscaler = Upscaler(session)
        plan = upscaler.plan(56, 80)
        assert (plan.tile_h, plan.tile_w) == TILE and plan.tiled
        ours = upscaler.upscale(image)
        # the same plan, padding and blending with PyTorch running each tile
        reference = upscaler.upscale_with(image, torch_session.run)
        assert ours.shape == (112, 160, 3)
        assert np.abs(ours.astype(int) - reference).max() <= 1
        small = image[:20, :30]  # below the tile on both axes: padded to it
        assert upscaler.upscale(small).shape == (40, 60, 3)


def test_what_the_file_cannot_do_is_refused(edge_file, tmp_path):
    name, path, _ = edge_file
    with pytest.raises(InputError, match="exported for x2, not x3"):
        open_session(path, name, scale=3)
    with pytest.raises(InputError, match="fp32 weights"):
        open_session(path, name, precision="fp16")
    with open_session(path, name) as session, pytest.raises(InputError, match="outside the"):
        session.run(np.zeros((1, 3, TILE[0] + 1, TILE[1]), np.float32))
    broken = tmp_path / path.name
    broken.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(ModelLoadError):
        open_session(broken, name)


def test_overnet_upscale_runs_the_file_at_its_tile(edge_file, set5, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from overnet.cli import main

    name, path, _ = edge_file
    image = tmp_path / "bird.png"
    Image.fromarray(read_rgb(set5 / "LR_bicubic" / "X2" / "birdx2.png")[:56, :80]).save(image)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["upscale", str(image), "-o", str(out), "--model", str(path)])
    assert result.exit_code == 0, result.output
    assert f"with {name} on CPU (fp32" in result.output
    # the file's fixed shape decides the tiles, not --max-memory: no advice about it
    assert "to fit --max-memory" not in result.output
    with Image.open(out / "bird.png") as sr:
        assert sr.size == (160, 112)
