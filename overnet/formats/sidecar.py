"""The JSON file beside each engine (``<engine>.json``) and the load-time compatibility check.

The engine itself stays a plain serialized TensorRT plan (no header glued on), so trtexec,
Polygraphy and Triton read it as is; everything overnet needs to know lives here.

``format`` numbers the layout. A reader accepts every format from 1 to ``SIDECAR_FORMAT``
and refuses a newer one (written by a newer overnet, whose fields it cannot know) with
what to do: upgrade overnet or rebuild the engine. A sidecar without ``format`` is read as
format 1: the field has been written since the first sidecar, so only a hand-made or
hand-edited file lacks it, and format 1 is the layout such a file can only be.

Format 2 added ``head``: the ``OverscaleHead`` text of an engine built from an
``--overscale`` ONNX (its output is the overscaled features, not RGB; empty otherwise). A
format-1 reader would run such an engine as an RGB one, so it must refuse the file; format-1
files still read, with no head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from overnet._atomic import write_text_atomic
from overnet.errors import InputError

#: the layout this overnet writes; it reads formats 1..SIDECAR_FORMAT
SIDECAR_FORMAT = 2


class EngineMismatchError(InputError):
    """The engine was built for another TensorRT version or GPU; the message says how to
    rebuild it."""


def sidecar_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


@dataclass
class EngineSidecar:
    """What an engine was built from and for."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.6"
    precision: str  # "fp16"
    scale: float
    upscale: int
    profile: dict[str, list[int]]  # {"min": [N, C, H, W], "opt": [...], "max": [...]}
    input_name: str
    output_name: str
    onnx_sha256: str
    engine_bytes: int
    engine_sha256: str
    build_options: dict[str, Any]
    build_seconds: float
    rebuild_command: str
    trtexec_command: str = ""
    onnx_file: str = ""
    weights_sha256: str = ""
    overnet_version: str = ""
    built_at: str = ""
    phase_seconds: dict[str, float] = field(default_factory=dict)
    timing_cache_reused: bool = False
    #: OverscaleHead.to_text() of a features engine (``--overscale``); "" for RGB engines
    head: str = ""
    format: int = SIDECAR_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def write_sidecar(engine: str | Path, sidecar: EngineSidecar) -> Path:
    """Write ``<engine>.json`` atomically."""
    return write_text_atomic(sidecar_path(engine), sidecar.to_json())


