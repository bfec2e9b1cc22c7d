"""Optimizers of the recipe: AdamP (Heo et al., ICLR 2021) or Adam, and the step decay."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class AdamP(torch.optim.Optimizer):
    """Adam whose update loses its radial part on scale-invariant weights.

    A weight is treated as scale-invariant when its gradient is (nearly) orthogonal
    to it: cosine below ``delta / sqrt(n)`` for the rows of a view (per output
    channel, then the whole tensor). There the radial component of the update
    only inflates the weight norm, which shrinks the effective step size
    (the "slowdown"), so it is projected out and weight decay is scaled by
    ``wd_ratio``. Weight-normed convs (OverNet's ``weight_v``) are exactly such
    weights. Other tensors get the plain Adam update (decoupled weight decay).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        delta: float = 0.1,
        wd_ratio: float = 0.1,
        nesterov: bool = False,
    ) -> None:
        if not lr > 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError(f"invalid AdamP settings lr={lr}, betas={betas}")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            delta=delta,
            wd_ratio=wd_ratio,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
                if group["nesterov"]:
                    update = (exp_avg * beta1 + grad * (1 - beta1)) / denom
                else:
                    update = exp_avg / denom
                decay_ratio = 1.0
                if p.dim() > 1:
                    update, projected = _project_radial(
                        p, grad, update, group["delta"], group["eps"]
                    )
                    if projected:
                        decay_ratio = group["wd_ratio"]
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"] * decay_ratio)
                p.add_(update, alpha=-group["lr"] / (1 - beta1**t))
        return loss


def _project_radial(
    weight: torch.Tensor, grad: torch.Tensor, update: torch.Tensor, delta: float, eps: float
) -> tuple[torch.Tensor, bool]:
    """Remove the component of ``update`` along ``weight`` when the weight looks
    scale-invariant; per output channel first, then the tensor as a whole."""
    for rows in (weight.shape[0], 1):
        w = weight.reshape(rows, -1)
        g = grad.reshape(rows, -1)
        w_norm = w.norm(dim=1).add_(eps)
        cosine = (w * g).sum(dim=1).abs() / (w_norm * g.norm(dim=1).add_(eps))
        if cosine.max() < delta / math.sqrt(w.shape[1]):
            unit = w / w_norm.unsqueeze(1)
            u = update.reshape(rows, -1)
            u = u - unit * (unit * u).sum(dim=1, keepdim=True)
            return u.reshape(update.shape), True
    return update, False


def build_optimizer(model: nn.Module, name: str, lr: float) -> torch.optim.Optimizer:
    """AdamP (the paper's) or Adam over the trainable parameters, default betas/eps."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adamp":
        return AdamP(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, decay: int
) -> torch.optim.lr_scheduler.StepLR:
    """lr(step) = lr0 * 0.5 ** (step // decay), stepped once per training step."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=decay, gamma=0.5)
