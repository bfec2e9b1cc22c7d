"""The job core's pieces: one output-name policy, the memory budget, the error boundary."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest

from overnet.errors import InputError
from overnet.jobs.boundary import Step, failure_reason
from overnet.jobs.budget import MemoryBudget
from overnet.jobs.naming import OutputNames, already_done


def test_an_output_that_is_an_input_is_refused_by_place_and_by_identity(tmp_path):
    source = tmp_path / "a.png"
    source.write_bytes(b"x")
    alias = tmp_path / "alias.png"
    os.link(source, alias)  # the same file under another name (as a case-insensitive disk)
    names = OutputNames([source.resolve()])
    with pytest.raises(InputError, match="would overwrite an input"):
        names.claim(source.resolve(), str(source), "other")
    with pytest.raises(InputError, match="would overwrite an input"):
        names.claim(alias.resolve(), str(alias), "other")
    names.claim((tmp_path / "new.png").resolve(), "new.png", "a")  # fine


def test_two_items_on_one_output_the_second_is_refused_naming_the_first(tmp_path):
    names = OutputNames([])
    target = (tmp_path / "o.png").resolve()
    names.claim(target, "o.png", "first.jpg")
    names.claim(target, "o.png", "first.jpg")  # the same item again (a retry) is fine
    with pytest.raises(InputError, match="also the output of first.jpg"):
        names.claim(target, "o.png", "second.png")


def test_input_identities_are_read_once_not_per_output(tmp_path, monkeypatch):
    inputs = []
    for i in range(50):
        path = tmp_path / f"in{i}.png"
        path.write_bytes(b"x")
        inputs.append(path.resolve())
    outputs = []
    for i in range(50):
        path = tmp_path / f"out{i}.png"
        path.write_bytes(b"y")
        outputs.append(path.resolve())
    calls = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: calls.append(p) or real_stat(p, *a, **k))
    names = OutputNames(inputs)
    for i, out in enumerate(outputs):
        names.claim(out, str(out), f"in{i}")
    assert len(calls) <= 2 * 50 + 50  # O(N): inputs once, each output once (not 50 x 50)


def test_skip_policy():
    assert already_done(10, overwrite=False)
    assert not already_done(0, overwrite=False)  # an empty file is redone
    assert not already_done(10, overwrite=True)


def test_budget_waits_for_room_and_refuses_what_never_fits():
    budget = MemoryBudget(100)
    assert budget.too_large(101, "big.png") is not None
    assert "big.png needs about" in str(budget.too_large(101_000_000, "big.png"))
    assert budget.too_large(100, "ok.png") is None
    assert budget.take(60)
    assert not budget.take(50, timeout=0)
    released = threading.Timer(0.2, budget.give_back, (60,))
    released.start()
    begin = time.monotonic()
    assert budget.take(50, timeout=5)
    assert 0.1 < time.monotonic() - begin < 5
    assert budget.peak == 60 and budget.held == 50


def test_a_closed_budget_wakes_its_waiters():
    budget = MemoryBudget(10)
    budget.take(10)
    threading.Timer(0.1, budget.close).start()
    assert budget.take(5, timeout=5) is False


_CASES = [
    (InputError("a.png is truncated"), "read the input", "a.png is truncated"),
    (MemoryError(), "upscale", "out of memory while trying to upscale a.png"),
    (
        OSError(28, "No space left on device"),
        "write the output",
        "could not write the output a.png: No space left on device",
    ),
    (
        struct.error("unpack requires a buffer of 13 bytes"),
        "read the input",
        "internal error while trying to read the input a.png (error: unpack requires",
    ),
    (
        ValueError("cannot write\nmore lines"),
        "write the output",
        "internal error while trying to write the output a.png (ValueError: cannot write)",
    ),
]


@pytest.mark.parametrize(("exc", "doing", "expected"), _CASES)
def test_every_exception_is_one_line_naming_the_item_and_step(exc, doing, expected):
    text = failure_reason(exc, doing, "a.png")
    assert expected in text and "\n" not in text


def test_internal_errors_keep_the_traceback_in_the_log(caplog):
    step = Step("b.webp")
    step("write the output")
    try:
        raise ValueError("encoder exploded")
    except ValueError as exc:
        text = step.failure(exc)
    assert "internal error" in text and "--verbose" in text
    assert "Traceback" in caplog.text and "encoder exploded" in caplog.text


def test_only_interrupts_and_exits_stop_a_run(tmp_path):
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from overnet.imaging.files import InputFile
    from overnet.jobs.batch import upscale_files
    from overnet.runtime.upscaler import Upscaler
    from tests.runtime.doubles import NearestSession

    class Raising(NearestSession):
        def __init__(self, exc: BaseException) -> None:
            super().__init__()
            self.exc = exc

        def _run(self, batch):
            raise self.exc

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    items = [InputFile(path, Path("a.png"))]
    report = upscale_files(items, tmp_path / "o", Upscaler(Raising(MemoryError())),
                           progress=False, overlap_io=False)  # fmt: skip
    assert report.results[0].status == "failed"  # an item's failure, the run goes on
    for fatal in (KeyboardInterrupt(), SystemExit(1)):
        with pytest.raises(type(fatal)):
            upscale_files(items, tmp_path / "o", Upscaler(Raising(fatal)), progress=False)
