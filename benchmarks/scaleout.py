"""Images/s of `overnet upscale --ray` with 1 and 2 actors (1 thread each) against the
local command with 2 threads: the same images, interleaved in one run.

    python benchmarks/scaleout.py [--images 48] [--size 160x120] [--rounds 2]
                                  [--out benchmarks/results/scaleout.txt]

Inputs: seeded noise-and-gradient images, half PNG and half JPEG. Model: the shared x2
weights exported to ONNX once (OpenVINO, --precision auto: what the command runs by
default). Ray: one local instance, ray.init(num_cpus=2), started once and timed apart.

Per run, two figures: "wall" is the whole call (the local command as a subprocess with its
session opening; the Ray run with its actors starting and opening their sessions), and
"working" leaves the start-up out (local: the batch's own rate, from its summary; Ray: the
sum over actors of files / seconds busy in the actor, i.e. decode + model + encode, as the
run's summary reports them; reads and writes run beside them in Ray tasks).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from cold_start import cpu  # noqa: E402


def make_images(folder: Path, count: int, width: int, height: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
    for index in range(count):
        noise = rng.normal(0, 40, (height, width, 3))
        pixels = np.clip(ramp * (index % 3 + 1) / 3 + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if index % 2:
            image.save(folder / f"{index:03d}.jpg", quality=92)
        else:
            image.save(folder / f"{index:03d}.png")


def local_command(images: Path, out: Path, model: Path, threads: int) -> tuple[float, float]:
    """(wall s, working images/s) of `overnet upscale` with ``threads`` threads."""
    args = ["upscale", str(images), "-o", str(out), "--model", str(model)]
    args += ["--threads", str(threads), "--overwrite", "--no-progress"]
    call = f"from overnet.cli import main\nmain({args!r})"
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True)
    wall = time.perf_counter() - begin
    match = re.search(r"upscaled.* in [0-9.]+ s \(([0-9.e+]+) images/s\)", done.stdout)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"local command failed:\n{done.stdout}\n{done.stderr}")
    return wall, float(match.group(1))


def ray_run(images: Path, out: Path, model: Path, actors: int) -> tuple[float, float, str]:
    """(wall s, working images/s, what ran) of upscale_on_ray with ``actors`` x 1 thread."""
    from overnet.scaleout import Cluster, upscale_on_ray

    begin = time.perf_counter()
    report = upscale_on_ray(
        [str(images)],
        out,
        model,
        threads=1,
        overwrite=True,
        cluster=Cluster(actors=actors, num_cpus=1),
        progress=False,
    )
    wall = time.perf_counter() - begin
    if not report.ok or report.actors != actors:
        raise SystemExit(report.summary())
    figures = report.per_actor()
    working = sum(f.rate for f in figures)
    busy = ", ".join(f"{f.files} in {f.seconds:.1f} s busy" for f in figures)
    return wall, working, f"{'; '.join(sorted(report.sessions))} (actors: {busy})"


_PINNING_PROBE = """
import os, sys, time
import numpy as np
import openvino as ov
cpu, start = int(sys.argv[2]), float(sys.argv[3])
if cpu >= 0:
    os.sched_setaffinity(0, {cpu})
config = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY"}  # overnet's, 1 thread
request = ov.Core().compile_model(sys.argv[1], "CPU", config).create_infer_request()
x = np.random.rand(1, 3, 120, 160).astype(np.float32)
request.infer({0: x})
time.sleep(max(0.0, start - time.time()))
begin = time.perf_counter()
for _ in range(10):
    request.infer({0: x})
print((time.perf_counter() - begin) / 10)
"""


def pinning_probe(model: Path) -> str:
    """Seconds per 160x120 inference of 1-thread OpenVINO processes: alone, two side by
    side (OpenVINO pins both to the first CPU of their mask), two with a CPU each."""

    def side_by_side(cpus: list[int]) -> list[float]:
        start = time.time() + 8.0  # both compiled and warm before either starts
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _PINNING_PROBE, str(model), str(cpu), str(start)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for cpu in cpus
        ]
        return [float(p.communicate(timeout=120)[0]) for p in procs]

    alone = side_by_side([-1])[0]
    shared = side_by_side([-1, -1])
    own = side_by_side([0, 1])
    return (
        f"OpenVINO 1-thread processes, s per 160x120 inference: alone {alone:.3f}; two side by "
        f"side {shared[0]:.3f} / {shared[1]:.3f}; two with a CPU each {own[0]:.3f} / "
        f"{own[1]:.3f} (why each actor claims CPUs of its own: overnet.scaleout.actor)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the inputs")
    parser.add_argument("--rounds", type=int, default=2)
    weights = ROOT.parent / "shared" / "weights" / "OverNet_x2.pth.tar"
    parser.add_argument("--weights", type=Path, default=weights)
    parser.add_argument("--out", type=Path, default=None, help="also write the lines here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    import ray

    from overnet.export import export_onnx

    start = time.perf_counter()
    say(f"# command: python benchmarks/scaleout.py --images {args.images} --size {args.size} "
        f"--rounds {args.rounds}")  # fmt: skip
    say(f"cpu: {cpu()}, {platform.machine()}")
    say(f"python {platform.python_version()}, ray {ray.__version__}")
    say(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_images(work / "in", args.images, width, height)
        model = export_onnx(args.weights, work / "x2.onnx", validate=False).path
        if len(os.sched_getaffinity(0)) >= 2:
            say(pinning_probe(model))
        begin = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        say(f"ray.init(num_cpus=2) took {time.perf_counter() - begin:.1f} s (once, not counted)")
        results: dict[str, list[tuple[float, float]]] = {}
        ran = ""
        try:
            for round_ in range(args.rounds):
                for name in ("local, 2 threads", "ray, 1 actor x 1 thread",
                             "ray, 2 actors x 1 thread"):  # fmt: skip
                    out = work / f"out-{len(results)}"
                    if name.startswith("local"):
                        wall, working = local_command(work / "in", out, model, threads=2)
                    else:
                        wall, working, ran = ray_run(work / "in", out, model, int(name[5]))
                    results.setdefault(name, []).append((wall, working))
                    say(f"round {round_ + 1}, {name}: {args.images / wall:.3g} images/s wall "
                        f"({wall:.1f} s), {working:.3g} images/s working"
                        + ("" if name.startswith("local") else f"; {ran}"))  # fmt: skip
        finally:
            ray.shutdown()
    say(f"images: {args.images} x {args.size} (half PNG, half JPEG), x2")
    say("median over rounds: images/s wall (whole call) | images/s working (start-up left out)")
    local = statistics.median(args.images / w for w, _ in results["local, 2 threads"])
    for name, runs in results.items():
        wall = statistics.median(args.images / w for w, _ in runs)
        working = statistics.median(s for _, s in runs)
        say(f"  {name:26s} {wall:7.3g} | {working:7.3g}   (wall x{wall / local:.2f} of local)")
    say(f"load average after: {os.getloadavg()[0]:.2f}; total {time.perf_counter() - start:.0f} s")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
