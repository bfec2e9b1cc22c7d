"""Working memory of a fixed-tile edge file per input pixel (calibrates the ``memory``
figures of ``overnet/runtime/litert_backend.py`` and ``executorch_backend.py``).

Each file runs in a fresh child: the peak-RSS growth from just before the session opens
to after one run of its tile (loading, planning and the run), divided by the tile's
pixels. A fixed-shape runtime allocates for its one shape when it opens, so the opening
counts (``tile_memory.py`` measures the dynamic backends from an opened session).

    python benchmarks/edge_memory.py x2_128.tflite x2_128.pte \\
        --out benchmarks/results/edge-memory.txt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, numpy as np

def status(key):
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

from overnet.runtime import open_session
import overnet.runtime.litert_backend, overnet.runtime.executorch_backend  # imports first
try:
    import ai_edge_litert.interpreter, executorch.runtime, torch  # noqa: F401
except ImportError:
    pass
base = status('VmRSS')
with open('/proc/self/clear_refs', 'w') as fh:  # reset the high-water mark
    fh.write('5')
session = open_session(sys.argv[1])
h, w = session.info.max_hw
session.run(np.random.rand(1, 3, h, w).astype(np.float32))
print(json.dumps({"backend": session.info.backend, "tile": [h, w],
                  "growth": status('VmHWM') - base}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    lines = ["# benchmarks/edge_memory.py: peak-RSS growth, session open + one tile run"]
    for model in args.models:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, model], capture_output=True, text=True, cwd=ROOT
        )
        if done.returncode != 0:
            raise SystemExit(f"{model}: {done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        h, w = row["tile"]
        lines.append(
            f"{row['backend']:<11} {Path(model).name:<22} tile {w}x{h}: "
            f"{row['growth'] / 1e6:7.1f} MB, {row['growth'] / (h * w):8,.0f} B per input pixel"
        )
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
