"""Build the network a run trains: its config, and weights from ``--init`` if given."""

from __future__ import annotations

from pathlib import Path

from overnet.config import OverNetConfig
from overnet.errors import OverNetError, WeightsError
from overnet.model import OverNet, apply_weight_norm
from overnet.train.config import TrainConfig
from overnet.train.errors import InitWeightsError
from overnet.weights import LoadedWeights, load_weights
from overnet.weights.canonical import check_against


def read_init(path: Path) -> LoadedWeights:
    """Identify ``--init`` weights (any form ``overnet.weights`` reads)."""
    try:
        return load_weights(path)
    except WeightsError as exc:
        raise InitWeightsError(
            f"--init {path} cannot be used: {exc}. Expected OverNet weights (.pth/.pth.tar "
            "/.safetensors, e.g. an upstream checkpoint or a run's best.safetensors)"
        ) from exc


def model_config(config: TrainConfig, init: LoadedWeights | None) -> OverNetConfig:
    """The network for ``config``: upscale from --upscale, else the init's, else the
    upstream pairing; default scale = the largest training scale."""
    top = max(config.scales)
    if init is None:
        upscale = config.upscale or config.default_upscale()
        return OverNetConfig(upscale=upscale, scale=top, channels=config.channels)
    have = init.config
    if config.upscale is not None and config.upscale != have.upscale:
        raise InitWeightsError(
            f"--init {init.path} overscales by {have.upscale} (upscale {have.upscale}) but "
            f"--upscale {config.upscale} was asked; the reconstruction layers differ in shape. "
            f"Drop --upscale (to keep {have.upscale}) or train from scratch without --init"
        )
    if have.upscale < top:
        raise InitWeightsError(
            f"--init {init.path} has upscale {have.upscale}, which cannot serve x{top} "
            f"(scales {config.scales}); use weights with upscale >= {top} "
            f"(upstream x{top - 1} weights or a multi-scale run) or train from scratch"
        )
    if config.channels != have.channels:
        raise InitWeightsError(
            f"--init {init.path} has {have.channels} channels but the run asks for "
            f"{config.channels}; drop the channel setting or use matching weights"
        )
    return OverNetConfig(upscale=have.upscale, scale=top, channels=have.channels)


def build_model(cfg: OverNetConfig, init: LoadedWeights | None) -> OverNet:
    """Weight-normed OverNet (train mode, CPU) with ``init``'s weights if given."""
    if init is None:
        return OverNet(cfg, weight_norm=True).train()
    model = OverNet(cfg, weight_norm=init.weight_norm)
    try:
        check_against(model.state_dict(), init.state_dict)
    except OverNetError as exc:
        raise InitWeightsError(f"--init {init.path}: {exc}") from exc
    model.load_state_dict({k: v.float() for k, v in init.state_dict.items()}, strict=True)
    if not init.weight_norm:
        # Folded weights (e.g. best.safetensors): re-wrap, g = ||w|| and v = w.
        apply_weight_norm(model)
    return model.train()
