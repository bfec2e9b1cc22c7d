"""Two-process DDP on CPU (Gloo): ranks stay identical and match one process, same batch."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from overnet.train import train
from overnet.train.checkpoint import load_checkpoint
from tests.train.conftest import tiny_config

STEPS = 4


def _config(tmp: Path, data: Path, out: Path):
    # Not deterministic: that flag imports torch's compiler stack (~4 s per process);
    # CPU convs are reproducible anyway and the match below has a tolerance.
    return tiny_config(tmp, data, steps=STEPS, batch=4, out=out, deterministic=False)


def _rank_main(rank: int, world: int, port: int, tmp: str, data: str) -> None:
    """One torchrun-like rank: the environment torchrun sets, then the public API."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
    )  # fmt: skip
    result = train(_config(Path(tmp), Path(data), Path(tmp) / "ddp"))
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    torch.save(state, Path(tmp) / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path, train_images):
    # spawn, not fork: forking a process whose torch/OpenMP (or OpenVINO) threads already
    # ran deadlocks the children when the whole suite runs first. Costs ~4 s a rank.
    ranks = mp.start_processes(
        _rank_main,
        args=(2, _free_port(), str(tmp_path), str(train_images)),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 120
    while not ranks.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in ranks.processes:
                proc.kill()
            raise AssertionError("DDP ranks did not finish within 120 s")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks diverged at {key}"

    single = train(_config(tmp_path, train_images, tmp_path / "single"))
    diffs = [
        (rank0[k] - v.detach()).abs().max().item() for k, v in single.model.state_dict().items()
    ]
    assert max(diffs) < 1e-4, max(diffs)
    print(f"max |ddp - single| = {max(diffs):.2e}")
    moved = load_checkpoint(tmp_path / "ddp" / "last.pth")["model_state_dict"]
    assert load_checkpoint(tmp_path / "ddp" / "last.pth")["step"] == STEPS
    torch.testing.assert_close(moved, rank0, atol=0, rtol=0)  # rank 0 wrote its weights


def _failing_rank_main(rank: int, world: int, port: int, tmp: str, data: str) -> None:
    """A rank whose rank 0 cannot write its checkpoint (torch.save's disk-full error)."""
    from overnet.train import checkpoint

    def disk_full(payload, path):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    checkpoint._serialize = disk_full  # this child process only
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
    )  # fmt: skip
    outcome = "finished"
    try:
        train(tiny_config(Path(tmp), Path(data), steps=4, save_every=2, out=Path(tmp) / "ddp"))
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    (Path(tmp) / f"outcome{rank}.txt").write_text(outcome)


def test_a_rank0_failure_stops_every_rank_promptly(tmp_path, train_images):
    # Before: rank 1 sat in a barrier; under Gloo it got a cryptic "Connection closed by
    # peer" once rank 0's process group went away, under NCCL it waited for the timeout.
    # Now rank 0 reports its error and rank 1 a TrainError naming rank 0, at once.
    ctx = mp.get_context("spawn")  # see above: fork can deadlock after earlier tests
    args = (2, _free_port(), str(tmp_path), str(train_images))
    procs = [ctx.Process(target=_failing_rank_main, args=(r, *args)) for r in range(2)]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + 60
    for proc in procs:
        proc.join(timeout=max(0.1, deadline - time.monotonic()))
    alive = [proc for proc in procs if proc.is_alive()]
    for proc in alive:
        proc.kill()
    assert not alive, "a rank was still waiting 60 s after rank 0 failed"
    rank0 = (tmp_path / "outcome0.txt").read_text()
    rank1 = (tmp_path / "outcome1.txt").read_text()
    assert rank0.startswith("CheckpointError: saving checkpoint") and "file write failed" in rank0
    assert rank1.startswith("TrainError: rank 0 failed while logging and saving at step 2"), rank1
