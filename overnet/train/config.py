"""Training configuration: the paper's recipe as defaults, validated up front (no torch)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from overnet.config import SUPPORTED_UPSCALES, OverNetConfig
from overnet.errors import InputError

#: Learning rate when fine-tuning (``init`` given, no ``lr``). A fresh Adam/AdamP moves
#: every weight by about ``lr`` per step whatever the gradient's size (m / sqrt(v) is
#: +-1 at first), far more than a converged run's steps at the same nominal rate. At
#: 1.25e-4 (where the paper's schedule ends) four steps on images unlike Set5 cost the
#: upstream x2 weights 0.17-0.22 dB on Set5; at 3e-5, 0.02-0.03 dB (tests/train).
FINETUNE_LR = 3e-5

#: The paper's learning rate from scratch.
RECIPE_LR = 1e-3

OPTIMIZERS = ("adamp", "adam")

#: Settings that decide which batches and updates a run makes; a resumed run must
#: keep them, or it would not continue the same training.
RESUME_KEYS = (
    "scales",
    "upscale",
    "channels",
    "patch",
    "batch",
    "lr",
    "decay",
    "clip",
    "optimizer",
    "seed",
    "amp",
)


@dataclass
class TrainConfig:
    """Everything one training run needs; defaults follow the paper (DIV2K recipe).

    patch: LR patch side (the HR patch is ``patch * scale``), as upstream crops.
    batch: global batch (split evenly over distributed ranks).
    scales: training scales; several train one multi-scale model (a scale sampled
    per step, see :mod:`overnet.train.sampler`).
    upscale: overscaling factor of the model; default: the upstream pairing for the
    largest scale (x2 -> 3, x3 -> 4, x4 -> 5), or the ``init`` weights' factor.
    lr: initial rate, halved every ``decay`` steps; None -> 1e-3, or 3e-5 with ``init``.
    val_at_start: validate the starting weights as step 0 of the log (fresh runs).
    """

    data: list[Path] = field(default_factory=list)
    scales: list[int] = field(default_factory=lambda: [2])
    upscale: int | None = None
    channels: int = 64
    patch: int = 64
    batch: int = 64
    steps: int = 600_000
    lr: float | None = None
    decay: int = 150_000
    clip: float = 10.0
    optimizer: str = "adamp"
    init: Path | None = None
    val: list[Path] = field(default_factory=list)
    out: Path = Path("runs/overnet")
    resume: bool = False
    workers: int = 0
    amp: bool = False
    seed: int = 0
    save_every: int = 1000
    val_every: int = 1000
    val_at_start: bool = True
    log_every: int = 100
    cache: Path | None = None
    device: str = "auto"
    deterministic: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.data = [Path(p) for p in self.data]
        self.val = [Path(p) for p in self.val]
        self.out = Path(self.out)
        self.init = Path(self.init) if self.init is not None else None
        self.cache = Path(self.cache) if self.cache is not None else None
        self.scales = sorted({int(s) for s in self.scales})

    def validate(self) -> TrainConfig:
        """Raise InputError naming the first bad setting; returns self."""
        if not self.data:
            raise InputError("no training data: give at least one --data folder of HR images")
        if not self.scales or any(s < 2 for s in self.scales):
            raise InputError(f"scales must be integers >= 2, got {self.scales}")
        if self.upscale is not None:
            if self.upscale not in SUPPORTED_UPSCALES:
                raise InputError(f"upscale must be one of {SUPPORTED_UPSCALES}, got {self.upscale}")
            if max(self.scales) > self.upscale:
                raise InputError(
                    f"upscale {self.upscale} cannot serve scale x{max(self.scales)}: the model "
                    "overscales by upscale and resizes down; pass --upscale >= the largest scale"
                )
        positive = {
            "patch": self.patch,
            "batch": self.batch,
            "steps": self.steps,
            "decay": self.decay,
            "save_every": self.save_every,
            "val_every": self.val_every,
            "log_every": self.log_every,
        }
        for name, value in positive.items():
            if int(value) < 1:
                raise InputError(f"{name} must be a positive integer, got {value}")
        if self.patch < 8:
            raise InputError(f"patch must be at least 8 LR pixels, got {self.patch}")
        if self.lr is not None and not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if not self.clip > 0:
            raise InputError(f"clip must be positive, got {self.clip}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.workers < 0:
            raise InputError(f"workers must be >= 0, got {self.workers}")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        return self

    @property
    def learning_rate(self) -> float:
        """The initial rate actually used (see ``lr``)."""
        if self.lr is not None:
            return float(self.lr)
        return FINETUNE_LR if self.init is not None else RECIPE_LR

    def default_upscale(self) -> int:
        """Upstream pairing for the largest scale (x2 -> 3, x3 -> 4, x4 -> 5, x8 -> 8)."""
        top = max(self.scales)
        try:
            return OverNetConfig.for_scale(top).upscale
        except InputError as exc:
            fits = [u for u in SUPPORTED_UPSCALES if u >= top]
            if not fits:
                raise InputError(
                    f"no OverNet upscale serves x{top}; the largest is {SUPPORTED_UPSCALES[-1]}"
                ) from exc
            return fits[0]

    def to_dict(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, list):
                out[key] = [str(v) if isinstance(v, Path) else v for v in value]
        out["learning_rate"] = self.learning_rate
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
