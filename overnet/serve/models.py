"""The models one replica serves, and which of them answers a request's scale.

Each served model opens the graphs `overnet upscale --scale S` would open for the
scales it covers, so an answer is the command's output for the same model and options:

- at the model's own scale, its own graph (a checkpoint or a file that ends in RGB);
- at any other scale, the graph that ends at the overscaled features (a checkpoint
  opened with ``overscale=True``, or a file exported with ``--overscale``), finished on
  the host at the request's scale (``OverscaleSession``). That graph does not depend on
  the scale, so tiles of requests at 1.3 and 1.7 share its inference runs.

OverNet's models overscale: the x2 model's reconstruction runs at x3 and can finish any
scale up to 3, the x3 model's up to 4. A request at scale S goes to the served model
with the smallest own scale at or above S (x2 for (1, 2], x3 for (2, 3], as `overnet
upscale` picks its default model), above every own scale to the one with the largest
upscale, or to the model it names; a file that ends in RGB serves its own scale only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from overnet.errors import InputError
from overnet.runtime import Session, Upscaler, open_session
from overnet.runtime.model_source import detect_source
from overnet.runtime.overscale import OverscaleSession
from overnet.serve.config import ServiceConfig, model_name
from overnet.serve.limits import ServeError

#: distinct scales whose Upscalers a replica keeps ready (cheap views of one graph)
_KEEP_SCALES = 64


@dataclass(frozen=True)
class Graph:
    """One opened graph: tiles of every request routed to it share its runs."""

    key: str
    run: Callable[[np.ndarray], np.ndarray]  # Nx3xhxw float32 -> RGB or features
    max_batch: int | None
    #: gives back the buffers the session keeps between runs (no run may be in progress)
    release: Callable[[], None]


@dataclass(frozen=True)
class Route:
    """Where a request at ``scale`` goes: its model, graph and Upscaler."""

    model: ServedModel
    scale: float
    graph: Graph
    upscaler: Upscaler


def resolve_model(model: str) -> str:
    """A model path; a pretrained name (``x2``) that is no file here is fetched once into
    the cache of the node this runs on."""
    if Path(model).exists():
        return model
    from overnet.weights import pretrained

    if pretrained.canonical_name(model) is None:
        raise InputError(f"model not found: {model} (not a file, nor a pretrained name)")
    return str(pretrained.resolve(model, say=lambda line: None))


class ServedModel:
    """One model of the service with the graphs it runs (see the module docstring)."""

    def __init__(self, model: str, config: ServiceConfig) -> None:
        self.name = model_name(model)
        self.config = config
        path = resolve_model(model)
        options = {
            "device": config.device,
            "precision": config.precision,
            "threads": config.session_threads,
        }
        self.sessions: list[Session] = []
        own = self._open(open_session(path, config.backend, **options))
        self.head = getattr(own, "head", None)
        #: the model's own scale, and the largest it can finish (its overscale)
        self.scale = float(self.head.scale if self.head is not None else own.info.scale)
        self.upscale = int(own.info.upscale or round(self.scale))
        #: the model's own graph (None for a file that ends at the features)
        self.native: Session | None = None if isinstance(own, OverscaleSession) else own
        #: the features graph and its head, for every scale the own graph is not
        self.features: OverscaleSession | None = own if isinstance(own, OverscaleSession) else None
        if self.features is None and detect_source(path).kind == "checkpoint":
            opened = open_session(path, config.backend, overscale=True, **options)
            self.features = self._open(opened)  # type: ignore[assignment]
        # the scales routed here (set by Models): above low, up to high
        self.low, self.high = 1.0, self.scale
        #: the own graph under the model's name, the features graph under ``name:features``
        self.own_graph: Graph | None = None
        self.features_graph: Graph | None = None
        if self.native is not None:
            native = self.native
            self.own_graph = Graph(
                self.name, native.run, native.info.max_batch, native.release_memory
            )
        if self.features is not None:
            features = self.features
            self.features_graph = Graph(
                f"{self.name}:features", features.run_features, features.info.max_batch,
                features.release_memory,
            )  # fmt: skip
        self.graphs = {g.key: g for g in (self.own_graph, self.features_graph) if g is not None}
        self._upscalers: dict[float, Route] = {}

    def _open(self, session: Session) -> Session:
        self.sessions.append(session)
        return session

    @property
    def info(self) -> Any:
        return (self.native or self.features).info  # type: ignore[union-attr]

    @property
    def any_scale(self) -> bool:
        return self.features is not None

    @property
    def max_scale(self) -> float:
        return float(self.upscale) if self.any_scale else self.scale

    def serves(self, scale: float) -> bool:
        if not 1 <= scale <= self.max_scale:
            return False
        return self.any_scale or (self.native is not None and scale == self.scale)

    def route(self, scale: float) -> Route:
        """The graph and Upscaler for ``scale`` (one this model serves)."""
        route = self._upscalers.get(scale)
        if route is not None:
            return route
        if self.native is not None and scale == self.scale:
            session, graph = self.native, self.own_graph
        else:
            assert self.features is not None and self.features_graph is not None
            session = OverscaleSession(self.features.inner, self.features.head, scale)
            graph = self.features_graph
        config = self.config
        upscaler = Upscaler(
            session,
            tile=config.tile,
            overlap=config.overlap,
            max_memory=config.max_memory,
            batch=config.max_batch,
        )
        upscaler.check_tile()
        route = Route(self, scale, graph, upscaler)
        if len(self._upscalers) >= _KEEP_SCALES:
            self._upscalers.pop(next(iter(self._upscalers)))
        self._upscalers[scale] = route
        return route

    def describe(self) -> dict[str, Any]:
        """This model's entry of ``GET /v1/models``."""
        info = self.info
        return {
            "name": self.name,
            "scale": self.scale,  # its own
            "upscale": self.upscale,  # the largest it can finish
            # the scales a request without ``model`` is routed here for: above
            # scale_min, up to scale_max
            "scale_min": self.low,
            "scale_max": self.high,
            "any_scale": self.any_scale,
            "backend": info.backend,
            "device": info.device,
            "precision": info.precision,
            "threads": info.threads,
            "max_batch": info.max_batch,
        }

    def close(self) -> None:
        for session in self.sessions:
            session.close()


