"""The backend-neutral session interface: NCHW float32 [0, 1] in, NCHW float32 out."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from overnet.errors import InputError, SessionClosedError

PRECISIONS = ("fp32", "fp16", "bf16")
#: what ``precision=`` accepts: a precision, or "auto" (overnet.runtime.precision)
PRECISION_CHOICES = ("auto", *PRECISIONS)


@dataclass
class SessionInfo:
    """What actually runs: filled from the runtime after the session is created."""

    backend: str
    device: str
    precision: str
    scale: float
    upscale: int | None  # None when the model file does not record it
    model: str = ""
    providers: list[str] = field(default_factory=list)
    threads: int | None = None
    #: input (height, width) limits; None = unbounded (TensorRT engines have a profile)
    min_hw: tuple[int, int] = (1, 1)
    max_hw: tuple[int, int] | None = None
    max_batch: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: where the model runs, for decisions (``device`` is for people): "cpu" or "gpu"
    device_type: str = "cpu"
    #: the graph ends at the overscaled features, finished to ``scale`` on the host
    overscale: bool = False

    @property
    def on_gpu(self) -> bool:
        return self.device_type == "gpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line such as ``openvino on CPU (fp32, 2 threads), x2``."""
        extra = [self.precision]
        if self.threads:
            extra.append(f"{self.threads} threads")
        if self.providers:
            extra.append("providers " + ",".join(self.providers))
        via = (
            f" (overscale: x{self.upscale} features, finished on the host)"
            if self.overscale
            else ""
        )
        return f"{self.backend} on {self.device} ({', '.join(extra)}), x{self.scale:g}{via}"


class Session(ABC):
    """An opened model. ``run`` maps an Nx3xHxW float32 RGB [0, 1] batch to Nx3xH'xW'.

    Sessions are context managers; ``close`` releases the runtime's memory. ``last_run_s``
    holds the wall time of the latest ``run`` call (conversion included).
    """

    info: SessionInfo
    last_run_s: float = float("nan")

    def run(self, batch: Any) -> np.ndarray:
        """Run one batch; returns a new float32 NCHW array (values not clipped)."""
        return self._timed(self._run, batch)

    __call__ = run

    def run_borrowed(self, batch: Any) -> np.ndarray:
        """``run``, but the result may be a buffer the session overwrites on its next call
        (no copy): for callers that consume it at once (the overscale tiler, whose
        64-channel features are large). Sessions without such a buffer return ``run``'s."""
        return self._timed(self._run_borrowed, batch)

    def _timed(self, impl: Callable[[Any], np.ndarray], batch: Any) -> np.ndarray:
        """Checks, then ``impl(batch)`` timed into ``last_run_s``."""
        self._check_open()
        batch = self._check_batch(batch)
        start = time.perf_counter()
        out = impl(batch)
        self.last_run_s = time.perf_counter() - start
        return out

    @abstractmethod
    def _run(self, batch: Any) -> np.ndarray: ...

    def _run_borrowed(self, batch: Any) -> np.ndarray:
        return self._run(batch)

    def release_memory(self) -> None:
        """Give back working buffers kept between runs (sized for the largest input run
        so far); the session stays open and the next run allocates again. Call it only
        when no run is in progress. Sessions without such buffers do nothing."""
        return None  # a default for every backend, not an abstract step

    def close(self) -> None:
        """Release the runtime objects; ``run`` raises afterwards."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return getattr(self, "_closed", False)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.info.describe()
        return f"<{type(self).__name__} {state}>"

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosedError(
                f"this {self.info.backend} session is closed; open a new one with open_session()"
            )

    def _check_batch(self, batch: Any) -> Any:
        """Validate layout and size; numpy inputs become contiguous float32."""
        shape = tuple(getattr(batch, "shape", ()))
        if len(shape) != 4 or shape[1] != 3:
            raise InputError(
                f"expected an Nx3xHxW RGB batch (NCHW float32 in [0, 1]), got shape {shape}; "
                "convert HWC images with overnet.imaging.rgb8_to_nchw or use Upscaler"
            )
        n, _, h, w = shape
        info = self.info
        if n < 1 or h < info.min_hw[0] or w < info.min_hw[1]:
            raise InputError(
                f"input {h}x{w} (batch {n}) is below the model minimum "
                f"{info.min_hw[0]}x{info.min_hw[1]}"
            )
        if info.max_hw is not None and (h > info.max_hw[0] or w > info.max_hw[1]):
            raise InputError(
                f"input {h}x{w} is outside the {info.backend} profile (max "
                f"{info.max_hw[0]}x{info.max_hw[1]}); tile it (Upscaler does) or rebuild "
                "the engine with a larger --max shape"
            )
        if info.max_batch is not None and n > info.max_batch:
            raise InputError(
                f"batch {n} is above the {info.backend} profile maximum {info.max_batch}"
            )
        if isinstance(batch, np.ndarray):
            if not np.issubdtype(batch.dtype, np.floating):
                raise InputError(
                    f"expected float32 values in [0, 1], got dtype {batch.dtype}; "
                    "divide integer images by their maximum (255 or 65535) first"
                )
            return np.ascontiguousarray(batch, dtype=np.float32)
        if hasattr(batch, "is_floating_point") and not batch.is_floating_point():
            raise InputError(
                f"expected a float tensor with values in [0, 1], got {batch.dtype}; "
                "divide integer images by their maximum (255 or 65535) first"
            )
        return batch


def as_numpy(batch: Any) -> np.ndarray:
    """A numpy float32 batch from numpy or a torch tensor (copied to the host)."""
    if isinstance(batch, np.ndarray):
        return batch
    return np.ascontiguousarray(batch.detach().float().cpu().numpy())


def run_one_at_a_time(batch: np.ndarray, run_one: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run an Nx3xHxW batch through a 1x3xHxW model (fixed-shape files: LiteRT, ExecuTorch)
    one item at a time; each output is copied, as the runtimes reuse their buffers."""
    return np.stack([np.array(run_one(item[None])[0], copy=True) for item in batch])
