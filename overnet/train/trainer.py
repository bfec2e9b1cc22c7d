"""The training loop: L1 on aligned patches, clipping, step decay, checkpoints, validation.

Run folder (``config.out``, written by rank 0 only):
  config.json        the settings, the network config, data summary and world size
  log.csv            step, loss, lr, val_psnr, bicubic_psnr, patches_per_s, elapsed_s
  last.pth           the resume checkpoint (atomic; see overnet.train.checkpoint)
  best.safetensors   the best weights by validation PSNR (folded, for eval/export)
  final.safetensors  the weights after the last step
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from overnet.config import OverNetConfig
from overnet.model import OverNet
from overnet.train import distributed
from overnet.train.checkpoint import (
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    save_weights_file,
)
from overnet.train.config import RESUME_KEYS, TrainConfig
from overnet.train.data import TrainSet, load_train_set
from overnet.train.distributed import DistInfo
from overnet.train.errors import CheckpointError, TrainDataError, TrainError
from overnet.train.modelinit import build_model, model_config, read_init
from overnet.train.optim import build_optimizer, build_scheduler
from overnet.train.runlog import CsvLog, write_json
from overnet.train.sampler import StepBatches
from overnet.train.validate import Validator, ValResult

CHECKPOINT_NAME = "last.pth"
BEST_NAME = "best.safetensors"
FINAL_NAME = "final.safetensors"

#: Called after every optimizer step with (completed steps, this rank's loss).
StepHook = Callable[[int, float], None]


@dataclass
class TrainResult:
    """Outcome of :func:`train`; ``model`` is the trained weight-normed network."""

    run_dir: Path
    step: int
    model: OverNet
    best_psnr: float = math.nan
    best_step: int = 0
    last_val: ValResult | None = None
    patches_per_s: float = math.nan
    data_summary: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME


def _device(name: str, info_local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda was asked but PyTorch sees no CUDA GPU; use cpu")
        if device.index is None:
            device = torch.device("cuda", info_local_rank)
        torch.cuda.set_device(device)
    return device


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _check_resumable(payload: dict, config: TrainConfig, data: TrainSet, path: Path) -> None:
    saved = TrainConfig.from_dict(payload.get("train_config", {}))
    diffs = []
    for key in RESUME_KEYS:
        if key == "upscale":
            continue  # checked against the network below
        if key == "lr" and config.lr is None:
            continue  # no --lr: the run keeps the rate it started with (see setup)
        old = saved.learning_rate if key == "lr" else getattr(saved, key)
        new = config.lr if key == "lr" else getattr(config, key)
        if old != new:
            diffs.append(f"{key} {old} -> {new}")
    saved_upscale = payload["model_config"]["upscale"]
    if config.upscale is not None and config.upscale != saved_upscale:
        diffs.append(f"upscale {saved_upscale} -> {config.upscale}")
    if diffs:
        raise CheckpointError(
            f"cannot resume {path}: settings changed ({'; '.join(diffs)}). A resumed run must "
            "keep them to replay the same training; restore them, or start a new --out with "
            f"--init {path}"
        )
    if payload.get("data_fingerprint") != data.fingerprint():
        raise CheckpointError(
            f"cannot resume {path}: the training images differ from the ones it was trained "
            f"on (now {data.summary()}); resuming needs the same data to continue the same "
            f"batches. Restore the data, or start a new --out with --init {path}"
        )


class _Trainer:
    def __init__(self, config: TrainConfig, hook: StepHook | None) -> None:
        self.config = config.validate()
        self.hook = hook
        self.notes: list[str] = []
        self.run_dir = config.out

    def echo(self, text: str) -> None:
        """A line on stderr from rank 0 (notes always; progress bars follow --progress)."""
        if self.info.is_main:
            print(text, file=sys.stderr, flush=True)

    # -- set-up -------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = _device(cfg.device, local_rank)
        self.info: DistInfo = distributed.setup(self.device)
        if self.info.enabled and cfg.batch % self.info.world:
            raise TrainError(
                f"--batch {cfg.batch} is the global batch and must divide evenly over "
                f"{self.info.world} processes; use a multiple of {self.info.world}"
            )
        if self.info.enabled and self.device.type == "cpu":
            # Ranks on one host share its cores; oversubscription slows every rank down.
            per_host = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.info.world)))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // per_host))
        _seed_everything(cfg.seed)

        ckpt_path = self.run_dir / CHECKPOINT_NAME
        payload = None
        if ckpt_path.exists() and not cfg.resume:
            raise CheckpointError(
                f"{self.run_dir} already holds a training checkpoint ({ckpt_path}); pass "
                "--resume to continue it, or choose another --out"
            )
        if cfg.resume:
            if ckpt_path.exists():
                payload = load_checkpoint(ckpt_path)
            else:
                self.notes.append(f"--resume: no {ckpt_path} yet, starting at step 0")

        self.data = load_train_set(
            cfg.data, cfg.scales, cfg.patch, cfg.cache, cfg.progress and self.info.is_main
        )
        self.notes += self.data.notes
        if payload is not None:
            _check_resumable(payload, cfg, self.data, ckpt_path)
            if cfg.lr is None:
                # Without --lr the default depends on --init (3e-5 with, 1e-3 without),
                # which a resume need not repeat: keep the rate the run was started with.
                saved_lr = TrainConfig.from_dict(payload.get("train_config", {})).learning_rate
                self.config = cfg = replace(cfg, lr=saved_lr)

        if payload is not None:
            self.model_cfg = OverNetConfig(**payload["model_config"])
            model = build_model(self.model_cfg, None)
            model.load_state_dict(payload["model_state_dict"])
            if cfg.init is not None:
                self.notes.append(f"--init {cfg.init} ignored: resuming from {ckpt_path}")
        else:
            init = read_init(cfg.init) if cfg.init is not None else None
            self.model_cfg = model_config(cfg, init)
            model = build_model(self.model_cfg, init)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.optimizer, cfg.learning_rate)
        self.scheduler = build_scheduler(self.optimizer, cfg.decay)
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=cfg.amp and self.device.type == "cuda"
        )
        self.step, self.best_psnr, self.best_step = 0, -math.inf, 0
        if payload is not None:
            self.optimizer.load_state_dict(payload["optimizer_state_dict"])
            self.scheduler.load_state_dict(payload["scheduler_state_dict"])
            if payload.get("scaler_state_dict"):
                self.scaler.load_state_dict(payload["scaler_state_dict"])
            self.step = int(payload["step"])
            self.best_psnr = float(payload.get("best_psnr", -math.inf))
            self.best_step = int(payload.get("best_step", 0))
            restore_rng(payload["rng"])
            self.notes.append(f"resumed {ckpt_path} at step {self.step}")

        self.validator: Validator | None = None
        self._main_only("reading --val and starting the run folder", self._start_main, payload)
        self.net: torch.nn.Module = self.model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.source = StepBatches(
            self.data.images,
            cfg.scales,
            cfg.batch,
            cfg.patch,
            cfg.seed,
            self.info.rank,
            self.info.world,
            cfg.steps,
        )

    def _start_main(self, payload: dict | None) -> None:
        """Rank 0's set-up: the validation sets, log.csv and config.json."""
        cfg = self.config
        self.validator = Validator(cfg.val, cfg.scales) if cfg.val else None
        self.log = CsvLog(self.run_dir / "log.csv")
        self.log.start(self.step if payload is not None else None)
        write_json(self.run_dir / "config.json", self._describe())

    def _describe(self) -> dict:
        return {
            "train": self.config.to_dict(),
            "model": self.model_cfg.to_dict(),
            "world_size": self.info.world,
            "device": str(self.device),
            "data": {
                "summary": self.data.summary(),
                "images": len(self.data.images),
                "skipped": {k: len(v) for k, v in self.data.skipped.items()},
                "fingerprint": self.data.fingerprint(),
            },
            "torch": torch.__version__,
        }

    # -- pieces of a step ---------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        steps = range(self.step, self.config.steps)
        if self.config.workers == 0:
            for s in steps:
                scale, lr, hr = self.source[s]
                yield scale, torch.from_numpy(lr), torch.from_numpy(hr)
            return
        from torch.utils.data import DataLoader

        # Items are whole batches indexed by step, so workers never change the data.
        loader = DataLoader(
            self.source,
            batch_size=None,
            sampler=steps,
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=2,
        )
        for scale, lr, hr in loader:
            yield int(scale), lr, hr

    def _train_step(self, scale: int, lr: torch.Tensor, hr: torch.Tensor) -> float:
        cfg = self.config
        lr = lr.to(self.device, non_blocking=True)
        hr = hr.to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype) if cfg.amp else nullcontext()
        )
        with autocast:
            sr = self.net(lr, scale)
        loss = F.l1_loss(sr.float(), hr)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.last_lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        self.scheduler.step()
        return float(loss.detach())

    def _validate(self) -> ValResult | None:
        if self.validator is None:
            return None
        result = self.validator.run(self.model, self.device)
        if math.isnan(result.psnr):
            raise TrainDataError(
                "validation failed on every image: "
                + "; ".join(result.failures[:3])
                + ". Fix the --val folders or leave --val out"
            )
        if result.psnr > self.best_psnr:
            save_weights_file(self.model, self.run_dir / BEST_NAME)
            self.best_psnr, self.best_step = result.psnr, self.step
        return result

    def _save(self) -> None:
        payload = {
            "model_state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "model_config": self.model_cfg.to_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
            "scheduler_state_dict": self.scheduler.state_dict(),
            "scaler_state_dict": self.scaler.state_dict(),
            "step": self.step,
            "best_psnr": self.best_psnr,
            "best_step": self.best_step,
            "rng": capture_rng(),
            "sampler": self.source.state(),
            "data_fingerprint": self.data.fingerprint(),
            "train_config": self.config.to_dict(),
        }
        save_checkpoint(payload, self.run_dir / CHECKPOINT_NAME)

    # -- rank 0's work ---------------------------------------------------------------------
    def _main_only(self, what: str, work: Callable[..., object], *args: object) -> None:
        """Run ``work(*args)`` on rank 0, then tell every rank whether it failed.

        Every rank must call this at the same point. Rank 0 re-raises its own error; the
        others raise a TrainError naming it. Without this a rank-0 error (a full disk, a
        bad --val folder) left the other ranks waiting in their next collective until
        the process group timed out (30 minutes by default).
        """
        error: Exception | None = None
        if self.info.is_main:
            try:
                work(*args)
            except Exception as exc:
                error = exc
        failed = distributed.failed_ranks(error is not None, self.info, self.device)
        if error is not None:
            raise error
        if failed:
            raise TrainError(
                f"rank {', '.join(map(str, failed))} failed while {what} at step {self.step} "
                f"(its error is in its output); rank {self.info.rank} stops too. Fix the "
                f"cause and continue with --resume"
            )

    def _validate_start(self, result: TrainResult) -> None:
        result.last_val = self._validate()
        if result.last_val is None:
            return
        self.log.append(step=0, val_psnr=result.last_val.psnr, bicubic_psnr=result.last_val.bicubic)
        self.echo(
            f"step 0: validation PSNR-Y {result.last_val.psnr:.3f} dB "
            f"(bicubic {result.last_val.bicubic:.3f})"
        )

    def _report(
        self,
        result: TrainResult,
        mean_loss: float,
        rate: float,
        val_now: bool,
        save_now: bool,
        bar,
        start: float,
    ) -> None:
        val = self._validate() if val_now else None
        if val is not None:
            result.last_val = val
        self.log.append(
            step=self.step,
            loss=mean_loss,
            lr=self.last_lr,
            val_psnr=val.psnr if val else None,
            bicubic_psnr=val.bicubic if val else None,
            patches_per_s=rate,
            elapsed_s=time.perf_counter() - start,
        )
        bar.set_postfix(loss=f"{mean_loss:.4f}", psnr=f"{self.best_psnr:.2f}")
        if save_now:
            self._save()

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.config
        for note in self.notes:
            self.echo(f"note: {note}")
        self.echo(
            f"training {self.data.summary()}; x{','.join(map(str, cfg.scales))} with upscale "
            f"{self.model_cfg.upscale}, {self.info.world} process(es) on {self.device}"
        )
        result = TrainResult(self.run_dir, self.step, self.model, data_summary=self.data.summary())
        from tqdm import tqdm

        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            unit="step",
            file=sys.stderr,
            disable=not (cfg.progress and self.info.is_main),
            leave=False,
        )
        losses: list[float] = []
        window_step = self.step
        start = time.perf_counter()
        if self.step == 0 and cfg.val and cfg.val_at_start:
            # The starting point (random or --init) as row 0: fine-tuning shows its gain.
            self._main_only("validating the starting weights", self._validate_start, result)
        window_start = time.perf_counter()
        try:
            for scale, lr, hr in self._batches():
                losses.append(self._train_step(scale, lr, hr))
                self.step += 1
                bar.update(1)
                if self.hook is not None:
                    self.hook(self.step, losses[-1])
                done = self.step == cfg.steps
                log_now = done or self.step % cfg.log_every == 0
                val_now = done or self.step % cfg.val_every == 0
                save_now = done or self.step % cfg.save_every == 0
                if not (log_now or val_now or save_now):
                    continue
                # Validation and saving happen after this, outside the timed window.
                train_time = time.perf_counter() - window_start
                rate = (self.step - window_step) * cfg.batch / max(train_time, 1e-9)
                mean_loss = distributed.mean_across(float(np.mean(losses)), self.info, self.device)
                if not math.isfinite(mean_loss):
                    raise TrainError(
                        f"the training loss became {mean_loss} by step {self.step}; lower --lr "
                        f"(now {cfg.learning_rate}) or --clip, and check the data. The last "
                        f"good checkpoint is {self.run_dir / CHECKPOINT_NAME}"
                    )
                # Rank 0 validates, logs and saves; every rank then learns whether that
                # failed (the collective also stands for a barrier).
                what = "validating and saving" if val_now else "logging and saving"
                self._main_only(
                    what, self._report, result, mean_loss, rate, val_now, save_now, bar, start
                )
                result.patches_per_s = rate
                losses.clear()
                window_start, window_step = time.perf_counter(), self.step
            if self.step >= cfg.steps:
                self._main_only(
                    f"writing {FINAL_NAME}",
                    save_weights_file,
                    self.model,
                    self.run_dir / FINAL_NAME,
                )
        finally:
            bar.close()
        result.step = self.step
        result.best_psnr = self.best_psnr if math.isfinite(self.best_psnr) else math.nan
        result.best_step = self.best_step
        result.notes = self.notes
        return result


def train(config: TrainConfig, *, on_step: StepHook | None = None) -> TrainResult:
    """Train (or resume) the run ``config`` describes; see the module docstring.

    Launched by ``torchrun`` (WORLD_SIZE > 1) it trains data-parallel: each rank
    takes its shard of the global batch and only rank 0 writes the run folder.
    ``on_step`` is called after every step (tests use it to simulate a kill).
    """
    trainer = _Trainer(config, on_step)
    previous = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        # cuBLAS needs this before its first call to be reproducible.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    try:
        trainer.setup()
        return trainer.run()
    finally:
        torch.use_deterministic_algorithms(previous)
        if hasattr(trainer, "info"):
            distributed.teardown(trainer.info)
