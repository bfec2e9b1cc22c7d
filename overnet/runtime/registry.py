"""Open a model on a backend by name; ``backend="auto"`` picks the fastest one available.

The backends are the ``BACKEND`` declarations of their modules (``overnet.runtime.spec``);
adding one is a new module and one line in ``DECLARED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overnet._optional import available, install_hint
from overnet.errors import InputError, MissingDependencyError
from overnet.formats.overscale_head import head_of
from overnet.runtime import (
    executorch_backend,
    litert_backend,
    openvino_backend,
    ort_backend,
    tensorrt_backend,
    torch_backend,
)
from overnet.runtime.base import Session
from overnet.runtime.model_source import KIND_NAMES, ModelSource, can_convert, detect_source
from overnet.runtime.overscale import OverscaleSession, overscale_head_of
from overnet.runtime.spec import BackendSpec, Variant

#: every backend overnet knows, in the order they are listed to users
DECLARED: tuple[BackendSpec, ...] = (
    openvino_backend.BACKEND,
    ort_backend.BACKEND,
    torch_backend.BACKEND,
    tensorrt_backend.BACKEND,
    litert_backend.BACKEND,
    executorch_backend.BACKEND,
)
BACKENDS: tuple[str, ...] = tuple(spec.name for spec in DECLARED)
#: every variant name -> (its backend, its options); each backend's own name is one too.
#: BACKENDS and VARIANTS are snapshots for help texts; the functions read DECLARED.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    variant.name: (spec.name, dict(variant.options))
    for spec in DECLARED
    for variant in spec.variants
}


def variant_names() -> list[str]:
    """Every name ``open_session`` and ``overnet bench`` accept besides "auto"."""
    return [variant.name for spec in DECLARED for variant in spec.variants]


def get_backend(name: str) -> BackendSpec:
    """The declaration of backend ``name`` (a backend, not a variant)."""
    for spec in DECLARED:
        if spec.name == name:
            return spec
    names = ", ".join(spec.name for spec in DECLARED)
    raise InputError(f"unknown backend {name!r}; expected one of {names}")


def find_variant(name: str) -> tuple[BackendSpec, Variant]:
    """The backend and variant for a variant name such as ``openvino-bf16``."""
    for spec in DECLARED:
        for variant in spec.variants:
            if variant.name == name:
                return spec, variant
    known = ", ".join(variant_names())
    raise InputError(f"unknown backend {name!r}; expected auto or one of {known}")


@dataclass(frozen=True)
class BackendStatus:
    name: str
    available: bool
    reason: str  # why it is unavailable ("" when available)


def _status(spec: BackendSpec) -> BackendStatus:
    for module, extra in ((spec.module, spec.extra), *spec.also_needs):
        if not available(module):
            what = "cuda-python" if module.startswith("cuda") else module
            return BackendStatus(
                spec.name, False, f"{what} is not installed ({install_hint(module, extra)})"
            )
    return BackendStatus(spec.name, True, "")


def backend_status() -> list[BackendStatus]:
    """Each backend and, when it cannot be used here, why (the package to install)."""
    return [_status(spec) for spec in DECLARED]


def available_backends() -> list[str]:
    return [s.name for s in backend_status() if s.available]


def unavailable_message(name: str) -> str:
    lines = [f"backend {name!r} is not available here."]
    for status in backend_status():
        state = "available" if status.available else f"unavailable: {status.reason}"
        lines.append(f"  {status.name}: {state}")
    return "\n".join(lines)


def choose_backend(source: ModelSource, device: str) -> str:
    """Fastest available backend for the model kind and device type ("cpu"/"cuda").

    The order is each declaration's ``rank`` for the device. On CPU a checkpoint may go
    through its cached ONNX export (OpenVINO is about 6x onnxruntime and torch here);
    on GPUs checkpoints stay in torch, which needs no export.
    """
    device = device.split(":")[0]
    candidates = [
        spec
        for spec in DECLARED
        if device in spec.rank
        and (
            source.kind in spec.loads
            or (device == "cpu" and source.kind in spec.converts and can_convert(source))
        )
    ]
    order = sorted(candidates, key=lambda spec: spec.rank[device])
    have = set(available_backends())
    for spec in order:
        if spec.name in have:
            return spec.name
    names = [s.name for s in order] or [s.name for s in DECLARED if s.can_load(source.kind)]
    raise MissingDependencyError(
        f"no installed backend can run {source.label} ({KIND_NAMES[source.kind]}) on "
        f"{device}; it needs one of {', '.join(names)}.\n" + unavailable_message(names[0])
    )


def check_backend_can_load(source: ModelSource, spec: BackendSpec) -> None:
    """Refuse a model file meant for another backend, saying which would load it."""
    if spec.can_load(source.kind):
        return
    loaders = [s.name for s in DECLARED if source.kind in s.loads]
    raise InputError(
        f"{source.label} is {KIND_NAMES[source.kind]}, which the {spec.name} backend cannot "
        f"load; use backend {' or '.join(loaders)}"
        + (", or export it first with `overnet export`" if source.kind == "engine" else "")
    )


def open_session(
    model: Any,
    backend: str = "auto",
    *,
    device: str = "cpu",
    precision: str | None = None,
    scale: float | None = None,
    threads: int | None = None,
    **backend_options: Any,
) -> Session:
    """Open ``model`` (ONNX file, TensorRT engine, checkpoint or torch module).

    ``backend`` is one of BACKENDS, a VARIANTS name (e.g. ``openvino-bf16``, ``torch-cl``)
    or "auto". ``backend_options`` are the backend's own (``providers`` for onnxruntime,
    ``channels_last`` for torch, ``cuda_graph``/``verify``/``trust_host_code`` for
    TensorRT...; see each BACKEND declaration); one the backend does not take is an
    InputError. The returned session's ``info`` says what actually runs.

    Any scale at any size: a checkpoint or module opened at a fractional ``scale`` (or
    with ``overscale=True``), and any file exported with ``--overscale``, runs a graph
    that ends at the overscaled features; the session (``OverscaleSession``) finishes
    them to ``scale`` on the host, and ``Upscaler`` tiles it at that scale.
    """
    source = detect_source(model)
    given: dict[str, Any] = {"precision": precision, "scale": scale, "threads": threads}
    file_head = overscale_head_of(source)
    convertible = source.kind in ("checkpoint", "module")
    fractional = scale is not None and not float(scale).is_integer()
    wanted = backend_options.pop("overscale", None)
    if file_head is None and not wanted and not (convertible and fractional):
        return _open(source, backend, device, given, backend_options)
    # The graph ends at the features: ``scale`` is the finished output's, not the graph's.
    if not convertible and file_head is None:
        raise InputError(
            f"{source.label} ends in RGB at its export scale, not at the overscaled features; "
            "export it with `overnet export --overscale` to run any scale"
        )
    # a checkpoint or module is told to stop at the features; a features file needs nothing
    given.update(scale=None, overscale=True if convertible else None)
    inner = _open(source, backend, device, given, backend_options)
    head = file_head or head_of(inner.info.metadata, source.label)
    if head is None:  # pragma: no cover - every backend records the head it exports
        raise AssertionError(f"{inner.info.backend} opened no overscale head")
    return OverscaleSession(inner, head, scale)


def _open(
    source: ModelSource,
    backend: str,
    device: str,
    given: dict[str, Any],
    backend_options: dict[str, Any],
) -> Session:
    """open_session once the overscale decision is made: ``given`` holds the options
    every backend takes (precision, scale, threads, overscale; None = not given)."""
    options: dict[str, Any] = {}
    if backend == "auto":
        spec = get_backend(choose_backend(source, device))
        if spec.name == "torch" and device == "cpu":
            options["channels_last"] = True  # 1.7x faster than NCHW on CPU (deployment facts)
    else:
        spec, variant = find_variant(backend)
        options.update(variant.options)
    if device != "cpu" or "device" not in options:  # an explicit device wins over a variant's
        options["device"] = device
    options.update({k: v for k, v in given.items() if v is not None})
    options.update({k: v for k, v in backend_options.items() if v is not None})
    unknown = sorted(set(options) - spec.accepted_options)
    if unknown:
        raise InputError(
            f"the {spec.name} backend does not take {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(spec.accepted_options))}"
        )
    status = _status(spec)
    if not status.available:
        raise MissingDependencyError(unavailable_message(spec.name))
    check_backend_can_load(source, spec)
    if options.get("precision") == "auto":
        return _open_auto_precision(spec, source, options)
    return spec.factory(source, options)


def _open_auto_precision(spec: BackendSpec, source: ModelSource, options: dict[str, Any]):
    """The first candidate precision the backend opens (overnet.runtime.precision); the
    choice and the reason go into ``info.notes``."""
    from overnet.runtime.precision import AUTO_BOUND_DB, auto_candidates

    candidates = auto_candidates(spec, options.get("device", "cpu"), source)
    refused: list[str] = []
    for index, (precision, why) in enumerate(candidates):
        attempt = {k: v for k, v in options.items() if k != "precision"}
        if precision is not None:
            attempt["precision"] = precision
        try:
            session = spec.factory(source, attempt)
        except InputError as exc:  # e.g. OpenVINO reports no BF16 on this CPU
            if index == len(candidates) - 1:
                raise
            refused.append(f"{precision} refused: {exc}")
            continue
        note = f"precision auto: {session.info.precision} ({why}"
        if session.info.precision != "fp32":
            note += f"; output >= {AUTO_BOUND_DB:g} dB PSNR against fp32"
        session.info.notes.insert(0, "; ".join([note + ")", *refused]))
        return session
    raise AssertionError("auto_candidates always ends with fp32")  # pragma: no cover
