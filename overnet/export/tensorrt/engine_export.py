"""``overnet export --format tensorrt``: for each scale, FP16 ONNX -> engine + sidecar.

With ``overscale`` one engine per model instead: built from the ``--overscale`` ONNX (its
output is the overscaled features), it serves every scale in [1, upscale]; its sidecar
carries the head that finishes the features (``head``), which the runtime applies.
"""

from __future__ import annotations

import datetime
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from overnet._atomic import remove_stale_temps
from overnet._version import __version__
from overnet.errors import InputError
from overnet.export.tensorrt.build import BuildResult, build_engine, load_tensorrt
from overnet.export.tensorrt.options import BuildOptions
from overnet.export.tensorrt.trtexec import trtexec_command
from overnet.formats.digest import sha256_file
from overnet.formats.onnx_metadata import INPUT_NAME, OUTPUT_NAME
from overnet.formats.overscale_head import HEAD_KEY
from overnet.formats.profile import Profile, engine_file_name, onnx_file_name
from overnet.formats.sidecar import EngineSidecar, sidecar_path, write_sidecar
from overnet.units import format_memory

TIMING_CACHE_NAME = "overnet.timing-cache"


@dataclass
class EngineExport:
    scale: float
    onnx: Path
    engine: Path
    sidecar: Path
    trtexec: str
    build: BuildResult


def rebuild_command(
    weights: str | Path,
    scales: Sequence[float],
    profile: Profile,
    options: BuildOptions,
    outdir: str | Path,
    *,
    overscale: bool = False,
) -> str:
    """The ``overnet export`` line that rebuilds these engines (stored in each sidecar).

    It leaves out ``--timing-cache``: the line is meant for another machine (another GPU or
    TensorRT version), where this cache does not apply; the rebuild makes its own in OUT.
    """
    lo, opt, hi = profile.texts()
    args = ["overnet", "export", "--format", "tensorrt", "--weights", str(Path(weights).resolve())]
    if overscale:  # one engine serves every scale: no --scales
        args.append("--overscale")
    else:
        args += ["--scales", ",".join(f"{float(s):g}" for s in scales)]
    args += [
        "--min",
        lo,
        "--opt",
        opt,
        "--max",
        hi,
    ]
    if options.workspace is not None:
        args += ["--workspace", format_memory(options.workspace)]
    if options.opt_level is not None:
        args += ["--opt-level", str(options.opt_level)]
    if options.version_compatible:
        args.append("--version-compatible")
    if options.hardware_compat != "none":
        args += ["--hardware-compat", options.hardware_compat]
    args += ["-o", str(Path(outdir).resolve()), "--overwrite"]
    return shlex.join(args)


def build_with_sidecar(
    onnx: Path,
    engine: Path,
    profile: Profile,
    options: BuildOptions,
    *,
    rebuild: str,
    gpu_index: int = 0,
    echo: Callable[[str], None] = print,
) -> tuple[BuildResult, Path]:
    """Build ``onnx`` (an overnet FP16 export) into ``engine`` and write its sidecar."""
    from overnet.cuda.cudart import gpu_info, set_device
    from overnet.formats.onnx_metadata import read_onnx_metadata

    meta = read_onnx_metadata(onnx)
    if "overnet.scale" not in meta:
        raise InputError(f"{onnx} carries no overnet metadata; export it with `overnet export`")
    gpu = gpu_info(gpu_index)
    set_device(gpu_index)  # the builder times tactics on the current device
    result = build_engine(onnx, engine, profile, options, echo=echo)
    sidecar = EngineSidecar(
        tensorrt_version=result.tensorrt_version,
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=meta.get("overnet.precision", "fp32"),
        scale=float(meta["overnet.scale"]),
        upscale=int(meta.get("overnet.upscale", 0)),
        profile=profile.to_dict(),
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        onnx_sha256=sha256_file(onnx),
        engine_bytes=result.engine_bytes,
        engine_sha256=sha256_file(engine),
        build_options=options.to_dict(),
        build_seconds=round(result.seconds, 3),
        rebuild_command=rebuild,
        # without --timingCacheFile: like rebuild_command, meant for another machine
        trtexec_command=trtexec_command(onnx, engine, profile, replace(options, timing_cache=None)),
        onnx_file=onnx.name,
        weights_sha256=meta.get("overnet.source_sha256", ""),
        overnet_version=__version__,
        built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        phase_seconds=result.phase_seconds,
        timing_cache_reused=result.timing_cache_reused,
        head=meta.get(HEAD_KEY, ""),
    )
    return result, write_sidecar(engine, sidecar)


