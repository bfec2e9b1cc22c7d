"""Write a web export: the ONNX model, the page's files, ``config.json`` and, for offline
hosting, the onnxruntime-web files (``ort/``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from overnet._atomic import replace_tree
from overnet._optional import require
from overnet._version import __version__
from overnet.errors import InputError
from overnet.export.web import ort as ort_files
from overnet.units import parse_memory

#: the page's own files, copied from the package as they are
SITE_FILES = (
    "index.html",
    "app.mjs",
    "worker.mjs",
    "tiling.mjs",
    "pixels.mjs",
    "png.mjs",
    "overscale.mjs",
    "style.css",
)
MODEL_NAME = "model.onnx"
#: the runtime backend whose memory figures the page's tile plan uses: the page runs the
#: same ONNX file with onnxruntime (in WASM), and `overnet upscale --backend onnxruntime`
#: then plans the same tiles
PLAN_BACKEND = "onnxruntime"
#: the head's arrays (exit1 weight 3 x F x 3 x 3 and bias, the mean shifts), as flat
#: float32 lists in config.json
HEAD_ARRAYS = ("weight", "bias", "input_shift", "output_shift")


@dataclass
class WebExportResult:
    folder: Path
    scale: float
    upscale: int
    #: True: the page finishes any scale in [1, upscale] from the overscaled features
    overscale: bool
    #: "cdn" (the pinned jsDelivr URL) or "local" (ort/ holds the files)
    ort_source: str
    files: list[str] = field(default_factory=list)
    validation: object | None = None  # the ONNX export's ValidationReport
    notes: list[str] = field(default_factory=list)


def export_web(
    weights: str | Path,
    output: str | Path,
    *,
    scale: float | None = None,
    overscale: bool = False,
    tile: int | None = None,
    overlap: int = 16,
    max_memory: str | int = "2GB",
    ort: str | Path = "cdn",
    ort_cache: Path | None = None,
    overwrite: bool = False,
    validate: bool = True,
    sample_image: str | Path | None = None,
) -> WebExportResult:
    """Export ``weights`` to a static site in the folder ``output``.

    The page upscales with onnxruntime-web at the model's integer scale, tiling as
    ``Upscaler(session, tile=tile, overlap=overlap, max_memory=max_memory)`` does on an
    onnxruntime session of the same file (``tile`` None: from ``max_memory``; 0: whole
    images); the page's fields change these for later images. ``overscale``: the graph
    ends at the overscaled features and the page finishes any scale in [1, upscale]
    (the user picks it), as an overscale session does on the host.

    ``ort``: "cdn" loads onnxruntime-web from the pinned jsDelivr URL; "npm" downloads the
    pinned npm tarball once into ``ort_cache`` (default: the overnet cache) and copies
    its files into ``output/ort/``; a path to an onnxruntime-web ``.tgz`` or unpacked
    package folder copies from there (offline hosting). Every file is checked against
    its pinned sha384. The site is built beside ``output`` and moved into place whole.
    """
    from overnet.export.onnx_export import export_onnx

    # defaults: overnet.runtime.upscaler's DEFAULT_OVERLAP and DEFAULT_MAX_MEMORY
    # (tests/export/test_web.py checks they agree)
    output = Path(output)
    if tile is not None and tile < 0:
        raise InputError(f"--tile must be >= 0 input pixels (0: whole images), got {tile}")
    if overlap < 0:
        raise InputError(f"--overlap must be >= 0, got {overlap}")
    try:
        memory = parse_memory(max_memory)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if overscale and scale is not None:
        raise InputError(
            "--overscale serves every scale in [1, upscale]: drop --scale and pick the scale "
            "in the page"
        )
    if scale is not None and not float(scale).is_integer():
        raise InputError(
            f"--scale {scale:g} is fractional: a graph ending at a fractional scale cannot be "
            "tiled; export with --overscale (the page then runs any scale in [1, upscale])"
        )
    _check_output(output, overwrite)
    copied = _ort_package(ort, ort_cache)  # before the slow export: a bad --ort fails fast
    parent = output.parent if str(output.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.overnet-", dir=parent))
    try:
        result = export_onnx(
            weights, staging / MODEL_NAME, scale=scale, validate=validate,
            sample_image=sample_image, overscale=overscale,
        )  # fmt: skip
        meta = result.metadata
        head = _head(staging / MODEL_NAME) if overscale else None
        if head is None and not float(meta.scale).is_integer():
            raise InputError(
                f"these weights end at x{meta.scale:g}, which tiles do not line up on; give "
                "--scale 2 or 3, or export with --overscale"
            )
        base = ort_files.CDN_BASE if copied is None else ort_files.LOCAL_BASE
        _copy_site(staging, base)
        if copied is not None:
            (staging / "ort").mkdir()
            for name, data in copied.items():
                (staging / "ort" / name).write_bytes(data)
        config = _config(meta.scale, meta.upscale, tile, overlap, memory, base)
        config["selfcheck"] = self_check(staging / MODEL_NAME)
        if head is not None:
            config["overscale"] = {
                "upscale": head.upscale,
                "channels": head.channels,
                **{k: getattr(head, k).ravel().tolist() for k in HEAD_ARRAYS},
            }
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
        staging.chmod(0o755)
        replace_tree(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    return WebExportResult(
        folder=output,
        scale=meta.scale,
        upscale=meta.upscale,
        overscale=head is not None,
        ort_source="cdn" if copied is None else "local",
        files=files,
        validation=result.validation,
        notes=list(result.notes),
    )


def _head(model: Path):
    """The overscale head an ``--overscale`` export records in its ONNX metadata."""
    from overnet.formats.onnx_metadata import read_onnx_metadata
    from overnet.formats.overscale_head import head_of

    return head_of(read_onnx_metadata(model), str(model))


def _config(
    scale: float, upscale: int, tile: int | None, overlap: int, memory: int, base: str
) -> dict:
    from overnet.runtime.memory import (
        HOST_BYTES_PER_INPUT_PIXEL,
        HOST_BYTES_PER_OUTPUT_PIXEL,
        bytes_per_input_pixel,
    )
    from overnet.runtime.upscaler import MIN_AUTO_TILE

    return {
        "overnet": __version__,
        "model": MODEL_NAME,
        "scale": int(scale) if float(scale).is_integer() else scale,
        "upscale": upscale,
        "tiling": {"tile": tile, "overlap": overlap, "max_memory": memory},
        # what Upscaler.plan reads besides the options (overnet.runtime.memory)
        "plan": {
            "backend": PLAN_BACKEND,
            "bytes_per_input_pixel": bytes_per_input_pixel(PLAN_BACKEND, upscale),
            "host_bytes_per_input_pixel": HOST_BYTES_PER_INPUT_PIXEL,
            "host_bytes_per_output_pixel": HOST_BYTES_PER_OUTPUT_PIXEL,
            "min_auto_tile": MIN_AUTO_TILE,
        },
        "ort": {
            "version": ort_files.ORT_VERSION,
            "base": base,
            "builds": {name: vars(build) for name, build in ort_files.BUILDS.items()},
            "integrity": {name: ort_files.INTEGRITY[name] for name in ort_files.page_files()},
        },
    }


#: the self-check's input side (pixels) and most output values kept, and the largest
#: difference (max abs, graph output units) the page accepts from the provider it chose:
#: float32 kernels summing in another order stay near 1e-5; a wrong kernel is far above
SELF_CHECK_SIDE = 32
SELF_CHECK_VALUES = 4096
SELF_CHECK_MAX_ABS = 2e-3


def self_check(model: Path) -> dict:
    """What the page runs once after it opens the model: the built-in pattern (1 x 3 x
    SELF_CHECK_SIDE^2 float32 [0, 1]) and onnxruntime's output of the exported graph for
    it (every ``stride``-th value, little-endian float32, base64). A provider whose output
    differs by more than ``max_abs`` is not used (docs/web.md, "Self-check")."""
    import base64

    ort = require("onnxruntime", "the web export's self-check")
    from overnet.export.validate import sample_pattern

    x = sample_pattern(SELF_CHECK_SIDE, SELF_CHECK_SIDE)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x})[0].astype("<f4").ravel()
    stride = -(-out.size // SELF_CHECK_VALUES)
    return {
        "shape": list(x.shape),
        "input": base64.b64encode(x.astype("<f4").tobytes()).decode("ascii"),
        "output_size": int(out.size),
        "stride": stride,
        "output": base64.b64encode(out[::stride].tobytes()).decode("ascii"),
        "max_abs": SELF_CHECK_MAX_ABS,
    }


def _ort_package(ort: str | Path, cache: Path | None) -> dict[str, bytes] | None:
    """The onnxruntime-web files to copy (None: the page loads them from the CDN)."""
    if str(ort) == "cdn":
        return None
    if str(ort) == "npm":
        from overnet.cache import cache_dir

        tarball = ort_files.fetch_tarball(cache or cache_dir() / "npm")
        return ort_files.read_package(tarball)
    return ort_files.read_package(Path(ort))


def _copy_site(folder: Path, base: str) -> None:
    site = resources.files("overnet.export.web") / "site"
    origin = "" if base == ort_files.LOCAL_BASE else _origin(base)
    for name in SITE_FILES:
        text = (site / name).read_text("utf-8")
        if name == "index.html":
            text = text.replace("__ORT_ORIGIN__", origin)
        (folder / name).write_text(text, "utf-8")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_web_export(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "overnet" in config and (folder / "index.html").is_file()


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise InputError(f"-o {output} is a file; --format web writes a folder (give a new name)")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise InputError(f"{output} exists and is not empty; pass --overwrite to replace it")
        if not _is_web_export(output):
            raise InputError(
                f"{output} is not a web export (no overnet config.json); --overwrite replaces "
                "only a web export: give an empty or new folder"
            )
