"""PyTorch backend: a checkpoint or module, CPU or CUDA, fp32/fp16/bf16, channels_last.

torch is imported when a session is created, never when ``overnet.runtime`` is imported.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError, MissingDependencyError
from overnet.runtime.base import Session, SessionInfo


class TorchSession(Session):
    """Eager PyTorch. Accepts numpy batches, or torch tensors (used in place on the device)."""

    def __init__(
        self,
        model: Any,
        *,
        device: str = "cpu",
        scale: float | None = None,
        precision: str = "fp32",
        channels_last: bool = False,
        threads: int | None = None,
    ) -> None:
        torch = require("torch", "the torch backend")
        self._torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise MissingDependencyError(
                "device cuda was requested but torch sees no CUDA GPU (CPU build or no driver)"
            )
        dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise InputError(f"precision must be one of {', '.join(dtypes)}, got {precision!r}")
        if threads:
            torch.set_num_threads(int(threads))
        if isinstance(model, (str, Path)):
            from overnet.weights import load_model

            module = load_model(model, scale, device=device)
            label = str(model)
        else:
            module = model.to(device).eval()
            label = type(model).__name__
        config = getattr(module, "config", None)
        if config is None:
            raise InputError(f"{label} is not an OverNet module (it has no .config)")
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        self._module = module
        self._scale = float(scale) if scale is not None else float(config.scale)
        self._device = torch.device(device)
        self._dtype = dtypes[precision]
        self._channels_last = channels_last
        self.info = SessionInfo(
            backend="torch-cl" if channels_last else "torch",
            device=str(self._device) if device != "cpu" else "CPU",
            device_type="cpu" if self._device.type == "cpu" else "gpu",
            precision=precision,
            scale=self._scale,
            upscale=int(config.upscale),
            model=label,
            threads=torch.get_num_threads() if self._device.type == "cpu" else None,
            notes=[f"torch {torch.__version__}"]
            + (["channels_last memory format"] if channels_last else []),
        )

    def _autocast(self):
        if self._dtype == self._torch.float32:
            return contextlib.nullcontext()
        # autocast keeps the bicubic resizes and reductions in float32 and runs the
        # convolutions in the low precision.
        return self._torch.autocast(self._device.type, dtype=self._dtype)

    def run_tensor(self, batch: Any) -> Any:
        """Torch tensor in, torch float32 tensor out, on the session's device (no copies
        to the host): for callers that already hold CUDA tensors."""
        self._check_open()
        batch = self._check_batch(batch)
        torch = self._torch
        x = batch.to(self._device, torch.float32, non_blocking=True)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            return self._module(x, self._scale).float()

    def _run(self, batch: Any) -> np.ndarray:
        torch = self._torch
        tensor = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        out = self.run_tensor(tensor)
        return np.ascontiguousarray(out.cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        self._module = None
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()
        super().close()
