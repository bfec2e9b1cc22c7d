"""A checkpoint file matched to the network (``LoadedWeights``), and the project's
``.safetensors`` format written. Paths only: ``overnet.weights.api`` also takes pretrained
names (``"x2"``), and ``overnet.weights.onnx_import`` (which the fetch of those names
runs) writes through here, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from overnet._atomic import atomic_target
from overnet._version import __version__
from overnet.config import OverNetConfig, check_scale
from overnet.errors import WeightsError
from overnet.model import OverNet, fold_weight_norm, is_folded
from overnet.weights.canonical import canonical_keys, check_against, detect_config, uses_weight_norm
from overnet.weights.reader import read_checkpoint

FORMAT_NAME = "overnet"


@dataclass
class LoadedWeights:
    """A checkpoint matched to the network: its config, canonical tensors and origin."""

    path: Path
    config: OverNetConfig
    state_dict: dict[str, torch.Tensor]
    weight_norm: bool
    container: str
    sha256: str
    extras: list[str]

    def build(self, *, fold: bool = True) -> OverNet:
        """A network (eval mode, CPU, float32) holding these weights."""
        model = OverNet(self.config, weight_norm=self.weight_norm)
        expected = model.state_dict()
        check_against(expected, self.state_dict)
        model.load_state_dict({k: v.float() for k, v in self.state_dict.items()}, strict=True)
        if fold:
            fold_weight_norm(model)
        return model.eval()


def read_weights(path: str | Path, scale: float | None = None) -> LoadedWeights:
    """Read and identify the checkpoint file at ``path``: upstream dict,
    bare/prefixed/parametrized state dict, folded weights or the project's .safetensors.
    ``scale`` overrides the default."""
    raw = read_checkpoint(path)
    tensors = canonical_keys(raw.tensors)
    weight_norm = uses_weight_norm(tensors)
    stored_scale = raw.metadata.get("scale") if raw.container == "safetensors" else None
    chosen = scale if scale is not None else (float(stored_scale) if stored_scale else None)
    config = detect_config(tensors, chosen)
    if raw.metadata.get("format") == FORMAT_NAME:
        _check_metadata(raw.metadata, config, raw.path)
    if scale is not None:
        check_scale(scale, config.upscale)
    return LoadedWeights(
        path=raw.path,
        config=config,
        state_dict=tensors,
        weight_norm=weight_norm,
        container=raw.container,
        sha256=raw.sha256,
        extras=raw.extras,
    )


def save_weights(model: OverNet, path: str | Path, *, fold: bool = True) -> Path:
    """Write ``model`` as .safetensors with its config in the metadata (atomic write).

    ``fold=True`` stores plain conv weights (smallest, inference-ready); ``False``
    keeps the weight-norm pair for further training.
    """
    from overnet._optional import require

    save_file = require("safetensors.torch", "saving .safetensors weights").save_file
    path = Path(path)
    if fold and not is_folded(model):
        folded = OverNet(model.config, weight_norm=True)
        folded.load_state_dict(model.state_dict())
        model = fold_weight_norm(folded)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "overnet_version": __version__,
        "scale": repr(float(model.config.scale)),
        "upscale": str(model.config.upscale),
        "channels": str(model.config.channels),
        "weight_norm": "parametrized" if not is_folded(model) else "folded",
    }
    with atomic_target(path, suffix=".tmp") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def _check_metadata(metadata: dict[str, str], config: OverNetConfig, path: Path) -> None:
    for key in ("upscale", "channels"):
        stored = metadata.get(key)
        actual = getattr(config, key)
        if stored is not None and int(stored) != actual:
            raise WeightsError(
                f"{path}: metadata says {key}={stored} but the tensors have {key}={actual}; "
                "the file was edited or mislabelled"
            )
