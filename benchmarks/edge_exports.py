"""The edge exports end to end: convert, evaluate on Set5, bench beside OpenVINO.

1. Converts the x2 weights with `overnet export --format litert` and `--format executorch`
   at the default 128x128 tile, in fp32 and fp16 (conversion times recorded), and at
   320x180 for the bench.
2. Set5 x2 PSNR-Y (paper protocol) through `overnet eval --backend litert|executorch` on
   those files, beside OpenVINO fp32 on the whole image (what `overnet eval` reports by
   default) and on the same 128-pixel tile plan (the difference that is the backend's).
3. `overnet bench --backends openvino,onnxruntime,litert,executorch --sizes 320x180` in
   one run (the .tflite and .pte as --model files), under `flock /tmp/bench.lock`.

LiteRT's converter (litert-torch) cannot share a venv with the serve extra (see the
`litert-export` extra in pyproject.toml): `--litert-python` names the interpreter of a
venv that has it (the rest runs in this one).

    python benchmarks/edge_exports.py --litert-python /tmp/litert-venv/bin/python \\
        --out benchmarks/results/edge-exports.txt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overnet.bench.environment import cpu_info, library_versions, load_average  # noqa: E402

TILE = 128
BENCH_SIZE = "320x180"


def run(cmd: list[str], log: list[str]) -> str:
    """Run ``cmd`` (its output returned), recording the command line and wall time."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    took = time.perf_counter() - start
    shown = " ".join(Path(c).name if c.startswith("/tmp/") else c for c in cmd)
    log.append(f"$ {shown}   # {took:.0f} s, exit {done.returncode}")
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def overnet(python: str) -> list[str]:
    return [python, "-m", "overnet.cli"]


def export(python: str, fmt: str, weights: str, out: Path, extra: list[str], log: list[str]):
    text = run([*overnet(python), "export", "--weights", weights, "--format", fmt,
                "-o", str(out), *extra], log)  # fmt: skip
    line = next(x for x in text.splitlines() if x.startswith("wrote "))
    return line


def mean_psnr(model: str, backend: str, set5: str, extra: list[str], log: list[str]) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        run([*overnet(sys.executable), "eval", "--weights", model, "--backend", backend,
             "--data", set5, "--no-progress", "--json", fh.name, *extra], log)  # fmt: skip
        data = json.loads(Path(fh.name).read_text())
    (dataset,) = data
    if dataset["failed"]:
        raise SystemExit(f"{dataset['failed']} Set5 image(s) failed with {backend} on {model}")
    return float(dataset["mean"]["psnr_y"])


def bench(files: dict[tuple[str, str], Path], log: list[str]) -> list[str]:
    """`overnet bench` of OpenVINO, onnxruntime and the two files at BENCH_SIZE, one run."""
    with tempfile.NamedTemporaryFile(suffix=".md") as md:
        run(["flock", "/tmp/bench.lock", *overnet(sys.executable), "bench",
             "--backends", "openvino,onnxruntime,litert,executorch", "--sizes", BENCH_SIZE,
             "--model", f"litert={files[('litert', 'bench')]}",
             "--model", f"executorch={files[('executorch', 'bench')]}",
             "--threads", str(os.cpu_count()), "--iters", "5", "--warmup", "2",
             "--markdown", md.name, "-q"], log)  # fmt: skip
        table = Path(md.name).read_text().strip()
    return [f"\n## overnet bench at {BENCH_SIZE} (one run, flock /tmp/bench.lock)", table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=str(ROOT.parent / "shared/weights/OverNet_x2.pth.tar"))
    parser.add_argument("--set5", default=str(ROOT.parent / "shared/data/Set5"))
    parser.add_argument("--litert-python", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/edge-exports.txt")
    parser.add_argument("--work", type=Path, default=None, help="keep the files here")
    parser.add_argument("--reuse", action="store_true", help="use files already in --work")
    parser.add_argument("--tile", type=int, default=TILE, help="the square tile evaluated")
    parser.add_argument("--skip-bench", action="store_true", help="exports and Set5 only")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="overnet-edge-"))
    work.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    lines: list[str] = []
    cpu = cpu_info()
    versions = library_versions()
    lines += [
        "# benchmarks/edge_exports.py: LiteRT and ExecuTorch exports of x2, Set5 PSNR, bench",
        f"# {cpu['model']}; {cpu['logical_cores']} CPUs; flags: {' '.join(cpu['flags'])}",
        f"# load average at start {load_average()} (the machine is shared with up to 5 other "
        "helpers working in parallel: timings vary run to run)",
        "# " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
    ]
    files = {}
    tile = args.tile
    sq, fixed = ["--tile", str(tile)], ["--static-shape", BENCH_SIZE]
    jobs = [
        ("litert", "fp32", args.litert_python, f"x2_{tile}.tflite", sq),
        ("litert", "fp16", args.litert_python, f"x2_{tile}_fp16.tflite", [*sq, "--fp16"]),
        ("executorch", "fp32", sys.executable, f"x2_{tile}.pte", sq),
        ("executorch", "fp16", sys.executable, f"x2_{tile}_fp16.pte", [*sq, "--fp16"]),
        ("litert", "bench", args.litert_python, "x2_320x180.tflite", fixed),
        ("executorch", "bench", sys.executable, "x2_320x180.pte", fixed),
    ]  # fmt: skip
    lines.append("\n## exports (x2, conversion + check against PyTorch fp32)")
    for fmt, what, python, name, extra in jobs:
        path = work / name
        files[(fmt, what)] = path
        if args.reuse and path.is_file():
            lines.append(f"reused {path} ({fmt}, {path.stat().st_size / 1e6:.1f} MB)")
            continue
        lines.append(export(python, fmt, args.weights, path, [*extra, "--overwrite"], log))
    lines.append("\n## Set5 x2 PSNR-Y (paper protocol), mean of 5 images")
    reference = mean_psnr(args.weights, "openvino", args.set5, [], log)
    same_plan = mean_psnr(args.weights, "openvino", args.set5, sq, log)
    lines.append(f"openvino fp32, whole images           {reference:.3f} dB")
    lines.append(f"openvino fp32, --tile {tile}              {same_plan:.3f} dB")
    for fmt in ("litert", "executorch"):
        for what in ("fp32", "fp16"):
            value = mean_psnr(str(files[(fmt, what)]), fmt, args.set5, [], log)
            lines.append(
                f"{fmt:<10} {what}, tile {tile}            {value:.3f} dB  "
                f"({value - same_plan:+.4f} vs openvino --tile {tile}, "
                f"{value - reference:+.4f} vs whole images)"
            )
    if not args.skip_bench:
        lines += bench(files, log)
    lines += ["\n## commands", *log]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
