"""Compile time of the x2 model as ONNX and as OpenVINO IR, without and with OpenVINO's
compiled-model cache (CACHE_DIR under $OVERNET_CACHE/openvino), each open in a fresh
process, plus the first 320x180 inference after it.

    python benchmarks/ir_timing.py x2.onnx x2-ir/model.xml

x2.onnx from `overnet export --weights W -o x2.onnx`; x2-ir from `--format openvino`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
import numpy as np
from overnet.runtime.openvino_backend import OpenVinoSession, compile_onnx
start = time.perf_counter()
loaded = compile_onnx(sys.argv[1], precision=sys.argv[2], cache=sys.argv[3] == "1")
compiled = time.perf_counter()
OpenVinoSession(loaded).run(np.zeros((1, 3, 180, 320), np.float32))
print(json.dumps({"compile_s": compiled - start, "first_run_s": time.perf_counter() - compiled}))
"""
OPENS = (("0", "no cache"), ("1", "cache, 1st open"), ("1", "cache, 2nd open"))


def main() -> None:
    onnx, xml = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "OVERNET_CACHE": cache}
        for precision in ("fp32", "bf16"):
            for label, path in (("ONNX", onnx), ("IR", xml)):
                rows = []
                for cached, tag in OPENS:
                    done = subprocess.run(
                        [sys.executable, "-c", CHILD, path, precision, cached],
                        env=env, capture_output=True, text=True, check=True,
                    )  # fmt: skip
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    rows.append(f"{tag}: compile {r['compile_s']:.3f} s, "
                                f"first run {r['first_run_s']:.3f} s")  # fmt: skip
                print(f"{label} {precision}: " + "; ".join(rows), flush=True)


if __name__ == "__main__":
    main()
