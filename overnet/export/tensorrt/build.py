"""ONNX -> strongly typed TensorRT network -> serialized engine (TensorRT 10.1+ and 11.x).

Precision comes from the ONNX file (float16 tensors with FP32 Casts where needed): the
network is strongly typed, the only mode TensorRT 11 has. Weak-typing switches
(``BuilderFlag.FP16``/``BF16``/``INT8``/``OBEY_PRECISION_CONSTRAINTS``,
``platform_has_fast_fp16``) and ``EXPLICIT_BATCH`` are never touched: they are gone in 11,
and guarding them with ``hasattr`` would silently build FP32 engines there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from overnet._atomic import write_bytes_atomic
from overnet._optional import require
from overnet.errors import InputError, OverNetError
from overnet.export.tensorrt.options import HARDWARE_COMPAT, BuildOptions
from overnet.formats.onnx_metadata import INPUT_NAME
from overnet.formats.profile import Profile
from overnet.trt_logger import shared_logger


class EngineBuildError(OverNetError):
    """TensorRT could not parse the ONNX file or build the engine."""


def load_tensorrt(purpose: str = "building TensorRT engines") -> ModuleType:
    """``import tensorrt`` or MissingDependencyError naming the extra and NVIDIA's index."""
    return require("tensorrt", purpose)


def network_flags(trt: ModuleType) -> int:
    """Creation flags: strongly typed only. The bit is computed from the enum because its
    value differs between TensorRT 10 and 11."""
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def describe_parser_error(error: Any) -> str:
    """``node 'Conv_12' (Conv): <description>`` for one IParserError; ``node #12`` for an
    unnamed node, ``no node`` for an error about the whole model (``node()`` is -1)."""
    name = error.node_name()
    operator = error.node_operator()
    index = int(error.node())
    where = f"node '{name}'" if name else (f"node #{index}" if index >= 0 else "no node")
    if operator:
        where += f" ({operator})"
    return f"{where}: {error.desc()}"


def parse_onnx(trt: ModuleType, builder: Any, logger: Any, onnx: Path) -> tuple[Any, Any]:
    """A strongly typed network from ``onnx``; EngineBuildError naming the failing nodes.

    Returns (network, parser): the parser owns the weights the network refers to, so it
    must live until the engine is built.
    """
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        errors = [describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        detail = "\n  ".join(errors) or "no error recorded by the parser"
        raise EngineBuildError(
            f"TensorRT's ONNX parser rejected {onnx}:\n  {detail}\n"
            "Check the file with `overnet check` (its TensorRT lint names unsupported ops)."
        )
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    names = [t.name for t in inputs]
    if names != [INPUT_NAME]:
        raise EngineBuildError(
            f"{onnx} has inputs {names}; an overnet export has one input '{INPUT_NAME}'. "
            "Export it with `overnet export` (upstream ONNX files take a scale input)."
        )
    return network, parser


def load_timing_cache(
    trt: ModuleType, config: Any, path: Path | None, echo: Callable[[str], None] = print
) -> tuple[Any, bool]:
    """Attach a timing cache to ``config``: the one in ``path`` when it exists and TensorRT
    accepts it (reused = True), else a fresh empty one. Returns (cache or None, reused).

    ``set_timing_cache(cache, ignore_mismatch=False)`` returns False for a cache from another
    GPU or TensorRT version; such a cache is replaced by a fresh one (with a warning) rather
    than silently reported as reused.
    """
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    cache = None
    if data:
        try:
            cache = config.create_timing_cache(data)
        except Exception as exc:  # a damaged file: TensorRT raises or returns None
            echo(f"  warning: timing cache {path} could not be read ({exc}); starting a new one")
        else:
            if cache is None:
                echo(f"  warning: TensorRT could not read timing cache {path}; starting a new one")
            elif not config.set_timing_cache(cache, False):
                echo(
                    f"  warning: timing cache {path} was not accepted (made on another GPU or "
                    "TensorRT version?); starting a new one, which replaces it after the build"
                )
                cache = None
            else:
                return cache, True
    fresh = config.create_timing_cache(b"")
    if fresh is None or not config.set_timing_cache(fresh, False):
        echo("  warning: TensorRT could not create a timing cache; building without one")
        return None, False
    return fresh, False


def save_timing_cache(config: Any, path: Path, echo: Callable[[str], None] = print) -> bool:
    """Serialize the (grown) timing cache atomically; a failure is a warning (False), never an
    error: the engine is already written and its sidecar must follow."""
    cache = config.get_timing_cache()
    if cache is None:
        echo(f"  warning: TensorRT returned no timing cache; {path} not saved")
        return False
    try:
        write_bytes_atomic(path, bytes(cache.serialize()))
    except Exception as exc:  # best effort: a lost cache only makes the next build slower
        echo(f"  warning: could not save the timing cache {path}: {exc}")
        return False
    return True


def configure(
    trt: ModuleType, builder: Any, network: Any, profile: Profile, options: BuildOptions
) -> Any:
    """A builder config with the profile, workspace, optimisation level and compatibility."""
    config = builder.create_builder_config()
    if options.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace)
    if options.opt_level is not None:
        config.builder_optimization_level = options.opt_level
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.hardware_compat != "none":
        member = HARDWARE_COMPAT[options.hardware_compat]
        level = getattr(trt.HardwareCompatibilityLevel, member, None)
        if level is None:  # SAME_COMPUTE_CAPABILITY is newer than some 10.x releases
            raise InputError(
                f"--hardware-compat {options.hardware_compat} needs "
                f"trt.HardwareCompatibilityLevel.{member}, which TensorRT {trt.__version__} "
                "does not have; upgrade TensorRT or use --hardware-compat ampere+"
            )
        config.hardware_compatibility_level = level
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT_NAME, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)
    return config


