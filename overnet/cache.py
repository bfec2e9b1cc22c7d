"""Where overnet keeps what it makes or downloads once: ONNX exports of checkpoints,
fetched pretrained weights, onnxruntime TensorRT caches, bench weights.

``$OVERNET_CACHE`` when set, else ``$XDG_CACHE_HOME/overnet`` (``~/.cache/overnet``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The overnet cache folder (not created here)."""
    root = os.environ.get("OVERNET_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "overnet"
