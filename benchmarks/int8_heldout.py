"""INT8 export: the gate's figure and a held-out figure in one run.

26 natural images (benchmarks/int8_images.py: Set5, three photographs installed with the
dev extra, 18 of scikit-image's wheel) are dealt by pixel hash into a calibration folder
(10; with --max-reverts N the export splits a search set off it), a validation folder (8:
the gate) and a held-out folder (8) that neither calibration, search nor gate sees. The
export runs as a user runs it; then the fp32 model and the written INT8 IR are scored on
the held-out images (PSNR-Y, paper protocol, per image, the same bootstrap as the gate),
with bf16 alone and the INT8 IR with its float layers in bf16 as references, and fp32,
bf16 and INT8 (float layers in fp32 and in bf16) are timed side by side at 320x180. The
INT8 file's own image hashes are checked against the held-out images.

    flock /tmp/bench.lock python benchmarks/int8_heldout.py ../shared/weights/OverNet_x2.pth.tar \
        [--out benchmarks/results/int8.txt] [-- extra `overnet export` options]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import int8_images

from overnet.bench.environment import collect
from overnet.eval import dataset_psnr_y
from overnet.export.int8_gate import drop_stats
from overnet.export.int8_sets import content_hash

SIZES = {"calibration": 10, "validation": 8, "heldout": 8}
SPEED_SHAPE = (1, 3, 180, 320)  # NCHW, the `overnet bench` input
SPEED_ROUNDS = 7


def scores(path: Path, precision: str, folder: Path) -> dict[str, float]:
    from overnet.runtime.openvino_backend import OpenVinoSession, compile_onnx

    with OpenVinoSession(compile_onnx(path, precision=precision, cache=False)) as session:
        return dataset_psnr_y(session.run, folder, 2)[0]


def speeds(runs: dict[str, tuple[Path, str]]) -> dict[str, float]:
    """Median seconds at 320x180 of each (model, precision), interleaved round by round."""
    from overnet.export.int8_data import interleaved_latency
    from overnet.runtime.openvino_backend import OpenVinoSession, compile_onnx

    sessions = {k: OpenVinoSession(compile_onnx(p, precision=h)) for k, (p, h) in runs.items()}
    try:
        return interleaved_latency(
            {k: s.run for k, s in sessions.items()}, SPEED_SHAPE, rounds=SPEED_ROUNDS
        )
    finally:
        for session in sessions.values():
            session.close()


def header() -> list[str]:
    env = collect(2)
    cpu = env["cpu"]
    lib = env["libraries"]
    return [
        f"CPU: {cpu['model']}, {cpu['usable_cores']} usable cores, flags {' '.join(cpu['flags'])}",
        f"openvino {lib.get('openvino')}, nncf {metadata.version('nncf')}, "
        f"torch {lib.get('torch')}; "
        f"load average at start {env['load_average_start']}",
        "The machine (2 cores) is shared with up to 5 other sessions working in parallel: "
        "speeds are slowed by their load; the PSNR figures are not.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "overnet-bench")
    parser.add_argument("--keep", type=Path, default=None, help="copy the INT8 IR here")
    parser.add_argument("--ir", type=Path, default=None, help="score this IR, no export")
    args, extra = parser.parse_known_args()  # the rest: more `overnet export` options
    args.extra = [a for a in extra if a != "--"]
    int8_images.report(lambda work: run(args, work), "int8-heldout-", args.out)


def run(args: argparse.Namespace, work: Path) -> list[str]:
    pool = int8_images.pool(work / "pool", args.shared, args.cache)
    groups = int8_images.deal(pool, SIZES)
    folders = {}
    for name, paths in groups.items():
        folders[name] = work / name
        folders[name].mkdir()
        for path in paths:
            shutil.copy(path, folders[name] / path.name)
    overnet = Path(sys.executable).parent / "overnet"
    out = work / "x2-int8"
    cmd = [
        str(overnet), "export", "--weights", str(args.weights), "--format", "openvino",
        "--int8", "--calibration", str(folders["calibration"]), "--validation",
        str(folders["validation"]), "-o", str(out), *args.extra,
    ]  # fmt: skip
    start = time.perf_counter()
    if args.ir is None:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    else:  # an IR exported before from these sets (--ir): its export's output is given
        out = args.ir
        log = args.ir / "export.log"
        text = log.read_text() if log.is_file() else "(export output not kept)"
        proc = subprocess.CompletedProcess(cmd, 0, text, "")
    export_s = time.perf_counter() - start
    shown = shlex.join(["overnet", *cmd[1:]]).replace(str(work), "$WORK")
    lines = [
        "INT8 export: the gate's figure and a held-out figure from one run "
        "(benchmarks/int8_heldout.py)",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. OverNet x2, upstream weights.",
        *header(),
        "",
        "Images (26 natural, dealt by pixel-hash order; benchmarks/int8_images.py says where "
        "each comes from):",
    ]
    for name, paths in groups.items():
        lines.append(f"  {name} ({len(paths)}): {', '.join(p.stem for p in paths)}")
    lines += [
        "",
        f"1. The export ({export_s:.0f} s wall, exit {proc.returncode})"
        if args.ir is None
        else f"1. The export (run before; its output from {args.ir.name}/export.log)",
        "",
        f"    {shown}",
        "",
    ]
    lines += [f"    {line}" for line in (proc.stdout + proc.stderr).strip().splitlines()]
    if proc.returncode != 0:
        lines += ["", "The export failed its gate: no held-out figure."]
        return lines
    from overnet.export import export_onnx
    from overnet.formats.ir_metadata import read_ir_metadata

    if args.keep and args.ir is None:
        shutil.copytree(out, args.keep, dirs_exist_ok=True)
    meta = read_ir_metadata(out / "model.xml")
    seen = {h for keys in json.loads(meta["overnet.int8_image_hashes"]).values() for h in keys}
    held = {content_hash(p)[:16] for p in groups["heldout"]}
    fp32_onnx = export_onnx(args.weights, work / "x2.onnx", validate=False).path
    fp32 = scores(fp32_onnx, "fp32", folders["heldout"])
    int8 = scores(out / "model.xml", "int8", folders["heldout"])
    stats = drop_stats(fp32, int8)
    lines += [
        "",
        f"2. Held-out: the {len(groups['heldout'])} images neither the calibration, the search "
        "nor the gate saw "
        f"(their pixel hashes {'are in none' if not held & seen else 'OVERLAP some'} of the file's "
        "overnet.int8_image_hashes"
        + ("" if not held & seen else f"; OVERLAP: {sorted(held & seen)}")
        + ")",
        "",
        f"    INT8 (float layers in {meta.get('overnet.precision_hint')}) vs fp32, PSNR-Y "
        "paper protocol x2:",
        f"    {stats.format()}",
        f"    gate figure (validation set): drop {float(meta['overnet.int8_drop_db']):.3f} dB, "
        f"interval {meta.get('overnet.int8_drop_interval_db')} dB",
    ]
    for name in sorted(fp32):
        lines.append(
            f"      {name:28s} fp32 {fp32[name]:.3f}  int8 {int8[name]:.3f}  "
            f"drop {stats.drops[name]:+.3f}"
        )
    try:
        bf16 = drop_stats(fp32, scores(fp32_onnx, "bf16", folders["heldout"]))
        lines.append(f"    bf16 alone on the same images: {bf16.format()}")
        mixed = drop_stats(fp32, scores(out / "model.xml", "bf16", folders["heldout"]))
        lines.append(f"    the INT8 file with its float layers in bf16: {mixed.format()}")
    except Exception as exc:  # bf16 not native on this CPU
        lines.append(f"    bf16: not measured ({exc})")
    verdict = "within" if stats.high <= float(meta["overnet.int8_max_drop_db"]) else "BEYOND"
    lines.append(
        f"    held-out upper bound {stats.high:.3f} dB: {verdict} --max-drop "
        f"{meta['overnet.int8_max_drop_db']} dB"
    )
    runs = {
        "fp32": (fp32_onnx, "fp32"),
        "bf16": (fp32_onnx, "bf16"),
        "int8": (out / "model.xml", "int8"),
    }
    runs["int8 (float layers bf16)"] = (out / "model.xml", "bf16")
    try:
        seconds = speeds(runs)
    except Exception as exc:  # bf16 not native on this CPU
        runs = {k: v for k, v in runs.items() if "bf16" not in k}
        seconds = speeds(runs)
        lines.append(f"    (bf16 not timed: {exc})")
    base = seconds.get("bf16")
    lines += [
        "",
        f"3. Speed at {SPEED_SHAPE[3]}x{SPEED_SHAPE[2]} x2 (median of {SPEED_ROUNDS} interleaved "
        f"rounds after a warm-up; load average now {[round(x, 2) for x in os.getloadavg()]})",
        "",
    ]
    for name, value in seconds.items():
        ratio = f"  {base / value:.2f}x bf16" if base else ""
        lines.append(f"    {name:26s} {value:.3f} s  {seconds['fp32'] / value:.2f}x fp32{ratio}")
    return lines


if __name__ == "__main__":
    main()
