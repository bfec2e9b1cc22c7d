"""What one image holds besides the network, and whether `--max-memory` bounds a run.

    python benchmarks/item_memory.py [--model x2.onnx] [--size 1920x1080] [--budgets 2GB,1GB]

1. Host buffers: peak traced allocations (tracemalloc; numpy reports its buffers to it)
   of ``Upscaler.upscale`` on a 600x800 image at x2 for each image kind, with a session
   that upscales by repetition (no network memory), per input and per output pixel:
   what ``runtime.memory.HOST_BYTES_PER_*`` must cover.
2. A run (with ``--model``): the peak RSS of `overnet upscale` on a ``--size`` photo for
   each budget, against the budget plus the runtime's fixed cost (the same command on a
   64x64 image), with the plan's estimate.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image

from overnet.bench.environment import cpu_info
from overnet.runtime.base import Session, SessionInfo
from overnet.runtime.memory import HOST_BYTES_PER_INPUT_PIXEL, HOST_BYTES_PER_OUTPUT_PIXEL
from overnet.runtime.upscaler import Upscaler
from overnet.units import parse_memory

_WRAPPER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_RSS_KB=%d' % resource.getrusage("
    "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from overnet.cli import main\n"
    "main(sys.argv[1:], prog_name='overnet')\n"
)


class _Repeat(Session):
    def __init__(self) -> None:
        self.info = SessionInfo(backend="repeat", device="CPU", precision="fp32", scale=2,
                                upscale=2)  # fmt: skip

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return batch.repeat(2, axis=2).repeat(2, axis=3)


def _kinds(height: int, width: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (height, width, 4), dtype=np.uint16)
    palette = Image.fromarray(rgba[:, :, :3]).quantize(64)
    palette.info["transparency"] = 3
    return {
        "RGB": Image.fromarray(rgba[:, :, :3]),
        "RGBA": Image.fromarray(rgba, "RGBA"),
        "L": Image.fromarray(rgba[:, :, 0]),
        "P+transparency": palette,
        "RGB 16-bit array": deep[:, :, :3],
        "RGBA 16-bit array": deep,
    }


def host_buffers(height: int = 600, width: int = 800) -> None:
    print(f"## host buffers, {width}x{height} at x2, tiles of 200 (tracemalloc peak)")
    declared = HOST_BYTES_PER_INPUT_PIXEL + 4 * HOST_BYTES_PER_OUTPUT_PIXEL
    print(
        f"declared: {HOST_BYTES_PER_INPUT_PIXEL} B per input pixel + "
        f"{HOST_BYTES_PER_OUTPUT_PIXEL} B per output pixel = {declared} B per input px"
    )
    for name, image in _kinds(height, width).items():
        upscaler = Upscaler(_Repeat(), tile=200, max_memory="8GB")
        tracemalloc.start()
        upscaler.upscale(image)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{name:18s} {peak / (height * width):6.1f} B per input px "
              f"({peak / 1e6:.0f} MB)")  # fmt: skip


def _upscale(image: Path, out: Path, model: str, budget: str) -> tuple[int, str]:
    args = [sys.executable, "-c", _WRAPPER, "upscale", str(image), "-o", str(out),
            "--model", model, "--max-memory", budget, "--no-progress", "--overwrite"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    text = done.stdout + done.stderr
    return int(re.search(r"PEAK_RSS_KB=(\d+)", text).group(1)) * 1024, text


def run_peaks(model: str, size: str, budgets: list[str]) -> None:
    from overnet.runtime import open_session

    width, height = (int(v) for v in size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        small, photo = Path(tmp, "small.png"), Path(tmp, "photo.png")
        rng = np.random.default_rng(1)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(small)
        base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC).save(photo)
        fixed, _ = _upscale(small, Path(tmp, "o"), model, budgets[0])
        print(f"## `overnet upscale` {size} at x2 with {model}: peak RSS")
        print(f"fixed cost (a 64x64 image): {fixed / 1e9:.2f} GB")
        with open_session(model) as session:
            for budget in budgets:
                plan = Upscaler(session, max_memory=budget).plan(height, width)
                peak, text = _upscale(photo, Path(tmp, "o"), model, budget)
                line = next(s for s in text.splitlines() if "upscaled" in s)
                bound = fixed + parse_memory(budget)
                print(f"--max-memory {budget}: peak {peak / 1e9:.2f} GB, bound (fixed + "
                      f"budget) {bound / 1e9:.2f} GB, within: {peak <= bound}; plan "
                      f"{len(plan.tiles)} tiles of {plan.tile_w}x{plan.tile_h}, estimate "
                      f"{plan.total_bytes / 1e9:.2f} GB ({plan.host_bytes / 1e9:.2f} GB host); "
                      f"{line.strip()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--budgets", default="2GB,1GB")
    args = parser.parse_args()
    cpu = cpu_info()
    print(f"# {' '.join(sys.argv)}")
    print(f"# CPU: {cpu['model']}, {cpu['usable_cores']} cores, flags {' '.join(cpu['flags'])}")
    host_buffers()
    if args.model:
        run_peaks(args.model, args.size, args.budgets.split(","))


if __name__ == "__main__":
    main()
