"""Threads joined by bounded queues, with one stop signal and errors handed to the caller.

A full queue blocks its producer (back-pressure: the decoder never runs more than a few
frames ahead of inference, so memory does not grow with the video's length). Every wait
wakes up regularly to look at the stop signal, so Ctrl-C or an error in any stage stops
all of them within a fraction of a second.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

_POLL_S = 0.1


class Stopped(Exception):
    """Raised inside a stage when the pipeline is being stopped."""


class Link:
    """A bounded queue between two stages that gives up when ``stop`` is set."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=size)
        self.stop = stop

    def put(self, kind: str, item: Any = None) -> None:
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                self.queue.put((kind, item), timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def get(self, alive: Stage | None = None) -> tuple[str, Any]:
        """The next item; raises ``alive``'s error if that producer fails first."""
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                return self.queue.get(timeout=_POLL_S)
            except queue.Empty:
                if alive is not None and not alive.is_alive():
                    alive.raise_error()
                    try:  # it may have handed on its last item as it ended
                        return self.queue.get_nowait()
                    except queue.Empty:
                        if self.stop.is_set():  # it was stopped by another stage's failure
                            raise Stopped from None
                        raise RuntimeError(f"{alive.name} ended without finishing") from None


class Stage(threading.Thread):
    """A pipeline thread: ``work`` runs once; an exception is kept for the caller and
    sets the shared stop signal."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop = stop
        self.error: BaseException | None = None

    def work(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self) -> None:
        try:
            self.work()
        except Stopped:
            pass
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
            self.stop.set()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error
