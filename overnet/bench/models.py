"""The models a benchmark runs: the reference checkpoint and any --model files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from overnet.config import OverNetConfig
from overnet.errors import InputError


@dataclass
class ModelEntry:
    """A model the suite runs: the --weights checkpoint (reference) or a --model file."""

    label: str
    path: Path
    kind: str  # checkpoint | onnx | engine
    real_weights: bool
    config: OverNetConfig | None = None  # known for checkpoints
    is_reference: bool = False  # its torch fp32 output is the agreement reference
    scales: list[float] | None = None  # restrict (freshly initialised models: one per scale)


def fresh_weights(scale: int, seed: int = 0) -> tuple[Path, OverNetConfig]:
    """A freshly initialised x``scale`` model saved once in the cache (speed tests only)."""
    from overnet.cache import cache_dir

    config = OverNetConfig.for_scale(scale)
    path = cache_dir() / "bench" / f"random-x{scale}-seed{seed}.safetensors"
    if not path.is_file():
        import torch

        from overnet.model import OverNet
        from overnet.weights import save_weights

        torch.manual_seed(seed)
        save_weights(OverNet(config), path)
    return path, config


def default_models(
    weights: Path | None, scales: list[float], shared: Path | None, seed: int = 0
) -> tuple[list[ModelEntry], list[str]]:
    """The reference model: --weights, else upstream x2 from ../shared, else the fetched
    pretrained x2 when cached, else freshly initialised weights."""
    notes: list[str] = []
    if weights is None and shared is not None:
        candidate = shared / "weights" / "OverNet_x2.pth.tar"
        if candidate.is_file():
            weights = candidate
    if weights is None:
        from overnet.weights.pretrained import weights_path

        if weights_path("x2").is_file():  # fetched earlier (`overnet weights fetch`)
            weights = weights_path("x2")
    if weights is not None:
        from overnet.weights import load_weights

        loaded = load_weights(weights)
        label = weights.name
        return [ModelEntry(label, weights, "checkpoint", True, loaded.config, True)], notes
    models = []
    for s in scales:
        if not float(s).is_integer():
            raise InputError(f"freshly initialised weights need integer scales, got {s:g}")
        path, config = fresh_weights(int(s), seed)
        models.append(ModelEntry(f"fresh-x{int(s)}", path, "checkpoint", False, config, True, [s]))
    notes.append(
        "no weights given or found: FRESHLY INITIALISED weights (seed "
        f"{seed}, untrained) - speed and memory are representative, output quality is not"
    )
    return models, notes


def model_entry(arg: str) -> ModelEntry:
    """A --model argument: ``FILE`` or ``LABEL=FILE`` (ONNX, engine or checkpoint)."""
    from overnet.runtime.model_source import detect_source

    label, _, path_text = (
        arg.partition("=") if "=" in arg and "/" not in arg.split("=")[0] else ("", "", arg)
    )
    path = Path(path_text)
    source = detect_source(path)
    config = None
    if source.kind == "checkpoint":
        from overnet.weights import load_weights

        config = load_weights(path).config
    return ModelEntry(label or path.name, path, source.kind, True, config)