def check_scales(scales: Sequence[float], upscale: int, weights: str | Path) -> list[float]:
    """Each scale must be in 1..upscale (what the checkpoint's reconstruction can serve)."""
    from overnet.config import check_scale

    if not scales:
        raise InputError("--scales is empty; give e.g. --scales 2 or --scales 2,3")
    checked = []
    for scale in scales:
        try:
            checked.append(check_scale(scale, upscale))
        except InputError:
            raise InputError(
                f"{weights} has upscale {upscale}, so it serves scales 1..{upscale}; "
                f"scale {scale:g} is outside that range"
            ) from None
    return checked


def file_names(scale: float, profile: Profile, overscale: bool = False) -> tuple[str, str]:
    """The ONNX and engine file names for ``scale``: ``overnet_x2_fp16.onnx`` and
    ``overnet_x2_fp16_<profile>.engine``; with ``overscale`` (``scale``: the checkpoint's
    own) ``overnet_x2_overscale_fp16.onnx`` and ``overnet_x2_overscale_fp16_<profile>.engine``."""
    precision = "overscale_fp16" if overscale else "fp16"
    return onnx_file_name(scale, precision), engine_file_name(scale, profile, precision)


def export_tensorrt(
    weights: str | Path,
    outdir: str | Path,
    *,
    scales: Sequence[float] | None = None,
    profile: Profile | None = None,
    options: BuildOptions | None = None,
    overwrite: bool = False,
    validate: bool = True,
    gpu_index: int = 0,
    echo: Callable[[str], None] = print,
    overscale: bool = False,
) -> list[EngineExport]:
    """For each scale: export the FP16 ONNX (float32 I/O, input ``lr`` Nx3xHxW RGB [0, 1]),
    build its engine and write the sidecar, all into ``outdir``.

    Default scales: the checkpoint's own. The timing cache defaults to
    ``outdir/overnet.timing-cache`` and is shared by the scales (same layers, same GPU).

    ``overscale``: one engine from the ``--overscale`` ONNX (output: the N x F x uH x uW
    overscaled features), which serves every scale in [1, upscale]; ``scales`` must then
    be left out. Its ``EngineExport.scale`` is the checkpoint's own (the file names').
    """
    if overscale and scales:
        raise InputError(
            "an --overscale engine serves every scale of its model (one engine per model): "
            "leave out --scale/--scales and give the scale when running it"
        )
    from overnet.cuda.cudart import gpu_info
    from overnet.export.onnx_export import export_onnx
    from overnet.weights import load_weights

    load_tensorrt()  # fail before the slow ONNX export when TensorRT is missing
    gpu_info(gpu_index)  # ... or when there is no GPU
    profile = profile or Profile.parse()
    options = options or BuildOptions()
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"-o {outdir} is a file; TensorRT export writes a folder of engines")
    loaded = load_weights(weights)
    scales = check_scales(scales or [loaded.config.scale], loaded.config.upscale, weights)
    if options.timing_cache is None:
        options = replace(options, timing_cache=outdir / TIMING_CACHE_NAME)
    planned = [(s, *(outdir / name for name in file_names(s, profile, overscale))) for s in scales]
    existing = [str(e) for _, _, e in planned if e.exists() or sidecar_path(e).exists()]
    if existing and not overwrite:
        raise InputError(f"{', '.join(existing)} exist(s); pass --overwrite to replace")
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temps(outdir):  # a killed earlier export left them
        echo(f"removed stale temp file {stale} (left by an interrupted run)")
    rebuild = rebuild_command(weights, scales, profile, options, outdir, overscale=overscale)
    results = []
    for scale, onnx, engine in planned:
        label = f"x{scale:g} overscale" if overscale else f"x{scale:g}"
        echo(f"{label}: exporting FP16 ONNX {onnx}")
        export_onnx(
            weights,
            onnx,
            scale=None if overscale else scale,
            fp16=True,
            overwrite=True,
            validate=validate,
            overscale=overscale,
        )
        command = trtexec_command(onnx, engine, profile, options)
        echo(f"{label}: equivalent trtexec command:\n  {command}")
        build, sidecar = build_with_sidecar(
            onnx, engine, profile, options, rebuild=rebuild, gpu_index=gpu_index, echo=echo
        )
        cache_note = ", timing cache reused" if build.timing_cache_reused else ""
        echo(
            f"{label}: wrote {engine} ({build.engine_bytes / 1e6:.1f} MB) in "
            f"{build.seconds:.1f} s{cache_note}, sidecar {sidecar.name}"
        )
        results.append(EngineExport(scale, onnx, engine, sidecar, command, build))
    return results
