"""Run OverNet through onnxruntime, OpenVINO, PyTorch or TensorRT with one interface.

numpy in, numpy out: ``Session.run`` maps Nx3xHxW float32 RGB [0, 1] to Nx3xH'xW'.
Importing this package never imports torch (the torch backend imports it on use).
"""

from overnet.runtime.base import PRECISIONS, Session, SessionInfo
from overnet.runtime.model_source import ModelSource, detect_source
from overnet.runtime.registry import (
    BACKENDS,
    VARIANTS,
    available_backends,
    backend_status,
    choose_backend,
    open_session,
)
from overnet.runtime.upscaler import Upscaler

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "VARIANTS",
    "ModelSource",
    "Session",
    "SessionInfo",
    "Upscaler",
    "available_backends",
    "backend_status",
    "choose_backend",
    "detect_source",
    "open_session",
]
