"""Canonicalise state-dict keys and detect the network's configuration from shapes."""

from __future__ import annotations

import re

import torch

from overnet.config import SUPPORTED_UPSCALES, OverNetConfig, default_scale_for
from overnet.errors import WeightsError

_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP and torch.compile wrappers
_WN_ORIGINAL0 = ".parametrizations.weight.original0"
_WN_ORIGINAL1 = ".parametrizations.weight.original1"
_UPSAMPLE_WEIGHT = re.compile(
    r"^upsample\.up\.body\.(\d+)\.(weight|weight_v|parametrizations\.weight\.original1)$"
)


def canonical_keys(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes and map legacy weight norm (g/v) to parametrization keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        name = key
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        if name.endswith(".weight_g"):
            name = name[: -len(".weight_g")] + _WN_ORIGINAL0
        elif name.endswith(".weight_v"):
            name = name[: -len(".weight_v")] + _WN_ORIGINAL1
        if name in out:
            raise WeightsError(
                f"checkpoint has two tensors for '{name}' (keys differ only by prefix)"
            )
        out[name] = value
    return out


def uses_weight_norm(tensors: dict[str, torch.Tensor]) -> bool:
    """True for weight-norm (g/v) checkpoints, False for folded ones; mixed forms are refused."""
    wn = {k[: -len(_WN_ORIGINAL1)] for k in tensors if k.endswith(_WN_ORIGINAL1)}
    plain = {k[: -len(".weight")] for k in tensors if k.endswith(".weight")}
    if wn and plain & wn:
        both = sorted(plain & wn)[:3]
        raise WeightsError(f"checkpoint holds both folded and weight-norm weights for {both}")
    return bool(wn)


def detect_config(tensors: dict[str, torch.Tensor], scale: float | None = None) -> OverNetConfig:
    """Read channels and upscale from tensor shapes (never from the file name)."""
    stages = sorted(
        (int(m.group(1)), v) for k, v in tensors.items() if (m := _UPSAMPLE_WEIGHT.match(k))
    )
    entry = tensors.get("entry_1.weight", tensors.get("entry_1" + _WN_ORIGINAL1))
    if not stages or entry is None:
        missing = [
            n for n, ok in (("entry_1", entry is not None), ("upsample.up.body", stages)) if not ok
        ]
        sample = sorted(tensors)[:6]
        raise WeightsError(
            "not an OverNet checkpoint: no tensors for "
            + ", ".join(missing)
            + f" (found keys such as {sample}); expected the upstream OverNet layout"
        )
    channels = int(entry.shape[0])
    upscale = 1
    for _, weight in stages:
        ratio = weight.shape[0] / channels
        r = round(ratio**0.5)
        if r * r * channels != weight.shape[0] or r < 2:
            raise WeightsError(
                f"upsample conv has {weight.shape[0]} output channels, not {channels} x r^2; "
                "this is not an OverNet reconstruction module"
            )
        upscale *= r
    if upscale not in SUPPORTED_UPSCALES:
        raise WeightsError(f"detected upscale {upscale} is not one of {SUPPORTED_UPSCALES}")
    return OverNetConfig(
        upscale=upscale,
        scale=default_scale_for(upscale) if scale is None else scale,
        channels=channels,
    )


def check_against(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> None:
    """Raise a WeightsError listing missing/unexpected keys and mismatched shapes."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(tensors[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if expected[k].shape != tensors[k].shape
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {missing[:5]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:5]})")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:5])})")
    raise WeightsError(
        "checkpoint does not fit the OverNet architecture: "
        + ", ".join(parts)
        + ". Is it a checkpoint of another network, or a different channel width?"
    )
