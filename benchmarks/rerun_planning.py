"""How long a rerun takes to plan when every output already exists (all skipped).

    python benchmarks/rerun_planning.py [--files 20000] [--old-files 1500]

Makes N one-pixel PNG inputs and their existing outputs in a temp folder, then times:
- `upscale_files` (the local command's batch, job core naming: one set lookup per file,
  input identities read once), and the Ray planner `scaleout.plan.make_plan` on the same
  folder (no Ray started);
- for comparison, the check the batch made before the job core (one ``os.path.samefile``
  per input for each existing output: O(N^2) stat calls), on ``--old-files`` files.
Nothing is upscaled: the session is never called for a skipped file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from overnet.bench.environment import cpu_info
from overnet.imaging.files import InputFile, expand_inputs
from overnet.jobs.batch import upscale_files
from overnet.runtime.base import Session, SessionInfo
from overnet.runtime.upscaler import Upscaler

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944"
    "4154789c63105030000000a4006134667d720000000049454e44ae426082"
)


class _Unused(Session):
    def __init__(self) -> None:
        self.info = SessionInfo(backend="none", device="CPU", precision="fp32", scale=2, upscale=2)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise AssertionError("a skipped file must not be upscaled")


def _make(folder: Path, count: int) -> tuple[list[InputFile], Path]:
    inputs, out = folder / "in", folder / "out"
    inputs.mkdir(parents=True)
    out.mkdir(parents=True)
    for i in range(count):
        (inputs / f"{i:06d}.png").write_bytes(PNG_1X1)
        (out / f"{i:06d}.png").write_bytes(PNG_1X1)
    found, problems = expand_inputs([str(inputs)])
    assert not problems and len(found) == count
    return found, out


def _old_check(found: list[InputFile], out: Path) -> float:
    begin = time.perf_counter()
    paths = {item.path.resolve() for item in found}
    for item in found:
        target = out / item.path.name
        if target.exists():
            any(os.path.samefile(target, p) for p in paths)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--old-files", type=int, default=1_500)
    args = parser.parse_args()
    print(f"# {' '.join(sys.argv)}")
    cpu = cpu_info()
    print(f"# CPU: {cpu['model']}, {cpu['usable_cores']} cores, flags {' '.join(cpu['flags'])}")
    with tempfile.TemporaryDirectory() as tmp:
        found, out = _make(Path(tmp) / "new", args.files)
        begin = time.perf_counter()
        report = upscale_files(found, out, Upscaler(_Unused()), progress=False)
        local = time.perf_counter() - begin
        assert report.count("skipped") == args.files, report.summary()
        print(f"upscale_files, {args.files} existing outputs: {local:.2f} s "
              f"({local / args.files * 1e6:.0f} us per file)")  # fmt: skip
        try:
            from overnet.scaleout.plan import Naming, find_inputs, make_plan
            from overnet.scaleout.storage import place_of

            place = place_of(str(out))
            begin = time.perf_counter()
            sources, _ = find_inputs([str(Path(tmp) / "new" / "in")], False, place)
            plan = make_plan(sources, place, {}, Naming(), overwrite=False)
            ray_plan = time.perf_counter() - begin
            assert len(plan.rows) == args.files  # each verified (hashed) by a read task
            print(f"scaleout make_plan (--ray), {args.files} existing outputs: {ray_plan:.2f} s")
        except ImportError as exc:
            print(f"scaleout make_plan skipped: {exc}")
        old_found, old_out = _make(Path(tmp) / "old", args.old_files)
        old = _old_check(old_found, old_out)
        per_file = old / args.old_files * 1e6
        print(f"before (samefile per input pair), {args.old_files} existing outputs: "
              f"{old:.2f} s ({per_file:.0f} us per file, grows with N)")  # fmt: skip


if __name__ == "__main__":
    main()
