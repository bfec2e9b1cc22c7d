"""Overlapped read -> compute -> write: order kept, stages concurrent, memory bounded,
errors raised without hanging; folders give the same files with and without overlap."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from overnet.imaging.files import expand_inputs
from overnet.jobs.batch import upscale_files
from overnet.jobs.pipeline import PIPELINE_DEPTH, run_pipeline
from overnet.runtime import Upscaler
from tests.runtime.doubles import NearestSession


def test_order_is_kept_and_every_item_settles():
    rng = np.random.default_rng(0)
    delays = rng.random(20) * 0.005
    settled: list[int] = []

    def read(i):
        threading.Event().wait(delays[i])
        return i

    run_pipeline(range(20), read, lambda i: i * 10, lambda i: i + 1, settled.append)
    assert settled == [i * 10 + 1 for i in range(20)]


def test_reading_the_next_item_overlaps_the_current_compute():
    next_read = threading.Event()
    overlapped: list[bool] = []

    def read(i):
        if i == 1:
            next_read.set()
        return i

    def compute(i):
        if i == 0:  # only returns early if item 1 is read while item 0 computes
            overlapped.append(next_read.wait(timeout=5))
        return i

    run_pipeline(range(3), read, compute, lambda i: i, lambda _: None)
    assert overlapped == [True]


def test_items_in_flight_stay_bounded():
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def read(i):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        return i

    def settle(_):
        with lock:
            in_flight[0] -= 1

    run_pipeline(range(200), read, lambda i: i, lambda i: i, settle)
    # two queues of PIPELINE_DEPTH, one item in each stage
    assert peak[0] <= 2 * PIPELINE_DEPTH + 3


@pytest.mark.parametrize("stage", ["read", "compute", "write", "settle"])
def test_an_exception_in_any_stage_is_raised_not_hung(stage):
    def maybe_fail(name):
        def step(i):
            if name == stage and i == 5:
                raise RuntimeError(f"{name} broke")
            return i

        return step

    with pytest.raises(RuntimeError, match=f"{stage} broke"):
        run_pipeline(
            range(100), maybe_fail("read"), maybe_fail("compute"), maybe_fail("write"),
            maybe_fail("settle"),
        )  # fmt: skip
    assert {t.name for t in threading.enumerate()}.isdisjoint({"overnet-read", "overnet-write"})


@pytest.mark.parametrize("overlap", [True, False])
def test_folder_outputs_do_not_depend_on_the_overlap(tmp_path, overlap):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        size = (20 + 3 * i, 16 + i)
        Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(
            src / f"{i}.png"
        )
    (src / "broken.png").write_bytes(b"not a png")
    files, _ = expand_inputs([str(src)], False, exclude=tmp_path / "out")
    report = upscale_files(
        files, tmp_path / "out", Upscaler(NearestSession(2)), progress=False, overlap_io=overlap
    )
    assert [r.input for r in report.results] == [f.path for f in files]  # input order
    expected = ["failed" if f.path.name == "broken.png" else "done" for f in files]
    assert [r.status for r in report.results] == expected
    for i in range(5):
        a = np.asarray(Image.open(src / f"{i}.png"))
        b = np.asarray(Image.open(tmp_path / "out" / f"{i}.png"))
        np.testing.assert_array_equal(b, a.repeat(2, 0).repeat(2, 1))
