"""One benchmark row: open a session, time cold start, warm-up and timed runs, measure memory.

A row can run in this process or in a spawned child (``run_row_isolated``), so that a
kernel OOM kill loses only that row. Nothing here imports torch at module level.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from overnet.bench.memory import PeakRss, gpu_peak, nvml_used_bytes
from overnet.bench.stats import summarize
from overnet.config import output_size
from overnet.errors import InputError, MissingDependencyError

#: row outcomes: ok, or why there is no timing. unavailable: the runtime is not installed;
#: refused: the backend declines this configuration (size outside the model or profile,
#: or too large to try); oom: an allocation failed (creating the session or running);
#: killed: the isolated child died (the kernel OOM killer); error: anything else, such as
#: a model the runtime could not load.
STATUSES = ("ok", "unavailable", "refused", "oom", "killed", "error")

#: substrings (lower case) of runtime errors that mean an allocation failed: Python and
#: PyTorch ("CUDA out of memory"), C++ std::bad_alloc (what() is "bad allocation" on
#: MSVC), onnxruntime ("Failed to allocate memory for requested buffer"), OpenVINO
#: ("Cannot allocate memory", GPU plugin OpenCL CL_OUT_OF_RESOURCES /
#: CL_MEM_OBJECT_ALLOCATION_FAILURE), TensorRT ("... could not be allocated"), CUDA
#: (cudaErrorMemoryAllocation).
_OOM_MARKERS = (
    "out of memory",
    "bad_alloc",
    "bad allocation",
    "cannot allocate",
    "failed to allocate",
    "could not be allocated",
    "not enough memory",
    "memory allocation",
    "memoryallocation",
    "cl_out_of_resources",
    "cl_mem_object_allocation_failure",
)


@dataclass
class RowSpec:
    """What to run: a backend variant on a model at one scale, input size and batch."""

    name: str  # shown in reports: the variant, plus " [model label]" for --model files
    backend: str  # a runtime VARIANTS name (torch, torch-cl, onnxruntime, openvino-bf16...)
    model_label: str
    model_path: str
    scale: float
    width: int
    height: int
    batch: int
    device: str = "cpu"
    warmup: int = 1
    warmup_time: float = 0.0
    iters: int = 3
    min_time: float = 0.0
    threads: int | None = None
    seed: int = 0
    upscale: int | None = None

    @property
    def output_hw(self) -> tuple[int, int]:
        return output_size(self.height, self.width, self.scale)


@dataclass
class RowResult:
    """What one row measured (seconds and bytes). Fields are None when not measured."""

    spec: RowSpec
    status: str = "ok"
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    session_s: float | None = None
    first_run_s: float | None = None
    warmup_runs: int = 0
    latency: dict[str, float | int] | None = None
    samples_s: list[float] = field(default_factory=list)
    images_per_s: float | None = None
    output_mpix_per_s: float | None = None
    peak_rss_delta_bytes: int | None = None
    rss_method: str | None = None
    gpu_memory: dict[str, int] | None = None
    isolated: bool = False
    load_average: list[float] | None = None  # 1/5/15-min load when the row started
    speedup_vs_torch: float | None = None
    ratio_vs_baseline: float | None = None
    agreement: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cold_start_s(self) -> float | None:
        if self.session_s is None or self.first_run_s is None:
            return None
        return self.session_s + self.first_run_s

    @property
    def median_s(self) -> float | None:
        return None if self.latency is None else float(self.latency["median"])

    def to_dict(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        out = {k: v for k, v in asdict(self).items() if k != "spec"}
        out["cold_start_s"] = self.cold_start_s
        oh, ow = self.spec.output_hw
        return {**spec, "output_width": ow, "output_height": oh, **out}


class RowRefused(InputError):
    """The row cannot run as asked (size outside the model or engine limits, memory)."""


def make_input(spec: RowSpec) -> np.ndarray:
    """A deterministic Nx3xHxW float32 batch in [0, 1] (same for every backend) whose
    spectrum falls as 1/frequency, as photographs' do. Uniform noise would be nothing a
    user upscales, and the INT8 guard sends every tile of it to the float model, so the
    openvino-int8 row would time float."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    frequency = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    frequency[0, 0] = 1.0  # the mean: any value, the range is normalised below
    shape = (spec.batch, 3, h, w // 2 + 1)
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / frequency
    field = np.fft.irfft2(spectrum, s=(h, w))
    low = field.min(axis=(2, 3), keepdims=True)
    high = field.max(axis=(2, 3), keepdims=True)
    return ((field - low) / np.maximum(high - low, 1e-12)).astype(np.float32)


def open_row_session(spec: RowSpec) -> Any:
    """The default opener: ``overnet.runtime.open_session`` with the row's options."""
    from overnet.runtime import open_session

    if spec.backend == "auto":  # what `overnet upscale` opens by default
        return open_session(
            spec.model_path, "auto", precision="auto", scale=spec.scale, threads=spec.threads
        )
    return open_session(spec.model_path, spec.backend, scale=spec.scale, threads=spec.threads)


def check_limits(info: Any, spec: RowSpec) -> None:
    """Refuse sizes outside the session's limits before running (model minimum, engine
    profile, maximum batch), with the limit in the message."""
    min_h, min_w = info.min_hw
    if spec.height < min_h or spec.width < min_w:
        raise RowRefused(
            f"input {spec.width}x{spec.height} (WxH) is below the model minimum {min_w}x{min_h}"
        )
    if info.max_hw is not None and (spec.height > info.max_hw[0] or spec.width > info.max_hw[1]):
        raise RowRefused(
            f"input {spec.width}x{spec.height} (WxH) is above the {info.backend} engine profile "
            f"maximum {info.max_hw[1]}x{info.max_hw[0]}; rebuild the engine with a larger "
            "profile or tile the image"
        )
    if info.max_batch is not None and spec.batch > info.max_batch:
        raise RowRefused(
            f"batch {spec.batch} is above the {info.backend} engine profile maximum "
            f"{info.max_batch}"
        )


def is_oom(exc: BaseException) -> bool:
    """True when ``exc``, or an exception it was raised from, reports a failed allocation."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never loop on a cyclic one
        if seen is None:
            return False
        if isinstance(seen, MemoryError) or type(seen).__name__ == "OutOfMemoryError":
            return True
        text = str(seen).lower()
        if any(marker in text for marker in _OOM_MARKERS):
            return True
        seen = seen.__cause__
    return False


def classify_failure(exc: BaseException, *, opened: bool) -> tuple[str, str]:
    """(status, error text) of a row that raised ``exc``; ``opened``: the session existed.

    A session that cannot be created is an ``error`` (the model could not be loaded, a
    bad option...) or ``oom``; an InputError is a refusal only from a session that
    exists and declines the shape or batch asked of it (or a ``RowRefused`` check).
    """
    where = "" if opened else "creating the session: "
    if isinstance(exc, MissingDependencyError):
        return "unavailable", str(exc)
    if is_oom(exc):
        return "oom", f"out of memory {where or 'while running: '}{type(exc).__name__}: {exc}"
    if isinstance(exc, RowRefused) or (opened and isinstance(exc, InputError)):
        return "refused", str(exc)
    return "error", f"{where}{type(exc).__name__}: {exc}"


def timed_loop(fn: Callable[[], Any], count: int, min_time: float) -> list[float]:
    """Run ``fn`` until it ran ``count`` times and ``min_time`` seconds passed (both)."""
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < count or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def _preimport(backend: str) -> None:
    """Import the runtime module first so cold start and memory exclude Python imports."""
    from overnet.errors import InputError
    from overnet.runtime.registry import find_variant

    try:
        module = find_variant(backend)[0].module
        importlib.import_module(module)
    except (InputError, ImportError):
        return  # reported when the row opens its session


def _info_dict(info: Any) -> dict[str, Any]:
    keys = ("backend", "device", "precision", "providers", "threads", "scale", "upscale", "notes")
    return {k: getattr(info, k, None) for k in keys}


def run_row(
    spec: RowSpec,
    opener: Callable[[RowSpec], Any] = open_row_session,
    keep_output: bool = True,
) -> tuple[RowResult, np.ndarray | None]:
    """Measure one row in this process; errors become the row's status, never raised
    (except KeyboardInterrupt). Returns the first run's output for the agreement check."""
    result = RowResult(spec)
    output = None
    torch_mod = None
    opened = False
    try:
        x = make_input(spec)
        _preimport(spec.backend)
        if spec.device.startswith("cuda"):
            import sys

            torch_mod = sys.modules.get("torch")
            if torch_mod is not None and torch_mod.cuda.is_available():
                torch_mod.cuda.reset_peak_memory_stats()
        gpu_before = nvml_used_bytes() if spec.device.startswith("cuda") else None
        with PeakRss() as mem:
            start = time.perf_counter()
            session = opener(spec)
            opened = True
            result.session_s = time.perf_counter() - start
            try:
                result.info = _info_dict(session.info)
                check_limits(session.info, spec)
                start = time.perf_counter()
                output = session.run(x)
                result.first_run_s = time.perf_counter() - start
                expected = (spec.batch, 3, *spec.output_hw)
                if tuple(output.shape) != expected:
                    result.notes.append(
                        f"output shape {tuple(output.shape)} differs from the expected {expected}"
                    )
                if spec.warmup > 0 or spec.warmup_time > 0:
                    result.warmup_runs = len(
                        timed_loop(lambda: session.run(x), spec.warmup, spec.warmup_time)
                    )
                samples = timed_loop(lambda: session.run(x), max(1, spec.iters), spec.min_time)
            finally:
                session.close()
        result.samples_s = samples
        stats = summarize(samples)
        result.latency = stats.to_dict()
        oh, ow = spec.output_hw
        result.images_per_s = spec.batch / stats.median
        result.output_mpix_per_s = spec.batch * oh * ow / stats.median / 1e6
        result.peak_rss_delta_bytes = mem.result.delta
        result.rss_method = mem.result.method
        if spec.device.startswith("cuda"):
            result.gpu_memory = gpu_peak(torch_mod) or {}
            if gpu_before is not None and "nvml_used" in result.gpu_memory:
                result.gpu_memory["nvml_delta"] = result.gpu_memory["nvml_used"] - gpu_before
    except Exception as exc:  # a runtime's own error types: recorded, the suite goes on
        result.status, result.error = classify_failure(exc, opened=opened)
    if result.status != "ok":
        output = None
        result.latency = None
    return result, (output if keep_output else None)


def reference_output(spec: RowSpec) -> np.ndarray:
    """PyTorch eager fp32 output for the row's input (the agreement reference), untimed."""
    from overnet.runtime import open_session

    with open_session(spec.model_path, "torch", scale=spec.scale, threads=spec.threads) as s:
        return s.run(make_input(spec))


def _child(conn: Any, spec: RowSpec, reference_only: bool) -> None:
    try:
        if reference_only:
            conn.send(("reference", reference_output(spec)))
        else:
            conn.send(("row", run_row(spec)))
    except BaseException as exc:  # report anything to the parent rather than die silently
        conn.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_in_child(spec: RowSpec, reference_only: bool = False) -> tuple[str, Any, int | None]:
    """Run a row (or the reference) in a spawned process: (kind, payload, exit code)."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, spec, reference_only), daemon=True)
    proc.start()
    send.close()
    try:
        kind, payload = receive.recv()
    except EOFError:
        kind, payload = "killed", None
    proc.join()
    return kind, payload, proc.exitcode


def run_row_isolated(spec: RowSpec) -> tuple[RowResult, np.ndarray | None]:
    """``run_row`` in a child process; an OOM kill (SIGKILL) becomes a ``killed`` row."""
    kind, payload, code = run_in_child(spec)
    if kind == "row":
        result, output = payload
        result.isolated = True
        return result, output
    result = RowResult(spec, isolated=True)
    if kind == "killed":
        result.status = "killed"
        signal_note = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
        result.error = (
            f"the child process died ({signal_note}); SIGKILL (9) here almost always means "
            "the kernel OOM killer: the image is too large for whole-image inference"
        )
    else:
        result.status, result.error = "error", str(payload)
    return result, None


def agreement(output: np.ndarray, reference: np.ndarray, precision: str) -> dict[str, Any]:
    """Max abs difference and PSNR (peak 1.0) against the PyTorch fp32 output.

    Passes at max abs <= 1e-3 for fp32 and PSNR >= 40 dB for reduced precision; a backend
    that is fast but wrong fails here and is flagged in every report.
    """
    if output.shape != reference.shape:
        return {
            "max_abs": None,
            "psnr_db": None,
            "agrees": False,
            "reason": f"shape {tuple(output.shape)} vs reference {tuple(reference.shape)}",
        }
    diff = output.astype(np.float64) - reference.astype(np.float64)
    max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    psnr = None if mse == 0 else 10 * math.log10(1.0 / mse)
    if not math.isfinite(max_abs):
        return {"max_abs": None, "psnr_db": None, "agrees": False, "reason": "non-finite output"}
    if precision == "fp32":
        ok, rule = max_abs <= 1e-3, "max abs <= 1e-3 (fp32)"
    else:
        ok, rule = psnr is None or psnr >= 40.0, f"PSNR >= 40 dB ({precision})"
    return {"max_abs": max_abs, "psnr_db": psnr, "agrees": bool(ok), "rule": rule}
