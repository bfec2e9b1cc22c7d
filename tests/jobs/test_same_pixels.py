"""Same pixels on every path: an image upscaled by `overnet upscale`'s batch, as a video
frame, by the Ray actor and by the service's request path is the same, byte for byte,
for several sizes (whole and tiled) at integer and fractional scales, whatever else
shares the service's batches."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from overnet.imaging.files import InputFile
from overnet.jobs.batch import upscale_files
from overnet.runtime import Upscaler, open_session

pytest.importorskip("openvino")

#: (width, height): whole at the budget below, and one that the budget tiles
SIZES = [(53, 37), (97, 130), (220, 300)]
MAX_MEMORY = "400MB"


def _photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.random((height // 8 + 2, width // 8 + 2, 3)) * 255
    smooth = np.asarray(
        Image.fromarray(base.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    )
    grain = rng.integers(-12, 13, smooth.shape)
    return Image.fromarray(np.clip(smooth.astype(int) + grain, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module", params=[2.0, 1.5], ids=["x2", "x1.5"])
def model(request, x2_weights, x2_onnx):
    """(model path, scale, session): x2 from the ONNX file, x1.5 overscaled from weights."""
    source = x2_onnx if request.param == 2.0 else x2_weights
    with open_session(
        source, "openvino", precision="fp32", scale=request.param, threads=2
    ) as session:
        yield source, request.param, session


@pytest.fixture(scope="module")
def local(model, tmp_path_factory):
    """Each sample through `upscale_files` (the local command's path): name -> bytes."""
    _, _, session = model
    folder = tmp_path_factory.mktemp("in")
    inputs = []
    for i, (w, h) in enumerate(SIZES):
        path = folder / f"img{i}.png"
        _photo(w, h, i).save(path)
        inputs.append(InputFile(path, Path(path.name)))
    out = tmp_path_factory.mktemp("out")
    upscaler = Upscaler(session, max_memory=MAX_MEMORY)
    report = upscale_files(inputs, out, upscaler, progress=False)
    assert report.ok, report.summary()
    tiled = [len(upscaler.plan(h, w).tiles) > 1 for w, h in SIZES]
    assert tiled == [False, False, True]
    assert "1 image(s) ran in tiles to fit --max-memory 0.4 GB" in report.summary()
    return {item.path.name: ((out / item.path.name).read_bytes(), item.path) for item in inputs}


def test_video_frames_equal_the_local_command(model, local):
    from overnet.video.frames import upscale_frames

    _, _, session = model
    upscaler = Upscaler(session, max_memory=MAX_MEMORY)
    for data, path in local.values():
        frame = np.asarray(Image.open(path).convert("RGB"))
        (made,) = upscale_frames([frame], upscaler)
        assert np.array_equal(made, np.asarray(Image.open(io.BytesIO(data)))), path.name


def test_the_ray_actor_writes_the_local_commands_bytes(model, local):
    from overnet.scaleout.actor import JobSpec, UpscaleActor

    source, scale, _ = model
    spec = JobSpec(
        str(source), "openvino", precision="fp32", scale=scale, threads=2, max_memory=MAX_MEMORY
    )
    actor = UpscaleActor(spec)
    try:
        for name, (data, path) in local.items():
            row = {
                "status": "", "kind": "image", "input": str(path), "output": f"out/{name}",
                "fmt": "png", "data": path.read_bytes(), "in_root": "", "in_path": str(path),
            }  # fmt: skip
            done = actor(row)
            assert done["status"] == "", done.get("error")
            assert done["data"] == data, name
    finally:
        actor.session.close()


def test_the_service_answers_the_local_commands_bytes_whatever_shares_a_batch(model, local):
    from overnet.serve.config import Limits
    from overnet.serve.images import process
    from overnet.serve.limits import UpscaleParams

    _, _, session = model
    upscaler = Upscaler(session, max_memory=MAX_MEMORY, batch=8)
    rng = np.random.default_rng(5)

    def batched_with_strangers(tiles: np.ndarray) -> np.ndarray:
        # another request's tiles of the same shape run in the same batch
        strangers = rng.random((3, *tiles.shape[1:]), dtype=np.float32)
        features = getattr(session, "run_features", session.run)
        return features(np.concatenate([strangers, tiles]))[3:]

    params = UpscaleParams(None, 95, 60.0)
    for name, (data, path) in local.items():
        answer = process(path.read_bytes(), params, Limits(), upscaler, batched_with_strangers)
        assert answer.data == data, name
