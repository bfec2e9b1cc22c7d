"""One TensorRT logger per process, shared by the engine builder (``overnet.export``) and
the engine loader (``overnet.runtime``), which must not import each other.

TensorRT keeps one logger for the process: the builders and runtimes it creates report
through it, and it must outlive them. Each of them gets ``shared_logger(trt)`` (WARNING and
above) instead of a new ``trt.Logger``. This module imports nothing heavy; ``trt`` is the
module the caller already loaded.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

_lock = threading.Lock()
#: (the tensorrt module, its logger); a different module object (tests swap in doubles)
#: gets a logger of its own
_shared: tuple[ModuleType, Any] | None = None


def shared_logger(trt: ModuleType) -> Any:
    """The process's ``trt.Logger(trt.Logger.WARNING)``, made on first use."""
    global _shared
    with _lock:
        if _shared is None or _shared[0] is not trt:
            _shared = (trt, trt.Logger(trt.Logger.WARNING))
        return _shared[1]