def read_sidecar(engine: str | Path) -> EngineSidecar:
    """Read ``<engine>.json``; InputError when it is missing or not an overnet sidecar."""
    path = sidecar_path(engine)
    if not path.is_file():
        raise InputError(
            f"{engine} has no sidecar {path.name} beside it, so its TensorRT version, GPU and "
            "scale cannot be checked; rebuild it with `overnet export --format tensorrt`, or "
            "open it with verify=False if you know it matches this machine"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        fmt = _check_format(path, data)
        known = set(EngineSidecar.__dataclass_fields__)
        return EngineSidecar(**{**{k: v for k, v in data.items() if k in known}, "format": fmt})
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a valid overnet engine sidecar: {exc}") from exc


def _check_format(path: Path, data: dict[str, Any]) -> int:
    """The format of ``data``: 1..SIDECAR_FORMAT (missing: 1); newer ones are refused
    (InputError saying what to do), anything else is invalid (ValueError)."""
    fmt = data.get("format", 1)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise ValueError(f"format must be a whole number from 1, got {fmt!r}")
    if fmt > SIDECAR_FORMAT:
        from overnet._version import __version__

        writer = data.get("overnet_version")
        rebuild = data.get("rebuild_command")
        raise InputError(
            f"{path} is sidecar format {fmt}, written by a newer overnet"
            + (f" ({writer})" if isinstance(writer, str) and writer else "")
            + f"; this overnet {__version__} reads formats up to {SIDECAR_FORMAT}. To use the "
            "engine, upgrade overnet (pip install --upgrade overnet), or rebuild it with "
            "this one" + (f":\n  {rebuild}" if isinstance(rebuild, str) and rebuild else "")
        )
    return fmt


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


#: (built major, running major) pairs across which TensorRT runs version-compatible engines.
#: NVIDIA's support matrix (TensorRT 11.x): "TensorRT 10 version-compatible engines can run
#: with a TensorRT 11 runtime, and TensorRT 8 version-compatible engines can run with a
#: TensorRT 10 runtime. No other combination across major versions is supported."
CROSS_MAJOR_VERSION_COMPAT = frozenset({(8, 10), (10, 11)})
#: version compatibility starts with TensorRT 8.6 (builder and runtime)
FIRST_VERSION_COMPATIBLE = (8, 6)


def version_compatible_problem(built: str, running: str) -> str | None:
    """Why a version-compatible engine built with TensorRT ``built`` cannot run on
    ``running`` (None when it can): the same major version from ``built`` on, or one of the
    cross-major pairs in CROSS_MAJOR_VERSION_COMPAT."""
    b, r = _version_tuple(built), _version_tuple(running)
    majors = sorted(r_major for b_major, r_major in CROSS_MAJOR_VERSION_COMPAT if b_major == b[0])
    allowed = f"TensorRT {built} or a newer {b[0]}.x" + "".join(f", or {m}.x" for m in majors)
    if b[:2] < FIRST_VERSION_COMPATIBLE or r[:2] < FIRST_VERSION_COMPATIBLE:
        return (
            f"built version-compatible with TensorRT {built}, this is TensorRT {running}; "
            "version compatibility needs TensorRT 8.6 or newer on both sides"
        )
    if b[0] == r[0] and r >= b:
        return None
    if (b[0], r[0]) in CROSS_MAJOR_VERSION_COMPAT:
        return None
    return (
        f"built version-compatible with TensorRT {built}, which needs {allowed} "
        f"(NVIDIA supports no other combination); this is TensorRT {running}"
    )


def compatibility_problems(
    sidecar: EngineSidecar, tensorrt_version: str, gpu_name: str, compute_capability: str
) -> list[str]:
    """Why this engine cannot run with this TensorRT on this GPU (empty when it can).

    Plain engines need the exact TensorRT version and the same GPU model; version-compatible
    ones run on the same or a newer TensorRT of the same major version, or across the major
    versions TensorRT documents (8 -> 10, 10 -> 11; see version_compatible_problem); hardware
    compatibility relaxes the GPU check to the same compute capability (same-cc) or any
    Ampere-or-newer GPU (ampere+).
    """
    problems = []
    options = sidecar.build_options or {}
    built, running = sidecar.tensorrt_version, tensorrt_version
    if options.get("version_compatible"):
        problem = version_compatible_problem(built, running)
        if problem:
            problems.append(problem)
    elif running != built:
        problems.append(f"built with TensorRT {built}, this is TensorRT {running}")
    compat = options.get("hardware_compat", "none")
    if compat == "ampere+":
        if _version_tuple(compute_capability) < (8, 0):
            problems.append(
                f"built for Ampere or newer GPUs (ampere+), this GPU {gpu_name} has compute "
                f"capability {compute_capability}"
            )
    elif compat == "same-cc":
        if compute_capability != sidecar.compute_capability:
            problems.append(
                f"built for compute capability {sidecar.compute_capability}, this GPU "
                f"{gpu_name} has {compute_capability}"
            )
    elif gpu_name != sidecar.gpu_name or compute_capability != sidecar.compute_capability:
        problems.append(
            f"built on {sidecar.gpu_name} (compute capability {sidecar.compute_capability}), "
            f"this GPU is {gpu_name} ({compute_capability})"
        )
    return problems


def check_compatible(
    engine: str | Path,
    sidecar: EngineSidecar,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: str,
) -> None:
    """Raise EngineMismatchError, with the exact rebuild command, on any mismatch."""
    problems = compatibility_problems(sidecar, tensorrt_version, gpu_name, compute_capability)
    if problems:
        raise EngineMismatchError(
            f"{engine} cannot run here: " + "; ".join(problems) + ". TensorRT engines are tied "
            "to the TensorRT version and GPU they were built with. Rebuild it on this machine "
            f"with:\n  {sidecar.rebuild_command}"
        )


def check_engine_file(engine: str | Path, sidecar: EngineSidecar) -> bytes:
    """Read the engine and check its size and sha256 against the sidecar (a truncated or
    replaced file is reported before TensorRT sees it)."""
    data = Path(engine).read_bytes()
    if sidecar.engine_bytes and len(data) != sidecar.engine_bytes:
        raise InputError(
            f"{engine} is {len(data)} bytes but was written as {sidecar.engine_bytes} bytes: "
            f"the file is truncated or damaged (an interrupted copy?). Copy it again or "
            f"rebuild it with:\n  {sidecar.rebuild_command}"
        )
    if sidecar.engine_sha256 and hashlib.sha256(data).hexdigest() != sidecar.engine_sha256:
        raise InputError(
            f"{engine} does not match the sha256 in {sidecar_path(engine).name}: the engine "
            f"was replaced or damaged after it was built. Rebuild it with:\n  "
            f"{sidecar.rebuild_command}"
        )
    return data
