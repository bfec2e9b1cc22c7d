"""Working memory of one inference, per input pixel, for choosing tile sizes.

Measured on this project's CPU machines as the peak-RSS growth of a single 256x256 run
(`python benchmarks/tile_memory.py`, recorded in `benchmarks/results/tile-memory.txt`): it
grows linearly with the input pixels, and the overscale stage adds a term in upscale**2.
Bytes per input pixel, upscale-3 model (x2 weights) / upscale-4 model (x3 weights):

    openvino     13,093 / 16,878      onnxruntime   8,946 / 8,945
    torch (NCHW)  6,961 (upscale 3)   torch channels_last 6,450 (upscale 3)

Each backend declares its figures (``BACKEND.memory`` in its module, per variant where they
differ); they reproduce these within 1% (torch: above them); SAFETY adds 20%.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import threading

from overnet.runtime.spec import MemoryModel

#: headroom over the measured growth: allocator slack, shapes not measured
SAFETY = 1.2
DEFAULT_UPSCALE = 4  # for models that do not record it: assume the larger x3/x4 models
#: model kinds whose sessions take any input size (their tile follows the budget)
DYNAMIC_KINDS = {"onnx", "checkpoint", "module", "engine"}


def memory_model(name: str) -> MemoryModel:
    """The declared (per-pixel, per-pixel-per-upscale**2) figures of a backend or variant
    name, as ``SessionInfo.backend`` gives it; unknown names get the largest figures of
    the backends that run any input size."""
    from overnet.runtime.registry import DECLARED

    for spec in DECLARED:
        for variant in spec.variants:
            if variant.name == name:
                return variant.memory or spec.memory
        if spec.name == name:
            return spec.memory
    # an unknown session tiles by its budget like the dynamic-shape backends; the fixed-tile
    # files' figures (LiteRT, ExecuTorch) are their session's whole cost over one small
    # tile, not a working memory that grows with the tile, so they do not set it
    tiling = [spec.memory for spec in DECLARED if set(spec.loads) & DYNAMIC_KINDS]
    return max(tiling, key=lambda m: m[0] + m[1] * 16)


def bytes_per_input_pixel(backend: str, upscale: int | None) -> int:
    """Estimated peak working memory of one inference per input pixel (batch included)."""
    base, per_overscale = memory_model(backend)
    u = upscale or DEFAULT_UPSCALE
    return int((base + per_overscale * u * u) * SAFETY)


#: Host memory of one image outside the network, per input pixel: the decoded image (up
#: to RGBA 16-bit), its float32 RGB and alpha planes and the NCHW copy the network reads.
#: Measured with tracemalloc over ``Upscaler.upscale`` (benchmarks/item_memory.py).
HOST_BYTES_PER_INPUT_PIXEL = 48
#: ... and per output pixel: the float32 accumulator and blend weights of the tiles, the
#: upscaled alpha plane, the result (up to RGBA 16-bit) and the row strips it is
#: converted in, palette re-quantisation, and the encoded file (at most the raw size).
HOST_BYTES_PER_OUTPUT_PIXEL = 40


def host_bytes(height: int, width: int, out_height: int, out_width: int) -> int:
    """Host memory one height x width image upscaled to out_height x out_width holds
    besides the network's working memory (what every path's memory estimate adds)."""
    return (
        height * width * HOST_BYTES_PER_INPUT_PIXEL
        + out_height * out_width * HOST_BYTES_PER_OUTPUT_PIXEL
    )


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only (not musl)
    except (OSError, AttributeError):
        return None
    return libc


def trim_heap() -> None:
    """Give the heap's free pages back to the system now (glibc ``malloc_trim``; a no-op
    elsewhere). It walks the whole heap: a large process may take a while, so the paths
    that free memory call ``trim_heap_soon`` instead.

    Why: glibc raises its mmap threshold each time a large buffer is freed (up to 32 MiB),
    so after the first image the next images' buffers come from the heap, and a heap
    pinned by one live block keeps the pages freed below it. A memory budget counts what
    is live; without this the process's RSS kept what was freed too (a serve replica grew
    2.35 GB on a 2 GB budget: ``benchmarks/serve_production.py``). The pages are returned
    with madvise, not unmapped, so nothing that still points at them can fault."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class _Trimmer:
    """One daemon thread that runs ``trim_heap`` after each request for it; requests
    made while it runs are served by one more trim, never queued up."""

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if _glibc() is None:
            return
        with self._lock:  # (re)started here: a forked child has no thread of its parent's
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="overnet-trim", daemon=True)
                self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            trim_heap()


_TRIMMER = _Trimmer()


def trim_heap_soon() -> None:
    """``trim_heap`` on a background thread: the caller (a request ending, an inference
    thread) does not wait for the walk over the heap."""
    _TRIMMER.request()
