"""Any scale at any size: tiled against whole-image runs of the overscale path (x1.5, x2,
x2.5), and the integer-scale decision (x2 through the full graph against overscale=True).

    python benchmarks/any_scale.py [--runs 3] [--quick] [--out benchmarks/results/any-scale.txt]

Input: a deterministic 960x540 RGB mosaic of unresampled crops of the Set5 HR images (5x3
cells of 192x180, image i % 5 in cell i, cropped top-left / centre / bottom-right in the
three rows); ``--quick`` takes its top-left 320x180 and one timed run. OpenVINO, fp32.
Configurations (weights: the checkpoint's upscale serves every scale up to it):

    (a) x1.5, OverNet_x2 (upscale 3)   (b) x2, OverNet_x2, overscale=True
    (c) x2.5, OverNet_x3 (upscale 4)   (d) x2, OverNet_x2, full graph (open_session(scale=2))

each tiled at the default budget (``Upscaler(session)``, 1.5GB; ``--budget``) and
whole-image (a budget large enough that ``plan(h, w).tiled`` is False). Every run is its
own child process (one at a time): wall time of ``Upscaler.upscale_array`` (median of
``--runs`` after one warm-up) and the child's peak RSS (``ru_maxrss``: session open,
warm-up and runs). PSNR (dB, outputs clipped to [0, 1]) of each tiled output against its
whole-image output; the integer-scale rows (d) compare both tiled outputs with the
whole-image full-graph one, and run the full graph on (b)'s tiles as well (same tiles,
the other path: separates the tile plan's effect from the path's). ``--quick`` tiles at
400MB (320x180 fits 1.5GB whole). A preparation child per model opens it once first, so
the measured children find the ONNX export and OpenVINO's compiled model in the cache.
The children import a copy of overnet/ taken at the start (the tree may change during a
long run); the results record its commit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from overnet.runtime.upscaler import DEFAULT_MAX_MEMORY

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WHOLE_BUDGET = "30GB"
CELL = (180, 192)  # height, width of one mosaic cell
WARN_PSNR = 50.0

#: name -> (weights file, scale, overscale option), in run order: the integer-scale pair
#: (b, d) first and next to each other, so that their ratio sees the same machine load
MODELS = {
    "b x2 overscale": ("OverNet_x2.pth.tar", 2.0, True),
    "d x2 full graph": ("OverNet_x2.pth.tar", 2.0, False),
    "a x1.5": ("OverNet_x2.pth.tar", 1.5, True),
    "c x2.5": ("OverNet_x3.pth.tar", 2.5, True),
}


def cpu() -> str:
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    lines = text.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
    present = " ".join(f for f in wanted if f in flags) or "none"
    absent = " ".join(f for f in wanted if f not in flags) or "none"
    return f"{model}, {os.cpu_count()} cores; flags present: {present}; absent: {absent}"


def memory_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "?"


def mosaic(hr: Path, height: int, width: int) -> np.ndarray:
    """3 x height x width float32 [0, 1]: the top-left of a 960x540 mosaic of Set5 HR crops
    (no resampling)."""
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(hr.glob("*.png"))]
    ch, cw = CELL
    canvas = np.zeros((3 * ch, 5 * cw, 3), np.uint8)
    for row in range(3):
        for col in range(5):
            img = images[(row * 5 + col) % len(images)]
            # crop position by row: top-left, centre, bottom-right
            y = (img.shape[0] - ch) * row // 2
            x = (img.shape[1] - cw) * row // 2
            canvas[row * ch : (row + 1) * ch, col * cw : (col + 1) * cw] = img[
                y : y + ch, x : x + cw
            ]
    crop = canvas[:height, :width]
    return np.ascontiguousarray(crop.transpose(2, 0, 1)).astype(np.float32) / 255


# -- child: one configuration, one process ----------------------------------------------
def child(spec: dict) -> None:
    import resource
    import time

    import overnet
    from overnet.imaging.tiling import Tile
    from overnet.runtime import Upscaler, open_session
    from overnet.runtime.upscaler import TilePlan

    options = {"overscale": True} if spec["overscale"] else {}
    with open_session(
        spec["weights"], "openvino", precision="fp32", scale=spec["scale"], **options
    ) as session:
        if spec.get("prepare"):  # fills the export and compiled-model caches only
            session.run(np.zeros((1, 3, 16, 16), np.float32))
            print(json.dumps({"prepared": True}))
            return
        image = np.load(spec["input"])[None]
        upscaler = Upscaler(session, max_memory=spec["budget"])
        plan = upscaler.plan(image.shape[2], image.shape[3])
        if spec.get("tiles_of"):  # another run's tiles: same tiles, this session's path
            given = spec["tiles_of"]
            tiles = tuple(Tile(*t) for t in given["tile_list"])
            plan = TilePlan(plan.height, plan.width, *given["tile_hw"], given["overlap"],
                            1, tiles)  # fmt: skip
        if spec["whole"] and plan.tiled:
            raise SystemExit(f"budget {spec['budget']} still tiles: {plan.tile_h}x{plan.tile_w}")
        start = time.perf_counter()
        out = upscaler.upscale_array(image, plan)
        warm_up = time.perf_counter() - start
        times = []
        for _ in range(spec["runs"]):
            start = time.perf_counter()
            out = upscaler.upscale_array(image, plan)
            times.append(time.perf_counter() - start)
        np.save(spec["output"], out[0])
        info = session.info
        result = {
            "tile": f"{plan.tile_h}x{plan.tile_w}",
            "overlap": plan.overlap,
            "tiles": len(plan.tiles),
            "tile_hw": [plan.tile_h, plan.tile_w],
            "tile_list": [[t.y0, t.y1, t.x0, t.x1] for t in plan.tiles],
            "batch": plan.batch,
            "warm_up": warm_up,
            "times": times,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "out_shape": list(out.shape[1:]),
            "upscale": info.upscale,
            "scale": info.scale,
            "overnet": overnet.__file__,
        }
    print(json.dumps(result))


# -- parent ----------------------------------------------------------------------------
def snapshot(target: Path) -> str:
    """Copy overnet/ to ``target``/overnet for the children to import (the working tree may
    change during a long run); returns the code state the copy holds."""
    import shutil

    for _ in range(5):
        before = code_state()
        shutil.rmtree(target / "overnet", ignore_errors=True)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "overnet", target / "overnet", ignore=ignore)
        if code_state() == before:
            return before
    raise SystemExit("overnet/ kept changing while it was copied")


def run_child(spec: dict, code: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"child {spec} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not str(result.get("overnet", code)).startswith(str(code)):
        raise SystemExit(f"the child imported {result['overnet']}, not the copy in {code}")
    return result


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2, dtype=np.float64))
    return 10 * np.log10(1 / mse) if mse > 0 else float("inf")


def code_state() -> str:
    """HEAD, and a digest of uncommitted changes under overnet/ (children import them)."""
    import hashlib

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip() if done.returncode == 0 else "?"

    head = git("rev-parse", "--short", "HEAD")
    diff = git("diff", "HEAD", "--", "overnet")
    files = git("diff", "HEAD", "--name-only", "--", "overnet").split()
    if not diff:
        return f"HEAD {head}, overnet/ clean"
    digest = hashlib.sha256(diff.encode()).hexdigest()[:10]
    return f"HEAD {head}, uncommitted overnet/ changes {digest} in {' '.join(files)}"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="timed runs (default 3; 1 quick)")
    parser.add_argument("--quick", action="store_true", help="320x180 input, 1 run")
    parser.add_argument("--weights-dir", type=Path, default=SHARED / "weights")
    parser.add_argument("--set5", type=Path, default=SHARED / "data" / "Set5")
    parser.add_argument(
        "--out", type=Path, default=None,
        help="results file (default benchmarks/results/any-scale.txt; none with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--budget", default=None,
        help="max_memory of the tiled runs (default: the Upscaler default, 1.5GB; 400MB with "
        "--quick, so that 320x180 tiles)",
    )  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    height, width = (180, 320) if args.quick else (540, 960)
    budget = args.budget or ("400MB" if args.quick else DEFAULT_MAX_MEMORY)
    out_file = args.out or (None if args.quick else ROOT / "benchmarks/results/any-scale.txt")
    command = "python benchmarks/any_scale.py" + (" --quick" if args.quick else "")
    command += f" --runs {runs}" if args.runs is not None else ""
    command += f" --budget {args.budget}" if args.budget else ""
    lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    emit(f"# command: {command}")
    emit(f"# date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    emit(f"# machine: {cpu()}; {memory_total()} RAM; {platform.python_version()}")
    emit(f"# load average at start: {loadavg()}")
    emit(
        f"# input: {width}x{height} RGB, top-left of a 960x540 mosaic of unresampled Set5 HR "
        f"crops ({CELL[1]}x{CELL[0]} cells); openvino fp32; {runs} timed run(s) after 1 warm-up"
    )
    emit("# each row: its own child process, run one at a time; time = median of the timed runs;")
    emit("# load = 1-minute load average when the child started; run order: (b), (d), (a), (c)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        code = snapshot(work / "code")
        emit(f"# code: {code} (the children import a copy of overnet/ taken at the start)")
        image = mosaic(args.set5 / "HR", height, width)
        np.save(work / "input.npy", image)
        results: dict[tuple[str, str], dict] = {}
        for name, (weights, scale, overscale) in MODELS.items():
            base = {"weights": str(args.weights_dir / weights), "scale": scale,
                    "overscale": overscale}  # fmt: skip
            run_child({**base, "prepare": True}, work / "code")
            modes = [("tiled", budget), ("whole", WHOLE_BUDGET)]
            if not overscale:  # the integer path on the overscale plan's tiles too
                modes.append(("(b)tiles", budget))
            for mode, limit in modes:
                spec = {**base, "input": str(work / "input.npy"), "runs": runs,
                        "budget": limit, "whole": mode == "whole",
                        "output": str(work / f"{name[0]}-{mode}.npy")}  # fmt: skip
                if mode == "(b)tiles":
                    spec["tiles_of"] = results["b x2 overscale", "tiled"]
                print(f"  running {name}, {mode} ...", file=sys.stderr, flush=True)
                load = loadavg().split()[0]
                result = run_child(spec, work / "code")
                results[name, mode] = {**result, "output": spec["output"], "load": load}
        outputs = {key: np.load(r["output"]) for key, r in results.items()}
        reference = {name: outputs[name, "whole"] for name in MODELS}
        full_whole = outputs["d x2 full graph", "whole"]
        emit()
        emit(f"## (a)-(c) overscale path: tiled (max_memory {budget}) vs whole image")
        header = (
            f"{'config':<16} {'mode':<8} {'output':>9} {'tile':>9} {'ovl':>4} {'tiles':>5} "
            f"{'warm s':>7} {'time s':>7} {'peak RSS':>9} {'PSNR vs whole':>14} {'load':>5}"
        )
        emit(header)
        warnings = []

        def row(name: str, mode: str, versus: np.ndarray | None, against: str = "whole") -> None:
            r = results[name, mode]
            value = "-" if versus is None else f"{psnr(outputs[name, mode], versus):.2f}"
            if versus is not None and psnr(outputs[name, mode], versus) < WARN_PSNR:
                warnings.append(f"{name} {mode} vs {against}: {value} dB")
            out_hw = "x".join(str(v) for v in r["out_shape"][::-1][:2])
            emit(
                f"{name:<16} {mode:<8} {out_hw:>9} {r['tile']:>9} {r['overlap']:>4} "
                f"{r['tiles']:>5} {r['warm_up']:>7.2f} {statistics.median(r['times']):>7.2f} "
                f"{r['peak_rss'] / 2**30:>7.2f}GB {value:>14} {r['load']:>5}"
            )

        for name in ("a x1.5", "b x2 overscale", "c x2.5"):
            row(name, "tiled", reference[name])
            row(name, "whole", None)
        emit()
        emit("## (d) integer scale x2 (OverNet_x2): full graph vs overscale=True, PSNR vs the")
        emit("##     whole-image full-graph output (overscale rows are (b)'s runs); (b)tiles:")
        emit("##     the full graph on the tiles of (b)'s plan (overscale tiles are smaller: its")
        emit("##     budget counts the host-side finishing)")
        emit(header)
        row("d x2 full graph", "tiled", full_whole)
        row("d x2 full graph", "whole", None)
        row("d x2 full graph", "(b)tiles", full_whole)
        row("b x2 overscale", "tiled", full_whole, "full-graph whole")
        row("b x2 overscale", "whole", full_whole, "full-graph whole")
        full, over = results["d x2 full graph", "tiled"], results["b x2 overscale", "tiled"]
        same = results["d x2 full graph", "(b)tiles"]
        for label, ref in (("own plans", full), ("same tiles", same)):
            ratio = statistics.median(over["times"]) / statistics.median(ref["times"])
            emit(
                f"tiled x2, overscale/full graph ({label}): time {ratio:.2f}x, "
                f"peak RSS {over['peak_rss'] / ref['peak_rss']:.2f}x"
            )
        agree = psnr(outputs["b x2 overscale", "tiled"], outputs["d x2 full graph", "(b)tiles"])
        emit(f"overscale tiled vs full graph on the same tiles: PSNR {agree:.2f} dB")
        emit()
        emit(f"# load average at end: {loadavg()}")
        if code_state() != code:
            emit(f"# the working tree changed during the run (now: {code_state()}); the rows ran "
                 "the copy taken at the start")  # fmt: skip
        emit(
            "# this machine may have been shared with another process (running tests) during "
            "the run: times are indicative; the ratios compare runs of one session"
        )
        emit("# peak RSS = the child's ru_maxrss: session open, warm-up and timed runs included")
        if warnings:
            emit(f"# WARNING: PSNR below {WARN_PSNR:.0f} dB: " + "; ".join(warnings))
        else:
            emit(f"# every PSNR above is at least {WARN_PSNR:.0f} dB")
    if out_file is not None:
        out_file.write_text("\n".join(lines) + "\n")
        print(f"written: {out_file}", file=sys.stderr)


if __name__ == "__main__":
    main()
