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
from overnet.formats.overscale_head import HEAD_KEY
from overnet.runtime.base import Session, SessionInfo
from overnet.runtime.model_source import ModelSource
from overnet.runtime.spec import BackendSpec, Variant


def load_module(model: Any, *, device: str = "cpu", scale: float | None = None) -> Any:
    """An OverNet module on ``device`` in eval mode: ``model`` is a checkpoint path (read
    by ``overnet.weights.load_model``) or an OverNet ``torch.nn.Module``."""
    torch = require("torch", "the torch backend")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MissingDependencyError(
            "device cuda was requested but torch sees no CUDA GPU (CPU build or no driver)"
        )
    if isinstance(model, (str, Path)):
        from overnet.weights import load_model

        return load_model(model, scale, device=device)
    if getattr(model, "config", None) is None:
        raise InputError(f"{type(model).__name__} is not an OverNet module (it has no .config)")
    return model.to(device).eval()


class TorchSession(Session):
    """Eager PyTorch on a loaded module (``load_module``). Accepts numpy batches, or torch
    tensors (used in place on the device)."""

    def __init__(
        self,
        module: Any,
        *,
        scale: float | None = None,
        precision: str = "fp32",
        channels_last: bool = False,
        threads: int | None = None,
        label: str = "",
        compile: bool = False,
    ) -> None:
        torch = require("torch", "the torch backend")
        self._torch = torch
        dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise InputError(f"precision must be one of {', '.join(dtypes)}, got {precision!r}")
        if threads:
            torch.set_num_threads(int(threads))
        config = module.config
        self._module = module.to(memory_format=torch.channels_last) if channels_last else module
        if compile:  # inductor; the first run of each input shape compiles (the cold start)
            self._module = torch.compile(self._module, backend="inductor")
        self._scale = float(scale) if scale is not None else float(config.scale)
        self._device = next(module.parameters()).device
        self._dtype = dtypes[precision]
        self._channels_last = channels_last
        on_cpu = self._device.type == "cpu"
        self.info = SessionInfo(
            backend="torch-compile" if compile else "torch-cl" if channels_last else "torch",
            device="CPU" if on_cpu else str(self._device),
            device_type="cpu" if on_cpu else "gpu",
            precision=precision,
            scale=self._scale,
            upscale=int(config.upscale),
            model=label or type(module).__name__,
            threads=torch.get_num_threads() if on_cpu else None,
            notes=[f"torch {torch.__version__}"]
            + (["channels_last memory format"] if channels_last else [])
            + (
                ["torch.compile (inductor): each new input shape compiles first"] if compile else []
            ),
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


def _open(source: ModelSource, options: dict[str, Any]) -> TorchSession:
    model = source.module if source.kind == "module" else source.path
    device, scale = options.pop("device", "cpu"), options.get("scale")
    overscale = options.pop("overscale", False)
    module = load_module(model, device=device, scale=None if overscale else scale)
    precision = options.pop("precision", None) or "fp32"
    head = None
    if overscale:  # stop at the features; OverscaleSession (open_session) finishes them
        from overnet.model.overscale import OverscaleFeatures, overscale_head

        head = overscale_head(module)
        module = OverscaleFeatures(module)
        options["scale"] = head.upscale
    session = TorchSession(module, precision=precision, label=source.label, **options)
    if head is not None:
        session.info.metadata[HEAD_KEY] = head.to_text()
    return session


BACKEND = BackendSpec(
    name="torch",
    module="torch",
    extra="torch",
    loads=("checkpoint", "module"),
    options=frozenset({"channels_last", "compile"}),
    factory=_open,
    rank={"cpu": 2, "cuda": 2},
    fast_precisions={"cpu": ("bf16",), "cuda": ("fp16",)},
    # peak-RSS growth per input pixel: 6,961 B NCHW, 6,450 B channels_last (upscale 3)
    memory=(6_700, 150),
    variants=(
        Variant("torch", {"channels_last": False}, summary="eager PyTorch, NCHW"),
        Variant(
            "torch-cl",
            {"channels_last": True},
            summary="eager PyTorch, channels_last (1.7x NCHW on CPU)",
            memory=(5_700, 150),
        ),
        Variant(
            "torch-bf16",
            {"precision": "bf16", "channels_last": True},
            summary="PyTorch bf16 autocast (CPUs with AVX512_BF16/AMX)",
            memory=(5_700, 150),
        ),
        Variant(
            "torch-compile",
            {"compile": True, "channels_last": True, "precision": "auto"},
            summary="torch.compile (inductor), channels_last; bf16 where native",
            memory=(5_700, 150),
        ),
        Variant("torch-cuda", {"device": "cuda"}, summary="PyTorch on CUDA, fp32"),
        Variant(
            "torch-cuda-fp16",
            {"device": "cuda", "precision": "fp16"},
            summary="PyTorch on CUDA, fp16 autocast",
        ),
    ),
    summary="eager PyTorch: checkpoints and modules, exact reference",
)
