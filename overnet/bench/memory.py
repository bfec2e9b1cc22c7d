"""Peak memory of one benchmark row: host RSS (Linux /proc), GPU allocator / NVML when present.

``ru_maxrss`` only ever grows over a process's life, so it cannot give a per-row peak. On
Linux the peak (VmHWM) can be reset by writing "5" to /proc/self/clear_refs; where that is
not allowed, a thread samples VmRSS every few milliseconds instead (it can miss short spikes).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MEMINFO = Path("/proc/meminfo")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident set size of this process (None off Linux)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def hwm_bytes() -> int | None:
    """Peak resident set size (VmHWM) since start or the last reset."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo: what can be allocated without swapping."""
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_bytes() -> int | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class PeakMemory:
    """What a :class:`PeakRss` block measured (bytes)."""

    baseline: int | None = None
    peak: int | None = None
    method: str = "unavailable"

    @property
    def delta(self) -> int | None:
        if self.baseline is None or self.peak is None:
            return None
        return max(0, self.peak - self.baseline)


class PeakRss:
    """Context manager: peak host RSS above the level at entry.

    Uses VmHWM after a reset where possible and also samples VmRSS in a thread, keeping
    the larger of the two peaks.
    """

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.result = PeakMemory()
        self._stop = threading.Event()
        self._sampled = 0
        self._thread: threading.Thread | None = None
        self._hwm_ok = False

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = rss_bytes()
            if value is not None and value > self._sampled:
                self._sampled = value
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRss:
        self.result.baseline = rss_bytes()
        if self.result.baseline is None:
            return self
        self._sampled = self.result.baseline
        self._hwm_ok = reset_hwm()
        self._thread = threading.Thread(target=self._sample, name="overnet-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        peaks = [self._sampled]
        method = f"sampled VmRSS every {self.interval_s * 1e3:g} ms"
        if self._hwm_ok:
            hwm = hwm_bytes()
            if hwm is not None:
                peaks.append(hwm)
                method = "VmHWM reset via /proc/self/clear_refs"
        self.result.peak = max(peaks)
        self.result.method = method


def estimate_whole_image_bytes(
    batch: int, height: int, width: int, upscale: int, scale: float, channels: int = 64
) -> int:
    """Rough peak activation memory of whole-image inference, for refusing rows up front.

    Counts float32 maps per input pixel: about 12.5 F (the 384-channel residual-block map,
    the dense concatenations and their inputs), the overscaled map before and after the
    pixel shuffle (2 x F x upscale^2) and the resized map (F x scale^2), times 1.5 for
    allocator slack and runtime workspaces. Measured peak-RSS growth at x2 was 0.98-1.0 of
    this figure for OpenVINO (320x180 to 1280x720, benchmarks/results/memory-growth.md),
    about 0.8 for onnxruntime and 0.4-0.55 for torch (benchmarks/results/bench-cpu.md).
    """
    per_pixel = 12.5 * channels + 2 * channels * upscale**2 + channels * scale**2
    return math.ceil(1.5 * 4 * per_pixel * batch * height * width)


def gpu_peak(torch_module: Any | None = None) -> dict[str, int] | None:
    """Peak GPU memory seen by the torch allocator and used memory from NVML, when present."""
    result: dict[str, int] = {}
    if torch_module is not None and torch_module.cuda.is_available():
        result["torch_max_allocated"] = int(torch_module.cuda.max_memory_allocated())
        result["torch_max_reserved"] = int(torch_module.cuda.max_memory_reserved())
    used = nvml_used_bytes()
    if used is not None:
        result["nvml_used"] = used
    return result or None


def nvml_used_bytes(index: int = 0) -> int | None:
    """Device memory in use (all processes) from NVML (nvidia-ml-py), None when absent."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML raises its own error classes (no driver, no device)
        return None
