"""Batches as a pure function of (seed, step): exact resume and rank-independent data.

Every step draws its own generator from ``SeedSequence([seed, step])``, so the
sampler has no state to save beyond the step: a run resumed at step k sees the
batches a straight run saw, whatever the number of data workers. The *global*
batch is planned first and each distributed rank takes its contiguous slice,
so 2 ranks x 32 patches train on exactly the 64 patches one process would.

Multi-scale: one scale is drawn per step (uniformly) and used for the whole global
batch. The alternative, a loss term per scale on every step, costs one forward
and backward per scale; sampling keeps a step's cost that of single-scale
training, every scale gets the same share of updates in expectation, and all
patches of a batch have one shape (no padding, one bicubic resize per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overnet.train.augment import crop_pair, flip_rotate, to_nchw_float
from overnet.train.data import TrainImage


@dataclass(frozen=True)
class StepPlan:
    """What step ``step`` trains on: one scale and, per patch, image, LR corner, variant."""

    step: int
    scale: int
    image: np.ndarray  # (B,) image indices
    y: np.ndarray  # (B,) LR top
    x: np.ndarray  # (B,) LR left
    flip_v: np.ndarray  # (B,) bool
    flip_h: np.ndarray  # (B,) bool
    rot: np.ndarray  # (B,) quarter turns 0..3


def plan_step(
    seed: int, step: int, images: list[TrainImage], scales: list[int], batch: int, patch: int
) -> StepPlan:
    """The global batch of ``step`` (0-based), identical on every rank and every run."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, step])))
    scale = int(scales[rng.integers(len(scales))])
    image = rng.integers(0, len(images), size=batch)
    heights = np.array([images[i].lr[scale].shape[0] for i in image])
    widths = np.array([images[i].lr[scale].shape[1] for i in image])
    # floor(u * n) with u in [0, 1) is uniform over 0..n-1 for each image's own n.
    y = np.floor(rng.random(batch) * (heights - patch + 1)).astype(np.int64)
    x = np.floor(rng.random(batch) * (widths - patch + 1)).astype(np.int64)
    flips = rng.random((2, batch)) < 0.5
    rot = rng.integers(0, 4, size=batch)
    return StepPlan(step, scale, image, y, x, flips[0], flips[1], rot)


class StepBatches:
    """Map-style source: ``source[step]`` -> (scale, LR, HR) of this rank's shard.

    LR is NCHW float32 [0, 1] of ``batch / world`` x 3 x patch x patch and HR the
    matching ``patch * scale`` crops. Works as a ``torch.utils.data.Dataset`` with
    ``batch_size=None`` (items are whole batches, indexed by step).
    """

    def __init__(
        self,
        images: list[TrainImage],
        scales: list[int],
        batch: int,
        patch: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        steps: int = 0,
    ) -> None:
        if batch % world:
            raise ValueError(f"batch {batch} is not divisible by world size {world}")
        self.images, self.scales = images, scales
        self.batch, self.patch, self.seed = batch, patch, seed
        self.rank, self.world, self.steps = rank, world, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> tuple[int, np.ndarray, np.ndarray]:
        plan = plan_step(self.seed, step, self.images, self.scales, self.batch, self.patch)
        shard = self.batch // self.world
        lrs, hrs = [], []
        for i in range(self.rank * shard, (self.rank + 1) * shard):
            img = self.images[plan.image[i]]
            hr, lr = crop_pair(
                img.hr, img.lr[plan.scale], int(plan.y[i]), int(plan.x[i]), self.patch, plan.scale
            )
            variant = (bool(plan.flip_v[i]), bool(plan.flip_h[i]), int(plan.rot[i]))
            lrs.append(flip_rotate(lr, *variant))
            hrs.append(flip_rotate(hr, *variant))
        return plan.scale, to_nchw_float(lrs), to_nchw_float(hrs)

    def state(self) -> dict:
        """What a checkpoint records about the sampler (it is stateless beyond the step)."""
        return {
            "kind": "seed-step",
            "seed": self.seed,
            "batch": self.batch,
            "patch": self.patch,
            "scales": list(self.scales),
        }
