"""The trtexec command line that builds the same engine as ``overnet export``."""

from __future__ import annotations

import shlex
from pathlib import Path

from overnet.export.tensorrt.options import TRTEXEC_HARDWARE_COMPAT, BuildOptions
from overnet.formats.onnx_metadata import INPUT_NAME
from overnet.formats.profile import Profile


def trtexec_args(onnx: Path, engine: Path, profile: Profile, options: BuildOptions) -> list[str]:
    """Arguments for trtexec (TensorRT 10/11): strongly typed, so no --fp16 (the FP16
    precision comes from the ONNX file itself)."""
    lo, opt, hi = profile.texts()
    args = [
        "trtexec",
        f"--onnx={onnx}",
        f"--saveEngine={engine}",
        "--stronglyTyped",
        f"--minShapes={INPUT_NAME}:{lo}",
        f"--optShapes={INPUT_NAME}:{opt}",
        f"--maxShapes={INPUT_NAME}:{hi}",
    ]
    if options.workspace is not None:
        args.append(f"--memPoolSize=workspace:{max(1, options.workspace >> 20)}M")
    if options.opt_level is not None:
        args.append(f"--builderOptimizationLevel={options.opt_level}")
    if options.timing_cache is not None:
        args.append(f"--timingCacheFile={options.timing_cache}")
    if options.version_compatible:
        args.append("--versionCompatible")
    if options.hardware_compat != "none":
        args.append(
            f"--hardwareCompatibilityLevel={TRTEXEC_HARDWARE_COMPAT[options.hardware_compat]}"
        )
    return args


def trtexec_command(onnx: Path, engine: Path, profile: Profile, options: BuildOptions) -> str:
    """One shell-quoted line."""
    return shlex.join(trtexec_args(onnx, engine, profile, options))
