"""A benchmark suite: models x backends x scales x sizes x batches, with the comparisons.

``run_suite(BenchConfig(...))`` returns a :class:`BenchReport`; ``overnet.bench.report``
turns it into a table, JSON, CSV, markdown and ``overnet.bench.plot`` into a PNG.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from overnet.bench import environment
from overnet.bench.memory import available_bytes, estimate_whole_image_bytes
from overnet.bench.models import ModelEntry
from overnet.bench.runner import (
    RowResult,
    RowSpec,
    agreement,
    reference_output,
    run_in_child,
    run_row,
    run_row_isolated,
)
from overnet.config import OverNetConfig
from overnet.errors import InputError
from overnet.units import SIZE_FORM, parse_size

#: the quick CPU suite `overnet bench` runs with no arguments
DEFAULT_BACKENDS = ("torch", "torch-cl", "onnxruntime", "openvino", "openvino-bf16")
DEFAULT_SIZES = ((160, 90),)  # (width, height): small enough for < 2 min on 2 cores
REFERENCE_BACKEND = "torch"  # PyTorch eager fp32, NCHW: the speed-up and agreement reference
#: a row that opens the model as `overnet upscale` does by default: open_session's
#: backend="auto" with precision="auto" (on CPU; not a registry variant)
AUTO = "auto"
#: session notes copied into the suite notes (the choice auto made, an INT8 model's drop)
_ROW_NOTES = ("precision auto", "INT8 model")


@dataclass
class BenchConfig:
    """Everything a run needs. Sizes are (width, height) like the CLI's WxH."""

    models: list[ModelEntry]
    scales: list[float] = field(default_factory=lambda: [2.0])
    sizes: list[tuple[int, int]] = field(default_factory=lambda: list(DEFAULT_SIZES))
    batches: list[int] = field(default_factory=lambda: [1])
    backends: list[str] = field(default_factory=lambda: list(DEFAULT_BACKENDS))
    warmup: int = 1
    warmup_time: float = 0.0
    iters: int = 3
    min_time: float = 0.0
    threads: int | None = None
    isolate: bool = False
    baseline: str | None = None  # a row name; None: onnxruntime on the first --model file
    seed: int = 0
    memory_fraction: float = 0.85  # refuse rows whose estimate exceeds this of MemAvailable
    set5: Path | None = None  # measure Set5 PSNR of real reference weights from here
    command: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = [
            {"label": m.label, "path": str(m.path), "kind": m.kind, "real_weights": m.real_weights}
            for m in self.models
        ]
        d["sizes"] = [f"{w}x{h}" for w, h in self.sizes]
        d["set5"] = str(self.set5) if self.set5 else None
        return d


@dataclass
class BenchReport:
    command: str
    created: str
    environment: dict[str, Any]
    config: dict[str, Any]
    model: dict[str, Any]
    rows: list[RowResult]
    notes: list[str]
    duration_s: float = 0.0


def unknown_backend_message(names: list[str]) -> str:
    from overnet.runtime import backend_status
    from overnet.runtime.registry import variant_names

    lines = [
        f"unknown backend{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}; "
        f"choose from: {', '.join(variant_names())}",
        "runtimes here:",
    ]
    for status in backend_status():
        state = "available" if status.available else f"unavailable: {status.reason}"
        lines.append(f"  {status.name}: {state}")
    return "\n".join(lines)


