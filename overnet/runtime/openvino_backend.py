"""OpenVINO backend: the fastest CPU runtime measured here (f32; bf16 where the CPU has it).

Loads ONNX files and OpenVINO IR (``model.xml`` + ``model.bin`` from ``overnet export
--format openvino``, overnet's metadata in the IR's ``rt_info``), and compiles through
OpenVINO's compiled-model cache (``CACHE_DIR`` = ``cache_dir()/"openvino"``) so a second
open of the same file and settings skips compilation. ``precision="int8"`` runs an INT8 IR
(a checkpoint's INT8 IR registered in the cache by ``overnet export --int8``), behind
its run-time guard (``overnet.runtime.int8_guard``; ``guard=False`` turns it off).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.cache import cache_dir
from overnet.errors import InputError, MissingDependencyError, ModelLoadError
from overnet.formats.ir_metadata import read_ir_metadata
from overnet.runtime.base import Session, SessionInfo, as_numpy
from overnet.runtime.model_source import IR_SUFFIXES, ModelSource, onnx_model_for
from overnet.runtime.onnx_common import (
    OnnxModelFacts,
    facts_from_metadata,
    input_feeds,
    onnx_facts,
    probe_scale,
)
from overnet.runtime.spec import BackendSpec, Variant

#: our precision names -> OpenVINO inference precision hints
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


@dataclass
class CompiledOnnx:
    """An ONNX or IR file compiled by OpenVINO for one device and precision."""

    compiled: Any  # openvino.CompiledModel
    facts: OnnxModelFacts
    device: str  # "cpu", "gpu", ...
    precision: str  # what runs: fp32, bf16, fp16, or int8 (an INT8 file)
    notes: list[str] = field(default_factory=list)


def compile_cache_dir() -> Path:
    """OpenVINO's compiled-model cache (``CACHE_DIR``) under the overnet cache."""
    return cache_dir() / "openvino"


def int8_ir_path(checkpoint: Path, scale: float | None) -> Path:
    """Where ``overnet export --format openvino --int8`` registers the INT8 IR of
    ``checkpoint`` for the ``openvino-int8`` variant: keyed by the file's sha256, the scale
    and the overnet version."""
    from overnet._version import __version__
    from overnet.formats.digest import sha256_file

    tag = f"x{scale:g}" if scale is not None else "native"
    name = f"{sha256_file(checkpoint)[:16]}-{tag}-overnet{__version__}"
    return cache_dir() / "openvino-int8" / name / "model.xml"


def model_facts(path: Path, scale: float | None) -> OnnxModelFacts:
    """Scale, precision and metadata of an ONNX file or an IR ``.xml``."""
    if not str(path).lower().endswith(IR_SUFFIXES):
        return onnx_facts(path, scale)
    return facts_from_metadata(
        path, read_ir_metadata(path), scale, "overnet export --format openvino"
    )


def _float_precision(
    core: Any, device: str, requested: str | None, facts: OnnxModelFacts
) -> tuple[str, list[str]]:
    """The precision OpenVINO computes float layers in: the one asked for; else (None, or
    "int8" for an INT8 file) the file's ``overnet.precision_hint``, else fp32."""
    hint = facts.metadata.get("overnet.precision_hint", "fp32")
    if requested == "int8":
        if facts.precision != "int8":
            raise InputError(
                f"{facts.path} is not an INT8 model (precision {facts.precision}); make one with "
                "`overnet export --format openvino --int8 --calibration DIR`"
            )
        requested = None
    if requested is not None:
        return requested, []
    ov_device = "CPU" if device == "cpu" else device.upper()
    if hint in _CAPABILITY and ov_device in core.available_devices:
        capabilities = list(core.get_property(ov_device, "OPTIMIZATION_CAPABILITIES"))
        if _CAPABILITY[hint] not in capabilities:
            return "fp32", [f"the file's {hint} hint is not native on {ov_device}: fp32 runs"]
    return hint, [f"precision from the file's hint ({hint})"] if hint != "fp32" else []


