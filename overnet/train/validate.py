"""Validation PSNR during training: ``overnet eval``'s paper protocol on val folders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from overnet.eval import Dataset, discover, evaluate
from overnet.train.errors import TrainDataError


@dataclass
class ValResult:
    """Mean Y-PSNR (dB, border = scale) over every val folder and training scale."""

    psnr: float
    bicubic: float
    per_set: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


class Validator:
    """Evaluates the model on ``folders`` at each of ``scales`` (whole images, float output)."""

    def __init__(self, folders: list[Path], scales: list[int]) -> None:
        self.datasets: list[Dataset] = []
        for folder in folders:
            for scale in scales:
                try:
                    self.datasets.append(discover(folder, scale))
                except Exception as exc:
                    raise TrainDataError(
                        f"validation folder {folder} is unusable at x{scale}: {exc}; expected "
                        "a benchmark folder such as Set5 (HR + LR_bicubic/X{s}) or HR images"
                    ) from exc

    @torch.no_grad()
    def run(self, model: torch.nn.Module, device: torch.device) -> ValResult:
        was_training = model.training
        model.eval()
        try:
            psnrs, bicubics, per_set, failures = [], [], {}, []
            for dataset in self.datasets:
                scale = dataset.scale

                def predict(batch: np.ndarray, scale: int = scale) -> np.ndarray:
                    x = torch.from_numpy(batch).to(device)
                    return model(x, scale).float().cpu().numpy()

                result = evaluate(dataset, predict, "paper", progress=False)
                failures += [f"{dataset.name}/{r.name}: {r.error}" for r in result.failed]
                if result.ok:
                    per_set[f"{dataset.name}_x{scale}"] = result.mean("psnr_y")
                    psnrs.append(result.mean("psnr_y"))
                    bicubics.append(result.mean("bicubic_psnr_y"))
        finally:
            model.train(was_training)
        mean = float(np.mean(psnrs)) if psnrs else math.nan
        bicubic = float(np.mean(bicubics)) if bicubics else math.nan
        return ValResult(mean, bicubic, per_set, failures)
