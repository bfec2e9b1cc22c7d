"""Lazy imports of optional heavy dependencies with an actionable error."""

from __future__ import annotations

import importlib
import importlib.util
import sys
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
    "nncf": "int8",
    "ray": "serve",  # overnet.scaleout asks for the `ray` extra (ray[data]) itself
    "pyarrow": "ray",
    "pandas": "ray",
    "tritonclient": "triton",
    "av": "video",
    "ai_edge_litert": "litert",
    "litert_torch": "litert-export",
    "executorch": "executorch",
    "coremltools": "coreml",
}

# extra -> a package index its packages come from besides PyPI (TensorRT's libraries are
# published only on NVIDIA's index; pip cannot find them without it)
_INDEX_FOR_EXTRA = {
    "tensorrt": "https://pypi.nvidia.com",
}


def install_hint(module: str, extra: str | None = None) -> str:
    """The pip command that installs ``module`` (with the extra index it needs, if any).

    ``extra`` overrides the default extra for a module several extras provide (cuda-python
    is in both ``gpu`` and ``tensorrt``)."""
    top = module.split(".")[0]
    extra = extra or _EXTRA_FOR.get(top)
    if extra is None:
        return f"pip install {top}"
    hint = f"pip install 'overnet[{extra}]'"
    index = _INDEX_FOR_EXTRA.get(extra)
    if index:
        hint += f" --extra-index-url {index} (its libraries come from NVIDIA's index {index})"
    return hint


def require(module: str, purpose: str = "", extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = install_hint(module, extra)
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"'{module}' is not installed{what}: {exc}. Install it with: {hint}"
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` is installed, found without importing it (importing torch or
    OpenVINO costs seconds, so availability checks must not). A module set to None in
    ``sys.modules`` (how tests hide one) counts as missing; a broken install is found when
    ``require`` imports it, which raises MissingDependencyError."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing or hidden
        return False