def _check_device(core: Any, device: str, precision: str) -> str:
    """OpenVINO's device name; refuses a precision the device would quietly replace."""
    ov_device = "CPU" if device == "cpu" else device.upper()
    if ov_device not in core.available_devices:
        raise MissingDependencyError(
            f"OpenVINO device {ov_device} is not available (available: "
            f"{', '.join(core.available_devices)})"
        )
    if precision not in _HINTS:
        raise InputError(f"precision must be one of {', '.join(_HINTS)}, got {precision!r}")
    capabilities = list(core.get_property(ov_device, "OPTIMIZATION_CAPABILITIES"))
    if precision in _CAPABILITY and _CAPABILITY[precision] not in capabilities:
        # OpenVINO would quietly run f32 instead; say so rather than mislabel the result.
        raise InputError(
            f"OpenVINO cannot run {precision} on this {ov_device} (capabilities: "
            f"{', '.join(capabilities)}); use precision fp32"
        )
    return ov_device


def usable_cpus() -> int:
    """CPUs this process may run on (its mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def compile_onnx(
    path: Path,
    *,
    device: str = "cpu",
    precision: str | None = "fp32",
    scale: float | None = None,
    threads: int | None = None,
    cache: bool = True,
) -> CompiledOnnx:
    """Compile the ONNX file or IR ``.xml`` at ``path``; ModelLoadError (cause kept) when
    OpenVINO cannot. ``precision`` None: the file's hint (IR), else fp32; "int8": an INT8
    file with its recorded float precision. ``cache``: OpenVINO's compiled-model cache."""
    ov = require("openvino", "the openvino backend")
    facts = model_facts(Path(path), scale)
    core = ov.Core()
    precision, notes = _float_precision(core, device, precision, facts)
    ov_device = _check_device(core, device, precision)
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": _HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
        if ov_device == "CPU" and int(threads) < usable_cpus():
            # OpenVINO pins its threads to the first CPUs of the process's mask: two
            # 1-thread processes then share CPU 0 and each runs at half speed (measured:
            # 1.96x the time alone; unpinned 1.01x; benchmarks/openvino_pinning.py)
            config["ENABLE_CPU_PINNING"] = False
            notes.append(f"CPU pinning off ({threads} of {usable_cpus()} CPUs)")
    if cache and _writable(compile_cache_dir()):
        config["CACHE_DIR"] = str(compile_cache_dir())
    elif cache:
        notes.append(f"compiled-model cache {compile_cache_dir()} is not writable: not used")
    try:
        # compiled from the path: with a cache hit OpenVINO skips reading the model too
        compiled = core.compile_model(str(path), ov_device, config)
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long text
        raise ModelLoadError(f"OpenVINO could not load {path}: {exc}") from exc
    if facts.precision == "int8":
        kept = facts.metadata.get("overnet.int8_float_layers", "")
        drop = facts.metadata.get("overnet.int8_drop_db")
        notes.append(
            f"INT8 model ({len(kept.split(',')) if kept else 0} layers kept in float"
            + (f"; PSNR-Y drop {float(drop):.3f} dB measured at export" if drop else "")
            + ")"
        )
        precision = "int8"
    return CompiledOnnx(compiled, facts, device, precision, notes)


class OpenVinoSession(Session):
    """A compiled ONNX/IR model (``compile_onnx``) with one infer request (dynamic shapes)."""

    def __init__(self, loaded: CompiledOnnx) -> None:
        compiled, facts = loaded.compiled, loaded.facts
        self._compiled = compiled
        inputs = [
            (i.get_any_name(), i.get_partial_shape().rank.get_length()) for i in compiled.inputs
        ]
        self._input, self._extra = input_feeds(inputs, facts)
        self._request = compiled.create_infer_request()
        actual = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.info = SessionInfo(
            backend="openvino",
            device=", ".join(compiled.get_property("EXECUTION_DEVICES")),
            device_type="cpu" if loaded.device == "cpu" else "gpu",
            precision=loaded.precision,
            scale=facts.scale if facts.scale is not None else probe_scale(self._raw_run),
            upscale=facts.upscale,
            model=str(facts.path),
            threads=int(compiled.get_property("INFERENCE_NUM_THREADS")) or None,
            metadata=facts.metadata,
            notes=[f"inference precision {actual}", *loaded.notes],
        )
        if facts.precision == "fp16":
            self.info.notes.append("fp16 file: OpenVINO computes in the precision above")

    def _raw_run(self, batch: np.ndarray) -> np.ndarray:
        # infer() copies the output into a new array (share_outputs=False): the caller's own.
        # Not lent (share_outputs=True): with dynamic shapes the request reallocates its
        # output tensor for the next shape, and a view kept past that points at freed memory
        result = self._request.infer({self._input: batch, **self._extra})
        out = result[self._compiled.outputs[0]]
        return out if out.dtype == np.float32 else out.astype(np.float32)

    def _run(self, batch: Any) -> np.ndarray:
        return self._raw_run(as_numpy(batch))

    def release_memory(self) -> None:
        # OpenVINO keeps each graph's intermediate buffers at the largest shape it has run:
        # a long-lived process (a service replica) that saw one large image holds them
        if self._compiled is not None:
            self._compiled.release_memory()

    def close(self) -> None:
        self._request = None
        self._compiled = None
        super().close()