@dataclass
class BuildResult:
    engine: Path
    engine_bytes: int
    seconds: float
    tensorrt_version: str
    timing_cache: Path | None
    timing_cache_reused: bool
    timing_cache_saved: bool = False
    phase_seconds: dict[str, float] = field(default_factory=dict)


def build_engine(
    onnx: str | Path,
    engine: str | Path,
    profile: Profile,
    options: BuildOptions | None = None,
    *,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> BuildResult:
    """Build ``onnx`` into the serialized engine file ``engine`` (written atomically)."""
    trt = load_tensorrt()
    onnx, engine = Path(onnx), Path(engine)
    options = options or BuildOptions()
    if not onnx.is_file():
        raise InputError(f"ONNX file {onnx} does not exist")
    start = time.perf_counter()
    logger = shared_logger(trt)  # one per process, shared with the engine loader
    builder = trt.Builder(logger)
    echo(f"  parsing {onnx.name} (strongly typed network)")
    network, parser = parse_onnx(trt, builder, logger, onnx)
    config = configure(trt, builder, network, profile, options)
    monitor = None
    if progress:
        from overnet.export.tensorrt.progress import make_progress_monitor

        monitor = make_progress_monitor(trt, echo)
        config.progress_monitor = monitor
    cache, reused = load_timing_cache(trt, config, options.timing_cache, echo)
    if options.timing_cache is not None and cache is not None:
        state = "reusing" if reused else "creating"
        echo(f"  {state} timing cache {options.timing_cache}")
    echo("  building the engine (minutes on first build; the timing cache speeds up rebuilds)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"TensorRT failed to build an engine from {onnx} (see its log above); common "
            "causes: the --max shape needs more GPU memory than is free (lower --max or "
            "--workspace), or an op without an FP16 kernel on this GPU"
        )
    data = bytes(serialized)
    del parser  # kept alive until here: it owns the weights the network used
    write_bytes_atomic(engine, data)
    saved = False
    if options.timing_cache is not None and cache is not None:
        saved = save_timing_cache(config, options.timing_cache, echo)
    seconds = time.perf_counter() - start
    return BuildResult(
        engine=engine,
        engine_bytes=len(data),
        seconds=seconds,
        tensorrt_version=str(trt.__version__),
        timing_cache=options.timing_cache,
        timing_cache_reused=reused,
        timing_cache_saved=saved,
        phase_seconds=dict(getattr(monitor, "phase_seconds", {}) or {}),
    )
