"""Three stages over a list, overlapped: read in one thread, compute in the caller's
thread, write in another, joined by bounded queues (back-pressure keeps memory flat).

Order is kept: results are settled in input order. The compute stage stays on the
caller's thread because runtime sessions are not shared across threads. An exception
in any stage stops the others and is raised in the caller (each stage is expected to
turn per-item failures into results itself).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: items in flight between two stages: one being read/written while one is computed
PIPELINE_DEPTH = 2
_DONE = object()


class _Stage(threading.Thread):
    """Runs ``work`` over a source until it ends; the first exception is kept."""

    def __init__(self, name: str, work: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc


def _put(q: queue.Queue, item: Any, going: Callable[[], bool]) -> bool:
    """Put unless ``going()`` turns False (the consumer died or the pipeline stops)."""
    while going():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, going: Callable[[], bool]) -> Any:
    """The next item, or _DONE once the producer is gone and nothing is left."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not going():
                # the producer may have put its last items (and _DONE) between the
                # timeout and this check: they are still in the queue, in order
                try:
                    return q.get_nowait()
                except queue.Empty:
                    return _DONE


def run_pipeline(
    items: Iterable[T],
    read: Callable[[T], Any],
    compute: Callable[[Any], Any],
    write: Callable[[Any], R],
    settle: Callable[[R], None],
    depth: int = PIPELINE_DEPTH,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """``settle(write(compute(read(item))))`` for each item, in order, overlapped.

    ``on_stop`` is called once the run ends or fails, before the stages are joined: it
    must wake a stage that waits on something else than the queues (a memory budget)."""
    stop = threading.Event()
    to_compute: queue.Queue = queue.Queue(maxsize=depth)
    to_write: queue.Queue = queue.Queue(maxsize=depth)

    def reading() -> None:
        for item in items:
            if not _put(to_compute, read(item), lambda: not stop.is_set()):
                return
        _put(to_compute, _DONE, lambda: not stop.is_set())

    def writing() -> None:
        while (job := _get(to_write, lambda: not stop.is_set())) is not _DONE:
            settle(write(job))

    reader, writer = _Stage("overnet-read", reading), _Stage("overnet-write", writing)
    reader.start()
    writer.start()
    try:
        while (job := _get(to_compute, reader.is_alive)) is not _DONE:
            if not _put(to_write, compute(job), writer.is_alive):
                break  # the writer failed: its error is raised below
        _put(to_write, _DONE, writer.is_alive)
        writer.join()
    finally:
        stop.set()  # ends a reader blocked on a full queue, or a writer after an error
        if on_stop is not None:
            on_stop()
        writer.join()
        reader.join()
    for stage in (reader, writer):
        if stage.error is not None:
            raise stage.error
