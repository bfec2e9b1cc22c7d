"""Where the project's ``../shared`` folder is (upstream weights, SR datasets such as Set5).

A base module: the benchmarks (``overnet.bench``) and the INT8 export's default held-out
set (``overnet.export.int8_data``) both look for it here.
"""

from __future__ import annotations

import os
from pathlib import Path


def find_shared(start: Path | None = None) -> Path | None:
    """The project's ``../shared`` folder ($OVERNET_SHARED, next to cwd or to the repo)."""
    env = os.environ.get("OVERNET_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [
        (start or Path.cwd()) / ".." / "shared",
        Path(__file__).resolve().parents[1] / ".." / "shared",
    ]
    for c in candidates:
        if (c / "weights").is_dir() or (c / "data").is_dir():
            return c.resolve()
    return None