def check_backends(backends: list[str]) -> None:
    """Raise InputError naming unknown backends, the known ones and why any is unavailable."""
    from overnet.runtime.registry import variant_names

    unknown = [b for b in backends if b != AUTO and b not in variant_names()]
    if unknown:
        raise InputError(unknown_backend_message(unknown))
    if not backends:
        raise InputError("no backends given")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"320x180,640x360"`` -> [(320, 180), (640, 360)]: WIDTHxHEIGHT (overnet.units)."""
    sizes = [parse_size(part) for part in text.split(",") if part.strip()]
    if not sizes:
        raise InputError(f"no sizes given: expected {SIZE_FORM}, comma-separated")
    return sizes


def _variant_device(backend: str) -> str:
    from overnet.runtime.registry import find_variant

    return "cpu" if backend == AUTO else find_variant(backend)[1].device


def _loadable(kind: str, backend: str) -> bool:
    from overnet.runtime.registry import find_variant

    return backend == AUTO or find_variant(backend)[0].can_load(kind)


def build_rows(config: BenchConfig) -> list[RowSpec]:
    """Rows in run order: per scale/size/batch, the reference torch row first."""
    ordered = sorted(config.backends, key=lambda b: b != REFERENCE_BACKEND)
    rows = []
    for scale in config.scales:
        for width, height in config.sizes:
            for batch in config.batches:
                for model in config.models:
                    if model.scales is not None and scale not in model.scales:
                        continue
                    for backend in ordered:
                        if not _loadable(model.kind, backend):
                            continue
                        name = backend if model.is_reference else f"{backend} [{model.label}]"
                        rows.append(
                            RowSpec(
                                name=name,
                                backend=backend,
                                model_label=model.label,
                                model_path=str(model.path),
                                scale=float(scale),
                                width=width,
                                height=height,
                                batch=batch,
                                device=_variant_device(backend),
                                warmup=config.warmup,
                                warmup_time=config.warmup_time,
                                iters=config.iters,
                                min_time=config.min_time,
                                threads=config.threads,
                                seed=config.seed,
                                upscale=model.config.upscale if model.config else None,
                            )
                        )
    return rows


def _unavailable_reason(backend: str) -> str | None:
    from overnet.runtime import backend_status
    from overnet.runtime.registry import find_variant

    if backend == AUTO:
        return None  # open_session says what is missing
    runtime = find_variant(backend)[0].name
    for status in backend_status():
        if status.name == runtime and not status.available:
            return status.reason
    return None


def _memory_check(spec: RowSpec, fraction: float) -> tuple[str | None, int | None]:
    """(refusal message or None, estimated bytes) for CPU whole-image rows."""
    if spec.device != "cpu":
        return None, None
    upscale = spec.upscale or max(2, int(np.ceil(spec.scale)) + 1)
    need = estimate_whole_image_bytes(spec.batch, spec.height, spec.width, upscale, spec.scale)
    have = available_bytes()
    if have is not None and need > fraction * have:
        return (
            f"whole-image inference needs about {need / 2**30:.1f} GiB (estimate) but "
            f"{have / 2**30:.1f} GiB is available; tile the image (overnet.runtime.Upscaler) "
            "or use a smaller size",
            need,
        )
    return None, need


def _prepare_exports(config: BenchConfig, say: Callable[[str], None]) -> list[str]:
    """Export checkpoints to the cached ONNX once, so cold start excludes the export."""
    from overnet.runtime import available_backends
    from overnet.runtime.model_source import cached_onnx
    from overnet.runtime.registry import find_variant

    have = set(available_backends())
    wants_onnx = AUTO in config.backends or any(
        "checkpoint" in spec.converts and spec.name in have
        for spec in (find_variant(b)[0] for b in config.backends if b != AUTO)
    )
    notes: list[str] = []
    if not wants_onnx:
        return notes
    for model in config.models:
        if model.kind != "checkpoint":
            continue
        for scale in model.scales or config.scales:
            if model.config is not None and scale > model.config.upscale:
                continue
            start = time.perf_counter()
            try:
                path = cached_onnx(model.path, float(scale))
            except Exception as exc:  # export problems show up again as row errors
                notes.append(f"ONNX export of {model.label} x{scale:g} failed: {exc}")
                continue
            took = time.perf_counter() - start
            if took > 1.0:  # a fresh export (reusing the cached file takes milliseconds)
                say(f"exported {model.label} x{scale:g} to ONNX in {took:.1f} s ({path})")
                notes.append(
                    f"{model.label} x{scale:g} exported to ONNX once in {took:.1f} s before "
                    "timing (cached; not part of cold start)"
                )
    return notes


def _psnr(config: BenchConfig, say: Callable[[str], None]) -> dict[str, Any] | None:
    from overnet.bench.model_figures import measure_set5

    ref = next((m for m in config.models if m.is_reference), None)
    if config.set5 is None or ref is None or not ref.real_weights or ref.config is None:
        return None
    scale = ref.config.scale
    if not float(scale).is_integer():
        return None
    say(f"measuring Set5 x{scale:g} PSNR ({config.set5}) ...")
    try:
        return measure_set5(ref.path, int(scale), config.set5)
    except Exception as exc:  # the speed figures stay useful without it
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_suite(
    config: BenchConfig,
    opener: Callable[[RowSpec], Any] | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> BenchReport:
    """Run every row; one row's failure is recorded and the suite goes on.

    ``opener`` replaces ``overnet.runtime.open_session`` (tests pass fake sessions); it
    forces in-process rows.
    """
    from overnet.bench.model_figures import model_section

    check_backends(config.backends)
    started = time.perf_counter()
    env = environment.collect(config.threads)
    notes = list(config.notes)
    rows = build_rows(config)
    if opener is None:
        notes += _prepare_exports(config, say)
    results: list[RowResult] = []
    outputs: dict[tuple, np.ndarray] = {}
    for i, spec in enumerate(rows, 1):
        say(
            f"[{i}/{len(rows)}] {spec.name} {spec.width}x{spec.height} x{spec.scale:g} "
            f"batch {spec.batch}"
        )
        load_at_start = environment.load_average()
        reason = _unavailable_reason(spec.backend) if opener is None else None
        if reason:
            results.append(RowResult(spec, status="unavailable", error=reason))
            continue
        refusal, need = _memory_check(spec, config.memory_fraction)
        if refusal:
            results.append(RowResult(spec, status="refused", error=refusal))
            continue
        have = available_bytes()
        big = need is not None and have is not None and need > 0.5 * have
        if opener is not None:
            result, out = run_row(spec, opener)
        elif config.isolate or big:
            result, out = run_row_isolated(spec)
            if big and not config.isolate:
                result.notes.append("run in a child process (estimate above half of free RAM)")
        else:
            result, out = run_row(spec)
        result.load_average = load_at_start
        _compare(spec, result, out, config, outputs, opener)
        notes += [
            f"{spec.name}: {n}" for n in result.info.get("notes") or [] if n.startswith(_ROW_NOTES)
        ]
        results.append(result)
        say("    " + _one_line(result))
    _speedups(results, config)
    model = model_section(
        _reference_config(config),
        config.scales,
        ", ".join(m.label for m in config.models if m.is_reference),
        any(m.real_weights for m in config.models if m.is_reference),
        _psnr(config, say) if opener is None else None,
    )
    env["load_average_end"] = environment.load_average()
    return BenchReport(
        command=config.command,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        environment=env,
        config=config.to_dict(),
        model=model,
        rows=results,
        notes=notes,
        duration_s=time.perf_counter() - started,
    )


def _reference_config(config: BenchConfig) -> OverNetConfig | None:
    refs = [m for m in config.models if m.is_reference]
    # Freshly initialised models (one per scale) follow the upstream pairing per scale.
    return refs[0].config if len(refs) == 1 else None


def _reference_for(config: BenchConfig, scale: float) -> ModelEntry | None:
    return next(
        (m for m in config.models if m.is_reference and (m.scales is None or scale in m.scales)),
        None,
    )


def _key(spec: RowSpec) -> tuple:
    return (spec.scale, spec.width, spec.height, spec.batch)


def _compare(
    spec: RowSpec,
    result: RowResult,
    out: np.ndarray | None,
    config: BenchConfig,
    outputs: dict[tuple, np.ndarray],
    opener: Callable[[RowSpec], Any] | None,
) -> None:
    """Agreement with the PyTorch fp32 output of the reference model on the same input."""
    if result.status != "ok" or out is None:
        return
    ref_model = _reference_for(config, spec.scale)
    key = _key(spec)
    if spec.backend == REFERENCE_BACKEND and ref_model and spec.model_label == ref_model.label:
        outputs[key] = out
        result.agreement = {"reference": True, "agrees": True}
        return
    if key not in outputs:
        if ref_model is None or opener is not None:
            result.agreement = None
            return
        try:  # no torch row in this suite: run the reference once, untimed
            ref_spec = RowSpec(
                **{**asdict(spec), "backend": REFERENCE_BACKEND, "model_path": str(ref_model.path)}
            )
            if config.isolate:
                kind, payload, _ = run_in_child(ref_spec, reference_only=True)
                if kind != "reference":
                    raise RuntimeError(str(payload))
                outputs[key] = payload
            else:
                outputs[key] = reference_output(ref_spec)
        except Exception as exc:
            result.notes.append(f"no PyTorch reference for the agreement check: {exc}")
            return
    precision = str(result.info.get("precision") or "fp32")
    result.agreement = agreement(out, outputs[key], precision)


def _speedups(results: list[RowResult], config: BenchConfig) -> None:
    baseline = config.baseline
    if baseline is None:
        baseline = next(
            (
                r.spec.name
                for r in results
                if r.spec.backend == "onnxruntime" and "[" in r.spec.name
            ),
            None,
        )
        config.baseline = baseline
    by_name = {(r.spec.name, _key(r.spec)): r for r in results if r.status == "ok"}
    for r in results:
        if r.status != "ok" or not r.median_s:
            continue
        ref = _reference_for(config, r.spec.scale)
        ref_label = ref.label if ref else None
        torch_row = next(
            (
                t
                for t in results
                if t.status == "ok"
                and t.spec.backend == REFERENCE_BACKEND
                and t.spec.model_label == ref_label
                and _key(t.spec) == _key(r.spec)
            ),
            None,
        )
        if torch_row is not None and torch_row.median_s:
            r.speedup_vs_torch = torch_row.median_s / r.median_s
        base = by_name.get((baseline, _key(r.spec))) if baseline else None
        if base is not None and base.median_s:
            r.ratio_vs_baseline = base.median_s / r.median_s


def _one_line(r: RowResult) -> str:
    if r.status != "ok":
        return f"{r.status}: {r.error}"
    return (
        f"median {r.median_s:.3f} s, cold start {r.cold_start_s:.2f} s, {r.images_per_s:.2f} img/s"
    )
