"""Lazy imports of optional heavy dependencies with an actionable error."""

from __future__ import annotations

import importlib
from types import ModuleType

from overnet.errors import MissingDependencyError

# module name -> the extra of this package that installs it
_EXTRA_FOR = {
    "torch": "torch",
    "safetensors": "torch",
    "onnx": "export",
    "onnxscript": "export",
    "onnxconverter_common": "export",
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "tensorrt": "tensorrt",
    "cuda": "gpu",
    "matplotlib": "plot",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_FOR.get(top)
        hint = f"pip install 'overnet[{extra}]'" if extra else f"pip install {top}"
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"'{module}' is not installed{what}: {exc}. Install it with: {hint}"
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
