"""Weights out of an OverNet ONNX file (the upstream release): initialisers -> state dict.

The upstream export keeps the module names of every tensor except the convolution
weights that weight norm folded, which the exporter renamed to numbers; each such weight
feeds a ``Conv`` node whose bias still has its module name, so ``<module>.bias`` names
the weight ``<module>.weight``. The network is rebuilt from those tensors and its output
compared with the ONNX file's before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from overnet._optional import require
from overnet.errors import WeightsError
from overnet.weights.canonical import canonical_keys, detect_config, uses_weight_norm
from overnet.weights.checkpoint import LoadedWeights, save_weights

#: largest difference allowed between the rebuilt network and the ONNX file (float32)
MAX_ABS_DIFF = 1e-4


@dataclass(frozen=True)
class ImportResult:
    path: Path
    upscale: int
    max_abs_diff: float


def state_dict_from_onnx(path: str | Path) -> dict[str, torch.Tensor]:
    """Named tensors of an OverNet ONNX file (float32), conv weights named by their bias."""
    onnx = require("onnx", "reading weights from an ONNX file", "export")
    numpy_helper = require("onnx.numpy_helper", "reading weights from an ONNX file", "export")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends
        raise WeightsError(f"{path} is not a readable ONNX file: {exc}") from exc
    initialisers = {t.name: t for t in model.graph.initializer}
    names: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        weight, bias = node.input[1], node.input[2]
        if bias.endswith(".bias") and weight in initialisers and not weight.endswith(".weight"):
            names[weight] = bias[: -len(".bias")] + ".weight"
    tensors = {}
    for name, tensor in initialisers.items():
        key = names.get(name, name)
        if key[0].isdigit():
            continue  # constants of the traced graph (shapes, scales), not weights
        tensors[key] = torch.from_numpy(numpy_helper.to_array(tensor).astype(np.float32))
    if "entry_1.weight" not in tensors:
        raise WeightsError(
            f"{path} holds no OverNet weights under the upstream module names (no "
            "entry_1.weight); expected the upstream OverNet ONNX release"
        )
    return tensors


def _onnx_output(path: Path, x: np.ndarray, scale: int) -> np.ndarray:
    """The ONNX file's output on ``x`` (upstream inputs: image + integer scale)."""
    ort = require("onnxruntime", "checking weights against their ONNX file", "export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        feeds[spec.name] = x if len(spec.shape) == 4 else np.array(scale, np.int64)
    return session.run(None, feeds)[0]


def import_onnx_weights(
    onnx_path: str | Path, target: str | Path, *, scale: int | None = None
) -> ImportResult:
    """Convert ``onnx_path`` to the project's ``.safetensors`` at ``target`` (atomic),
    after checking the rebuilt network against the ONNX output on a fixed pattern."""
    onnx_path = Path(onnx_path)
    tensors = canonical_keys(state_dict_from_onnx(onnx_path))
    config = detect_config(tensors, scale)
    loaded = LoadedWeights(
        onnx_path, config, tensors, uses_weight_norm(tensors), "onnx", "", extras=[]
    )
    model = loaded.build(fold=True)
    x = np.random.default_rng(0).random((1, 3, 24, 20), dtype=np.float32)
    with torch.inference_mode():
        ours = model(torch.from_numpy(x)).numpy()
    theirs = _onnx_output(onnx_path, x, int(config.scale))
    if ours.shape != theirs.shape:
        raise WeightsError(
            f"the weights of {onnx_path} rebuilt into OverNet give shape {ours.shape}, the "
            f"file gives {theirs.shape}; not an OverNet x{config.scale:g} export"
        )
    diff = float(np.abs(ours - theirs).max())
    if diff > MAX_ABS_DIFF:
        raise WeightsError(
            f"the weights of {onnx_path} rebuilt into OverNet differ from the file's own "
            f"output by {diff:.2e} (allowed {MAX_ABS_DIFF:g}); refusing to write {target}"
        )
    save_weights(model, target)
    return ImportResult(Path(target), config.upscale, diff)
