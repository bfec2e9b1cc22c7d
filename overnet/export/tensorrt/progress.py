"""Build progress: a ``trt.IProgressMonitor`` that reports top-level phases and their times."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any


def make_progress_monitor(trt: ModuleType, echo: Callable[[str], None]) -> Any:
    """An IProgressMonitor that echoes each top-level phase and records its seconds in
    ``.phase_seconds``. Callbacks arrive on TensorRT's threads, so state is locked and no
    exception is allowed to escape into TensorRT."""

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.phase_seconds: dict[str, float] = {}
            self._started: dict[str, float] = {}
            self._parents: dict[str, str | None] = {}
            self._lock = threading.Lock()
            self.cancelled = False

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            try:
                with self._lock:
                    self._started[phase_name] = time.perf_counter()
                    self._parents[phase_name] = parent_phase
                if parent_phase is None:
                    echo(f"  [tensorrt] {phase_name} ({num_steps} steps)...")
            except Exception:  # never raise into TensorRT
                pass

        def step_complete(self, phase_name: str, step: int) -> bool:
            return not self.cancelled  # False asks TensorRT to cancel the build

        def phase_finish(self, phase_name: str) -> None:
            try:
                with self._lock:
                    start = self._started.pop(phase_name, None)
                    parent = self._parents.pop(phase_name, None)
                    if start is None:
                        return
                    seconds = time.perf_counter() - start
                    if parent is None:
                        self.phase_seconds[phase_name] = round(seconds, 3)
                if parent is None:
                    echo(f"  [tensorrt] {phase_name} done in {seconds:.1f} s")
            except Exception:
                pass

    return _Monitor()
