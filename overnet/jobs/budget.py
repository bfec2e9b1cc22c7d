"""Admission by memory: items take their estimate from one budget and give it back when
they are settled, so what a run holds at once stays within ``--max-memory``.

The local batch waits for room (the next image is decoded once the previous ones are
written); the service waits up to a request's timeout (``take(need, timeout)``).
An item whose estimate alone exceeds the budget is never admitted: the caller fails it
with the estimate and the budget (``too_large``).
"""

from __future__ import annotations

import threading

from overnet.errors import InputError, MemoryLimitError
from overnet.runtime.memory import trim_heap_soon


class MemoryBudget:
    """``total`` bytes shared by the items in flight (thread-safe)."""

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise InputError(f"a memory budget must be positive, got {total} bytes")
        self.total = total
        self.held = 0
        self.peak = 0  # the most held at once (reports, tests)
        self.closed = False
        self._room = threading.Condition()

    def too_large(self, need: int, what: str) -> MemoryLimitError | None:
        """The error for an item that can never fit, else None."""
        if need <= self.total:
            return None
        return MemoryLimitError(
            f"{what} needs about {need / 1e6:.0f} MB, above --max-memory "
            f"{self.total / 1e6:.0f} MB; raise --max-memory or downscale the input",
            need,
            self.total,
        )

    def take(self, need: int, timeout: float | None = None) -> bool:
        """Wait until ``need`` bytes are free and hold them; False on timeout. An item
        larger than the whole budget waits only for the budget to be empty (the caller
        is expected to have refused it with ``too_large`` first). False at once after
        ``close``."""
        need = min(need, self.total)
        with self._room:
            free = self._room.wait_for(
                lambda: self.closed or self.held + need <= self.total, timeout
            )
            if not free or self.closed:
                return False
            self._hold(need)
            return True

    def give_back(self, need: int) -> None:
        need = min(need, self.total)
        with self._room:
            self.held = max(0, self.held - need)
            self._room.notify_all()
        # the budget counts live buffers: what the item freed must leave the process too
        trim_heap_soon()

    def close(self) -> None:
        """Wake every waiter: the run is stopping (Ctrl-C, an error)."""
        with self._room:
            self.closed = True
            self._room.notify_all()

    def _hold(self, need: int) -> None:
        self.held += need
        self.peak = max(self.peak, self.held)
