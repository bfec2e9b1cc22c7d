"""Training checkpoints: one torch file per save, written atomically, read safely.

Layout (a dict, loaded with ``torch.load(weights_only=True)``): the model's
weight-normed state dict under ``model_state_dict``, the key upstream's own
checkpoints use, so :func:`overnet.weights.load_weights` / ``load_model`` (and
thus eval, export and the runtime) read a training checkpoint as they read the
upstream files. Next to it: optimizer, scheduler, AMP scaler, completed
``step``, best validation PSNR, RNG states (python, numpy, torch, CUDA) and the
sampler's state.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from overnet._atomic import make_temp, remove_stale_temps
from overnet.train.errors import CheckpointError

FORMAT = "overnet-train-checkpoint"
FORMAT_VERSION = 1

_log = logging.getLogger(__name__)


def capture_rng() -> dict[str, Any]:
    """RNG states of python, numpy (global), torch CPU and CUDA, as plain containers."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states only when CUDA is present)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _serialize(payload: dict[str, Any], path: str) -> None:
    """Write ``payload`` to ``path`` (kept separate so tests can make it fail)."""
    torch.save(payload, path)


def _write_errors() -> tuple[type[BaseException], ...]:
    """What a failed write raises: OSError from Python, RuntimeError from ``torch.save``
    (its C++ writer reports a full disk as "PytorchStreamWriter failed writing file
    ...: file write failed" or "[enforce fail at inline_container.cc] unexpected pos"),
    and SafetensorError ("I/O error: No space left on device") from safetensors."""
    errors: tuple[type[BaseException], ...] = (OSError, RuntimeError)
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return errors
    return (*errors, SafetensorError)


def _free_space(folder: Path) -> str:
    """'DIR has N MiB free of M GiB' (shutil.disk_usage), or '' when it cannot be read."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return ""
    return f"{folder} has {usage.free / 2**20:,.0f} MiB free of {usage.total / 2**30:,.1f} GiB"


def write_failure(path: Path, exc: BaseException, what: str) -> CheckpointError:
    """The CheckpointError for a failed write of ``path``: cause, what is left, what to do."""
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    reason = reason or type(exc).__name__
    errno_ = getattr(exc, "errno", None)
    not_space = isinstance(exc, OSError) and errno_ not in (
        None, errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
    )  # fmt: skip
    hint = f"check that {path.parent} is writable (--out)" if not_space else "free disk space"
    kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
    space = _free_space(path.parent)
    return CheckpointError(
        f"saving {what} {path} failed ({reason}); {kept}"
        + (f"; {space}" if space else "")
        + f". To fix: {hint} and continue with --resume"
    )


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``payload``: temp file in the same folder, fsync, rename.

    On any failure (disk full, permissions, interrupt) the temp file is removed and
    an existing ``path`` is left as it was, so a kill never leaves a torn checkpoint.
    A failed write raises :class:`CheckpointError` (with the free space of the folder).
    Temp files a killed run left in the folder are removed first (logged as warnings).
    """
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    for stale in remove_stale_temps(path.parent):
        _log.warning("removed stale temp file %s (left by an interrupted run)", stale)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp(path, suffix=".tmp")
    except OSError as exc:
        raise write_failure(path, exc, "checkpoint") from None
    try:
        _serialize(payload, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # the rename must not land before the data does
        os.replace(tmp, path)
    except _write_errors() as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_failure(path, exc, "checkpoint") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_weights(model: torch.nn.Module, path: Path) -> None:
    """``overnet.weights.save_weights`` (atomic; kept separate so tests can make it fail)."""
    from overnet.weights import save_weights

    save_weights(model, path)


def save_weights_file(model: torch.nn.Module, path: str | Path) -> Path:
    """Write ``best``/``final`` weights (.safetensors, folded); a failed write raises
    :class:`CheckpointError` and leaves an existing ``path`` as it was."""
    path = Path(path)
    try:
        _write_weights(model, path)
    except _write_errors() as exc:
        raise write_failure(path, exc, "weights") from None
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint written by :func:`save_checkpoint` (weights_only)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # torch raises several types for a torn or foreign file
        raise CheckpointError(
            f"{path} cannot be read as a training checkpoint ({exc}); start a new run, "
            "or pass an older checkpoint's weights with --init"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an overnet training checkpoint (no '{FORMAT}' marker); to start "
            "from its weights use --init instead of --resume"
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer overnet (checkpoint format "
            f"{payload['format_version']}, this one reads {FORMAT_VERSION}); upgrade overnet"
        )
    return payload
