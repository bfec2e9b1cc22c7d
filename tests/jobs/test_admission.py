"""Admission against the memory budget is the same on every path: one image's estimate
(not a batch of them), the encoded input counted whether it came as a file or bytes,
an explicit --tile checked too, --tile 0 left to the user; and the output policy sees
every input of a run, videos included."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from overnet.errors import MemoryLimitError
from overnet.imaging.files import InputFile, probe_image
from overnet.jobs.batch import upscale_files
from overnet.jobs.budget import MemoryBudget
from overnet.jobs.images import ImageOptions, check_fits_budget, plan_image
from overnet.runtime.upscaler import Upscaler
from tests.runtime.doubles import NearestSession


def _png(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_one_image_is_estimated_as_one_run_whatever_the_batch():
    body = _png(128, 128)
    alone = plan_image(body, Upscaler(NearestSession(), batch=1), ImageOptions())
    batched = plan_image(body, Upscaler(NearestSession(), batch=8), ImageOptions())
    assert alone.estimate == batched.estimate  # the service's batch 8 is not 8 images
    upscaler = Upscaler(NearestSession(), batch=8)
    assert 4 * batched.estimate < upscaler.max_memory  # four such requests fit at once


def test_a_file_and_the_same_bytes_get_the_same_estimate(tmp_path):
    body = _png(300, 200)
    path = tmp_path / "a.png"
    path.write_bytes(body)
    upscaler = Upscaler(NearestSession())
    from_file = plan_image(path, upscaler, ImageOptions())
    from_bytes = plan_image(body, upscaler, ImageOptions())
    assert from_file.estimate == from_bytes.estimate


def test_an_explicit_tile_is_checked_against_the_budget_and_tile_0_is_not(tmp_path):
    body = _png(400, 300)
    tight = Upscaler(NearestSession(), tile=64, max_memory="10MB")
    planned = plan_image(body, tight, ImageOptions())
    with pytest.raises(MemoryLimitError) as caught:
        check_fits_budget(planned, tight, MemoryBudget(tight.max_memory))
    assert caught.value.need == planned.estimate and caught.value.budget == 10_000_000
    assert "--tile" not in str(caught.value)  # a smaller tile would not help here
    whole = Upscaler(NearestSession(), tile=0, max_memory="10MB")  # the user's call
    check_fits_budget(plan_image(body, whole, ImageOptions()), whole, MemoryBudget(10_000_000))


def test_no_image_output_replaces_a_video_input(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.jpg").write_bytes(_png(8, 6))  # a PNG named .jpg: an image
    video = folder / "clip.png"  # a file the run treats as a video input
    video.write_bytes(b"not touched")
    item = InputFile(folder / "clip.jpg", Path("clip.jpg"))
    others = {video.resolve()}
    report = upscale_files([item], folder, Upscaler(NearestSession()), fmt="png",
                           overwrite=True, progress=False, other_inputs=others)  # fmt: skip
    (result,) = report.results
    assert result.status == "failed" and "would overwrite an input" in result.error
    assert video.read_bytes() == b"not touched"


def test_the_tiling_note_is_only_for_tiles_the_budget_chose(tmp_path):
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    path.write_bytes(_png(200, 150))
    item = InputFile(path, Path("a.png"))
    given = upscale_files([item], tmp_path / "o1", Upscaler(NearestSession(), tile=64),
                          progress=False)  # fmt: skip
    assert given.results[0].tiles > 1 and "ran in tiles" not in given.summary()


def test_a_tiff_of_many_pages_is_probed_without_walking_them():
    count = 20_000  # 2.3 MB of one-pixel pages
    entries = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
               (277, 3, 1), (278, 3, 1), (279, 4, 1)]  # fmt: skip
    data, position = bytearray(b"II*\x00" + struct.pack("<I", 9) + b"\x00"), 9
    size = 2 + 12 * len(entries) + 4
    for index in range(count):
        block = struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            block += struct.pack("<HHI", tag, kind, 1) + packed
        block += struct.pack("<I", position + size if index < count - 1 else 0)
        data += block
        position += len(block)
    begin = time.perf_counter()
    header = probe_image(bytes(data))
    assert (header.width, header.height, header.frames) == (1, 1, 2)
    assert time.perf_counter() - begin < 1.0  # counting the pages took 6 s
