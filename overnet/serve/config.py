"""What one `overnet serve` application runs with: models, batching, replicas and limits.

Plain data (no Ray import): the CLI builds a ``ServiceConfig``, checks it before Ray
starts, and every replica receives the same copy.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overnet.errors import InputError
from overnet.runtime.upscaler import DEFAULT_MAX_MEMORY, DEFAULT_OVERLAP

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: the Serve application's name: one per service on a cluster (``--name``)
DEFAULT_APP_NAME = "overnet"
DEFAULT_ROUTE_PREFIX = "/"
#: tiles per inference run (``@serve.batch`` max_batch_size), at most each session's own
DEFAULT_MAX_BATCH = 8
#: how long the first tile of a batch waits for more (``batch_wait_timeout_s``)
DEFAULT_MAX_WAIT_MS = 10.0
#: seconds a replica waits for its in-flight requests when it is stopped: None means
#: the request timeout plus a margin, so that a drain never cuts a request short
DEFAULT_DRAIN_S: float | None = None
DRAIN_MARGIN_S = 5.0
#: seconds `overnet serve` waits for every replica to be placed and warmed up
DEFAULT_START_TIMEOUT_S = 600.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each breach has its own status code (limits.py)."""

    max_body_bytes: int = 50_000_000  # 413
    max_pixels: int = 25_000_000  # 413, checked from the header before decoding
    timeout_s: float = 120.0  # 504; a request may ask for less (?timeout=)
    #: upscale requests one replica holds at once (running, or waiting for memory); the
    #: next one gets 503 with Retry-After
    max_queue: int = 32
    #: seconds a request waits for the replica's memory before a 503 (0: at once)
    memory_wait_s: float = 5.0

    def check(self) -> None:
        if self.max_body_bytes < 1:
            raise InputError(f"max body size must be at least 1 byte, got {self.max_body_bytes}")
        if self.max_pixels < 1:
            raise InputError(f"max pixels must be at least 1, got {self.max_pixels}")
        if not 0 < self.timeout_s < math.inf:
            raise InputError(f"the request timeout must be > 0 seconds, got {self.timeout_s}")
        if self.max_queue < 1:
            raise InputError(f"the queue must hold at least 1 request, got {self.max_queue}")
        if not 0 <= self.memory_wait_s < math.inf:
            raise InputError(f"--memory-wait must be >= 0 seconds, got {self.memory_wait_s}")


@dataclass(frozen=True)
class ServiceConfig:
    """Models served together by ``replicas`` (or ``min_replicas``..``max_replicas``)
    replicas; every replica holds every model.

    ``models``: checkpoints, exported files or pretrained names (``model`` is the one
    of a single-model service). Requests ask for any ``scale`` in (1, largest upscale];
    each goes to the served model with the smallest upscale at or above it. ``scale``:
    the scale of a request that gives none (default: the first model's upscale).
    ``tile``: tile side in input pixels (None: `overnet upscale`'s plan for
    ``max_memory``, the whole image when it fits). ``max_memory``: the memory budget of
    one replica, shared by the requests it admits. ``threads``: inference threads per
    session (None: the replica's CPU share, ``num_cpus``). ``name``: the Serve
    application's name (stopping deletes it alone). ``token_sha256``: the hex SHA-256
    of the bearer token (the token itself never reaches Ray), None for no token.
    """

    model: str = ""
    models: tuple[str, ...] = ()
    backend: str = "auto"
    device: str = "cpu"
    precision: str | None = None
    scale: float | None = None
    threads: int | None = None
    name: str = DEFAULT_APP_NAME
    route_prefix: str = DEFAULT_ROUTE_PREFIX
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
    drain_s: float | None = DEFAULT_DRAIN_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    token_sha256: str | None = None
    limits: Limits = field(default_factory=Limits)

    @property
    def model_paths(self) -> tuple[str, ...]:
        """Every served model, in the order given."""
        return self.models or ((self.model,) if self.model else ())

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None

    @property
    def session_threads(self) -> int:
        """Inference threads of each session: ``threads``, else the replica's CPU share
        (OpenVINO turns CPU pinning off below the node's core count, so replicas on one
        node do not pin their threads to the same cores)."""
        return self.threads or max(1, math.floor(self.num_cpus))

    @property
    def drain_timeout_s(self) -> float:
        """Seconds a stopping replica waits for its requests: at least the request
        timeout unless ``drain_s`` says otherwise."""
        if self.drain_s is not None:
            return self.drain_s
        return self.limits.timeout_s + DRAIN_MARGIN_S

    def check(self) -> None:
        """Refuse what a replica could not run, before Ray starts (InputError)."""
        self.limits.check()
        if not self.model_paths:
            raise InputError("no model to serve: give at least one")
        if self.model and self.models:
            raise InputError("give model (one) or models (several), not both")
        names = [model_name(m) for m in self.model_paths]
        if len(set(names)) != len(names):
            raise InputError(f"two served models have the same name: {', '.join(names)}")
        if not _NAME.match(self.name):
            raise InputError(
                f"--name must be 1-63 letters, digits, '_', '.' or '-', got {self.name!r}"
            )
        if not self.route_prefix.startswith("/") or (
            self.route_prefix != "/" and self.route_prefix.endswith("/")
        ):
            raise InputError(
                f"--route-prefix must start with '/' and not end with one, got "
                f"{self.route_prefix!r}"
            )
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
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        if self.drain_s is not None and self.drain_s < 0:
            raise InputError(f"--drain-timeout must be >= 0 seconds, got {self.drain_s}")
        if not 0 < self.start_timeout_s < math.inf:
            raise InputError(f"--start-timeout must be > 0 seconds, got {self.start_timeout_s}")
        if self.token_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.token_sha256):
            raise InputError("token_sha256 must be a hex SHA-256 (auth.token_digest)")
        if self.token_sha256 == hashlib.sha256(b"").hexdigest():  # fail closed
            raise InputError("the token is empty: give a token, or none to serve without one")
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

    @property
    def replica_resources(self) -> dict[str, float]:
        """What Ray reserves for one replica."""
        return {"CPU": self.num_cpus, "GPU": self.num_gpus}

    def deployment_options(self) -> dict[str, Any]:
        """Options for ``serve.deployment``: replicas, resources, concurrency, drain."""
        limits = self.limits
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            # above our own queue limit, so that the replica answers 503 itself (JSON,
            # Retry-After) and health, model and metrics requests still get through
            "max_ongoing_requests": limits.max_queue + 8,
            # Ray Serve's own queue in front of the replicas, bounded: past it the proxy
            # answers 503 at once instead of holding more requests (and their bodies)
            "max_queued_requests": limits.max_queue,
            "graceful_shutdown_timeout_s": self.drain_timeout_s,
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


def model_name(model: str) -> str:
    """A served model's name: its file name without suffixes (``x2`` for ``x2.onnx``,
    ``OverNet_x2`` for ``OverNet_x2.pth.tar``), or a pretrained name as given."""
    return Path(model).name.split(".")[0]