class Models:
    """Every served model, ordered by own scale; ``route(scale, name)`` picks one."""

    def __init__(self, config: ServiceConfig) -> None:
        opened: list[ServedModel] = []
        try:
            for model in config.model_paths:
                opened.append(ServedModel(model, config))
        except BaseException:
            for served in opened:
                served.close()
            raise
        self.models = sorted(opened, key=lambda m: (m.scale, -m.max_scale))
        self.max_scale = max(m.max_scale for m in self.models)
        low = 1.0
        for served in self.models:
            served.low, served.high = low, max(low, served.scale)
            low = served.high
        # above every own scale: the model that finishes the largest scales
        widest = max(self.models, key=lambda m: m.max_scale)
        widest.high = max(widest.high, widest.max_scale)
        first = opened[0]  # opened in the order given
        self.default_scale = float(config.scale or first.scale)
        if not any(m.serves(self.default_scale) for m in self.models):
            raise InputError(f"no served model takes the default scale x{self.default_scale:g}")
        self.graphs = {k: g for m in self.models for k, g in m.graphs.items()}

    @property
    def max_batch(self) -> int | None:
        """The least maximum batch of any graph (None: unbounded)."""
        limits = [g.max_batch for g in self.graphs.values() if g.max_batch is not None]
        return min(limits) if limits else None

    def route(self, scale: float | None, name: str | None = None) -> Route:
        """The route of a request (ServeError 400 for a scale no model serves)."""
        scale = self.default_scale if scale is None else scale
        if not (1 < scale <= self.max_scale) or not math.isfinite(scale):
            raise ServeError(
                "bad_request",
                f"scale must be above 1 and at most {self.max_scale:g} (the largest served "
                f"upscale), got {scale:g}",
            )
        if name is not None:
            named = [m for m in self.models if m.name == name]
            if not named:
                served = ", ".join(m.name for m in self.models)
                raise ServeError("bad_request", f"no model {name!r}; served: {served}")
            if not named[0].serves(scale):
                raise ServeError(
                    "bad_request", f"{name} does not serve x{scale:g}; {_why(named[0])}"
                )
            return named[0].route(scale)
        for served in self.models:
            if served.low < scale <= served.high and served.serves(scale):
                return served.route(scale)
        for served in self.models:  # a range's own model cannot: the next one that can
            if served.serves(scale) and scale <= served.max_scale:
                return served.route(scale)
        raise ServeError(
            "bad_request",
            f"no served model takes x{scale:g}: "
            + "; ".join(f"{m.name} {_why(m)}" for m in self.models),
        )

    def describe(self) -> list[dict[str, Any]]:
        return [m.describe() for m in self.models]

    def release_memory(self, graph: str | None = None) -> None:
        """The kept working buffers of one graph (by key), or of every graph, back; call
        it where no run is in progress (the replica's inference thread)."""
        for key, opened in self.graphs.items():
            if graph is None or key == graph:
                opened.release()

    def close(self) -> None:
        for served in self.models:
            served.close()


def _why(model: ServedModel) -> str:
    if model.any_scale:
        return f"takes (1, {model.upscale}]"
    return (
        f"takes x{model.scale:g} only (a file that ends in RGB: serve its checkpoint, or "
        "export it with `overnet export --overscale`, for other scales)"
    )
