"""What one `overnet serve` application runs with: model, batching, replicas and limits.

Plain data (no Ray import): the CLI builds a ``ServiceConfig``, checks it before Ray
starts, and every replica receives the same copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overnet.errors import InputError
from overnet.runtime.upscaler import DEFAULT_MAX_MEMORY, DEFAULT_OVERLAP

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: tiles per inference run (``@serve.batch`` max_batch_size)
DEFAULT_MAX_BATCH = 8
#: how long the first tile of a batch waits for more (``batch_wait_timeout_s``)
DEFAULT_MAX_WAIT_MS = 10.0
#: seconds a replica waits for its in-flight requests when it is stopped
DEFAULT_DRAIN_S = 30.0


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each breach has its own status code (limits.py)."""

    max_body_bytes: int = 50_000_000  # 413
    max_pixels: int = 25_000_000  # 413, checked from the header before decoding
    timeout_s: float = 120.0  # 504; a request may ask for less (?timeout=)
    #: upscale requests one replica holds at once (running or waiting for tiles); the
    #: next one gets 503 with Retry-After
    max_queue: int = 32

    def check(self) -> None:
        if self.max_body_bytes < 1:
            raise InputError(f"max body size must be at least 1 byte, got {self.max_body_bytes}")
        if self.max_pixels < 1:
            raise InputError(f"max pixels must be at least 1, got {self.max_pixels}")
        if not 0 < self.timeout_s < math.inf:
            raise InputError(f"the request timeout must be > 0 seconds, got {self.timeout_s}")
        if self.max_queue < 1:
            raise InputError(f"the queue must hold at least 1 request, got {self.max_queue}")


@dataclass(frozen=True)
class ServiceConfig:
    """One model served by ``replicas`` (or ``min_replicas``..``max_replicas``) replicas.

    ``tile``: tile side in input pixels (None: `overnet upscale`'s plan for
    ``max_memory``, the whole image when it fits). ``token_sha256``: the hex
    SHA-256 of the bearer token (the token itself never reaches Ray), None for no token.
    """

    model: str
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = None
    scale: float | None = None
    threads: int | None = None
    name: str = ""
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    max_memory: str | int = DEFAULT_MAX_MEMORY
    max_batch: int = DEFAULT_MAX_BATCH
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    drain_s: float = DEFAULT_DRAIN_S
    token_sha256: str | None = None
    limits: Limits = field(default_factory=Limits)

    @property
    def model_name(self) -> str:
        return self.name or Path(self.model).name.split(".")[0]

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None

    def check(self) -> None:
        """Refuse what a replica could not run, before Ray starts (InputError)."""
        self.limits.check()
        if self.tile is not None and self.tile < 1:
            raise InputError(f"--tile must be >= 1 (or left out), got {self.tile}")
        if self.overlap < 0:
            raise InputError(f"--overlap must be >= 0, got {self.overlap}")
        if self.max_batch < 1:
            raise InputError(f"--max-batch must be at least 1, got {self.max_batch}")
        if not 0 <= self.max_wait_ms < math.inf:
            raise InputError(f"--max-wait-ms must be >= 0, got {self.max_wait_ms}")
        if self.num_gpus < 0 or self.num_cpus < 0:
            raise InputError("--num-gpus and --num-cpus must be >= 0 (fractions allowed)")
        if self.drain_s < 0:
            raise InputError(f"--drain-timeout must be >= 0 seconds, got {self.drain_s}")
        self._check_replicas()

    def _check_replicas(self) -> None:
        if not self.autoscaling:
            if self.replicas < 1:
                raise InputError(f"--replicas must be at least 1, got {self.replicas}")
            return
        low, high = self.min_replicas, self.max_replicas
        if low is None or high is None:
            raise InputError("autoscaling needs both --min-replicas and --max-replicas")
        if not 0 <= low <= high or high < 1:
            raise InputError(
                f"need 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1, got "
                f"{low} and {high}"
            )

    def deployment_options(self) -> dict[str, Any]:
        """Options for ``serve.deployment``: replicas, resources, concurrency, drain."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            # above our own queue limit, so that the replica answers 503 itself (JSON,
            # Retry-After) and health, model and metrics requests still get through
            "max_ongoing_requests": self.limits.max_queue + 8,
            "graceful_shutdown_timeout_s": self.drain_s,
            "graceful_shutdown_wait_loop_s": 0.5,
        }
        if self.autoscaling:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "initial_replicas": max(1, self.min_replicas or 0),
                # a replica is busy with this many requests whose tiles fill its batches
                "target_ongoing_requests": max(2, self.max_batch // 2),
            }
        else:
            options["num_replicas"] = self.replicas
        return options
