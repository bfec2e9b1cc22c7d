"""What a runtime backend is, declared once in the backend's own module.

Each backend module (``openvino_backend``, ``ort_backend``, ...) defines one ``BACKEND =
BackendSpec(...)``; ``overnet.runtime.registry`` lists them. Everything that needs to know
about backends (``open_session``, ``choose_backend``, availability messages, the tiling
memory table, ``overnet bench`` and the CLI help) reads these declarations. Declaring a
backend imports nothing heavy: the factory imports its runtime when a session is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from overnet.runtime.base import Session
    from overnet.runtime.model_source import ModelSource

#: options every backend takes from ``open_session`` (the rest are backend-specific)
COMMON_OPTIONS = frozenset({"device", "precision", "scale", "threads", "overscale"})

#: (bytes per input pixel, extra bytes per input pixel per upscale**2) of one inference
MemoryModel = tuple[int, int]


@dataclass(frozen=True)
class Variant:
    """A named backend + options combination (``openvino-bf16``, ``torch-cl``, ...)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    #: working memory per input pixel when it differs from the backend's
    memory: MemoryModel | None = None

    @property
    def device(self) -> str:
        """ "cpu" or "cuda": where this variant runs unless the caller says otherwise."""
        return str(self.options.get("device", "cpu")).split(":")[0]


@dataclass(frozen=True)
class BackendSpec:
    """One runtime backend.

    ``loads``: model kinds opened directly ("onnx", "engine", "checkpoint", "module");
    ``converts``: kinds opened after a conversion (a checkpoint through its cached ONNX
    export); ``options``: backend-specific ``open_session`` options on top of
    COMMON_OPTIONS; ``rank``: order of preference of ``backend="auto"`` per device type
    ("cpu"/"cuda", lower first; absent = never chosen automatically there); ``memory``:
    working memory per input pixel for tiling (measured: see ``overnet.runtime.memory``);
    ``factory(source, options)`` opens a session; ``also_needs``: further (module, extra)
    pairs the backend cannot run without; ``fast_precisions``: what ``precision="auto"``
    may pick per device type.
    """

    name: str
    module: str
    extra: str
    loads: tuple[str, ...]
    factory: Callable[[ModelSource, dict[str, Any]], Session]
    variants: tuple[Variant, ...]
    memory: MemoryModel
    options: frozenset[str] = frozenset()
    converts: tuple[str, ...] = ()
    rank: Mapping[str, int] = field(default_factory=dict)
    also_needs: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    #: precisions faster than fp32 that the backend runs natively, per device type, in
    #: the order ``precision="auto"`` tries them (see overnet.runtime.precision)
    fast_precisions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def accepted_options(self) -> frozenset[str]:
        return COMMON_OPTIONS | self.options

    def can_load(self, kind: str) -> bool:
        return kind in self.loads or kind in self.converts