def cached_int8_ir(checkpoint: Path, scale: float | None) -> Path:
    """The INT8 IR ``overnet export --int8`` registered for ``checkpoint``; InputError
    saying how to make one when there is none."""
    path = int8_ir_path(checkpoint, scale)
    if not path.is_file():
        at = f" x{scale:g}" if scale is not None else ""
        raise InputError(
            f"no INT8 model of {checkpoint.name}{at} is registered ({path}); make one with "
            f"`overnet export --weights {checkpoint.name} --format openvino --int8 "
            "--calibration DIR -o DIR` (it registers it), or open an INT8 model.xml"
        )
    return path


def guarded(session: OpenVinoSession, xml: Path, options: dict[str, Any]) -> Session:
    """``session`` (an INT8 IR) behind its run-time guard when the file carries one and its
    float twin is beside it (``overnet.runtime.int8_guard``); else ``session`` itself."""
    from overnet.runtime.int8_guard import GuardedSession, GuardSpec

    metadata = session.info.metadata
    spec = GuardSpec.from_metadata(metadata)
    twin = metadata.get("overnet.int8_float_model")
    if spec is None or not twin:
        return session
    float_xml = xml.parent / twin
    if not float_xml.is_file():
        session.info.notes.append(f"INT8 guard off: its float model {float_xml} is missing")
        return session

    def open_float() -> OpenVinoSession:  # float layers' precision: the file's hint
        return OpenVinoSession(compile_onnx(float_xml, precision=None, **options))

    return GuardedSession(session, open_float, spec)


def _open(source: ModelSource, options: dict[str, Any]) -> Session:
    precision = options.pop("precision", None)
    guard = options.pop("guard", True)
    if precision == "int8" and source.kind == "checkpoint":
        assert source.path is not None
        if options.pop("overscale", False):
            raise InputError(
                "the INT8 model is calibrated and gated at integer scales; it has no "
                "overscale graph: use openvino or openvino-bf16 for fractional scales"
            )
        path = cached_int8_ir(source.path, options.pop("scale", None))
    else:  # an IR or ONNX file as given, a checkpoint through its cached fp32 ONNX export
        path = onnx_model_for(source, options, "fp32")  # OpenVINO picks its own precision
    session = OpenVinoSession(compile_onnx(path, precision=precision, **options))
    if session.info.precision == "int8" and guard:  # an INT8 file, however it was asked for
        options.pop("scale", None)
        return guarded(session, Path(path), options)
    return session


BACKEND = BackendSpec(
    name="openvino",
    module="openvino",
    extra="openvino",
    loads=("onnx", "ir"),
    converts=("checkpoint",),
    factory=_open,
    rank={"cpu": 0, "cuda": 1},
    fast_precisions={"cpu": ("bf16",)},
    options=frozenset({"guard"}),  # INT8: tiles outside the calibration run in float
    # peak-RSS growth per input pixel: 13,093 B (upscale 3) / 16,878 B (upscale 4)
    memory=(8_200, 545),
    variants=(
        Variant("openvino", summary="OpenVINO fp32 (CPU default)"),
        Variant(
            "openvino-bf16",
            {"precision": "bf16"},
            summary="OpenVINO bf16 (CPUs with AVX512_BF16/AMX)",
        ),
        Variant(
            "openvino-int8",
            {"precision": "int8"},
            summary="OpenVINO INT8 IR behind a PSNR-Y gate (overnet export --int8)",
        ),
    ),
    summary="ONNX or OpenVINO IR through OpenVINO: the fastest CPU runtime measured here",
)
