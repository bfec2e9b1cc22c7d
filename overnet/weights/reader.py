"""Read a weights file into a flat {name: tensor} dict, safely.

Pickled checkpoints go through ``torch.load(weights_only=True)`` (PyTorch's
restricted unpickler): a pickle that needs arbitrary globals is refused and its
payload never runs. ``.safetensors`` files are read without pickle at all.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from overnet.errors import WeightsError
from overnet.formats.digest import sha256_file

# Wrappers that training scripts put around the model's state dict.
_STATE_DICT_KEYS = ("model_state_dict", "state_dict", "params_ema", "params", "model", "net")

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"RIFF": "a RIFF (WebP/WAV) file",
    b"%PDF": "a PDF document",
}


@dataclass
class RawCheckpoint:
    """Tensors read from a file, before they are matched to the network."""

    path: Path
    tensors: dict[str, torch.Tensor]
    container: str  # "torch-pickle", "torch-zip" or "safetensors"
    metadata: dict[str, str] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)  # non-model entries (optimizer, step...)
    sha256: str = ""


def read_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read ``path`` (upstream .pth/.pth.tar, bare state dict, or .safetensors)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if path.is_dir():
        raise WeightsError(f"expected a weights file, got a directory: {path}")
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"weights file is empty (0 bytes): {path}; re-download or re-save it")
    with open(path, "rb") as fh:
        head = fh.read(16)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise WeightsError(
                f"{path} is {kind}, not a checkpoint; expected an OverNet .pth/.pth.tar "
                "checkpoint or a .safetensors file"
            )
    if _looks_like_safetensors(head, size):
        raw = _read_safetensors(path)
    elif head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raw = _read_torch(path, "torch-zip" if head.startswith(b"PK") else "torch-pickle")
    elif path.suffix == ".onnx":
        raise WeightsError(
            f"{path} is an ONNX model, not PyTorch weights; pass it as --model to the runtime"
        )
    else:
        raise WeightsError(
            f"{path} is not a checkpoint (unrecognised header {head[:8]!r}); expected a "
            "PyTorch .pth/.pth.tar (zip or pickle) or a .safetensors file"
        )
    raw.sha256 = sha256_file(path)
    return raw


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 0 < header_len <= size - 8 and head[8:9] == b"{"


def _read_safetensors(path: Path) -> RawCheckpoint:
    from overnet._optional import require

    safetensors_torch = require("safetensors.torch", "reading .safetensors weights")
    safe_open = require("safetensors", "reading .safetensors weights").safe_open
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
        tensors = safetensors_torch.load_file(str(path))
    except Exception as exc:  # the library raises several types for a damaged file
        raise WeightsError(f"{path} is a damaged .safetensors file ({exc}); re-save it") from exc
    return RawCheckpoint(path, dict(tensors), "safetensors", metadata)


def _read_torch(path: Path, container: str) -> RawCheckpoint:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise WeightsError(
                f"refused to load {path}: the pickle needs arbitrary Python objects "
                f"({_first_line(exc)}). Only tensors and plain containers are loaded "
                "(torch.load weights_only=True); nothing from the file was executed. "
                "If you trust the file, re-save its state_dict() or convert it to .safetensors."
            ) from exc
        raise WeightsError(f"{path} is corrupt or truncated ({_first_line(exc)})") from exc
    except MemoryError as exc:
        raise WeightsError(
            f"ran out of memory reading {path}: the file is corrupt (a damaged size field) "
            "or larger than this machine can hold"
        ) from exc
    except Exception as exc:
        # A damaged pickle or zip makes the (restricted) unpickler fail with whatever its
        # opcodes ran into: EOFError, KeyError, IndexError, TypeError, AssertionError...
        raise WeightsError(
            f"{path} is truncated or corrupt and cannot be read "
            f"({type(exc).__name__}: {_first_line(exc)}); re-download or re-save it"
        ) from exc
    tensors, extras = _unwrap(obj, path)
    return RawCheckpoint(path, tensors, container, extras=extras)


def _unwrap(obj: object, path: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    if not isinstance(obj, dict):
        raise WeightsError(
            f"{path} holds a {type(obj).__name__}, not a state dict; expected a dict of tensors "
            "or a training checkpoint with 'model_state_dict'"
        )
    extras: list[str] = []
    for key in _STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and _mostly_tensors(inner):
            extras = [k for k in obj if k != key]
            obj = inner
            break
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(
            f"{path} contains no tensors (top-level keys: {sorted(map(str, obj))[:8]}); "
            "expected a state dict or a checkpoint with 'model_state_dict'"
        )
    return tensors, extras


def _mostly_tensors(d: dict) -> bool:
    values = list(d.values())
    return sum(isinstance(v, torch.Tensor) for v in values) >= len(values) / 2


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
