"""Mutation fuzzing: a damaged checkpoint fails with WeightsError, never another exception."""

from __future__ import annotations

import random

import pytest
import torch

from overnet.errors import WeightsError
from overnet.weights import read_checkpoint

MUTANTS = 200


def _checkpoint(path, *, legacy: bool) -> bytes:
    generator = torch.Generator().manual_seed(0)
    state = {
        "model_state_dict": {
            "entry_1.weight": torch.randn(4, 3, 3, 3, generator=generator),
            "entry_1.bias": torch.randn(4, generator=generator),
            "exit1.weight": torch.randn(3, 4, 3, 3, generator=generator),
        },
        "epoch": 7,
        "note": "fuzz",
        "history": [1.5, 2.5],
    }
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path.read_bytes()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, overwrite, insert, delete or truncate a few bytes (never all of them)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("flip", "byte", "insert", "delete", "truncate"))
        at = rng.randrange(1, len(out))  # keep the first byte: the container's magic
        if kind == "flip":
            out[at] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            out[at] = rng.randrange(256)
        elif kind == "insert":
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "delete":
            del out[at : at + rng.randint(1, 8)]
        else:
            del out[at:]
    return bytes(out)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # a mutated protocol byte
@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-pickle", "zip"])
def test_damaged_checkpoints_raise_only_weights_error(legacy, tmp_path):
    data = _checkpoint(tmp_path / "good.pth", legacy=legacy)
    assert read_checkpoint(tmp_path / "good.pth").tensors["entry_1.bias"].shape == (4,)
    rng = random.Random(20240 + legacy)
    path = tmp_path / "mutant.pth"
    failures: list[str] = []
    refused = 0
    for i in range(MUTANTS):
        path.write_bytes(_mutate(data, rng))
        try:
            read_checkpoint(path)
        except WeightsError as exc:
            refused += 1
            message = str(exc)
            if str(path) not in message or len(message) < 40:
                failures.append(f"mutant {i}: unclear message {message!r}")
            if "corrupt" in message and exc.__cause__ is None:
                failures.append(f"mutant {i}: the unpickler's exception was dropped")
        except Exception as exc:  # the defect under test: anything else escaping
            failures.append(f"mutant {i}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:20])
    assert refused >= MUTANTS // 4  # the mutations do damage the file
