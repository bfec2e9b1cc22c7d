"""The INT8 run-time guard: which input statistic predicts the INT8 loss, and what the
guard costs and saves on natural and hostile images.

A. Tiles of 64x64 LR (the guard's tile): natural crops (the 26 images of
   benchmarks/int8_images.py, LR by bicubic), and hostile ones: uniform noise, noise in
   [0.25, 0.75], natural crops with Gaussian noise (sigma 0.05), synthetic graphics
   (scikit-image's colour chart, logo, horse, phantom, chessboard; shapes and text drawn
   with Pillow) and extreme contrast (natural crops x4 about 0.5, clipped). Each tile runs
   alone through fp32 and the INT8 IR (guard off); the loss is their PSNR over RGB. For each
   statistic: Spearman's rank correlation with the loss, and what the file's threshold
   flags.
B. Whole images (320x180-class LR): Set5's LR, uniform noise 320x180, graphics, extreme
   contrast: PSNR vs fp32 and median latency (interleaved rounds) of fp32, bf16 (the float
   speed `auto` gives where bf16 is native), INT8 unguarded and INT8 guarded (flagged tiles
   on the float twin in the file's hint: fp32 unless exported with --precision-hint bf16),
   with the guard's tile counts.

    flock /tmp/bench.lock python benchmarks/int8_guard.py IR_DIR WEIGHTS [--out FILE] [--rounds 3]

IR_DIR: an `overnet export --format openvino --int8` output (model.xml with its guard
metadata and float/ twin), e.g. kept by benchmarks/int8_heldout.py --keep.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

import int8_images

from overnet.bench.environment import collect
from overnet.metrics import imresize
from overnet.runtime import open_session
from overnet.runtime.int8_guard import STATISTICS, GuardSpec, tile_statistics

TILE = 64


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def nchw(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def lr_of(rgb: np.ndarray) -> np.ndarray:
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    return imresize(np.ascontiguousarray(rgb[:h, :w]), 0.5)


def drawn(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Flat-coloured shapes and text with hard edges (screen content)."""
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(4, w // 2)), y0 + int(rng.integers(4, h // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), outline=colour, width=2)
    for _ in range(4):
        draw.text((int(rng.integers(0, w - 30)), int(rng.integers(0, h - 10))), "OverNet 8",
                  fill=tuple(int(v) for v in rng.integers(0, 256, 3)))  # fmt: skip
    return np.asarray(img)


def crops(lr: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        if lr.shape[0] < TILE or lr.shape[1] < TILE:
            break
        y = int(rng.integers(0, lr.shape[0] - TILE + 1))
        x = int(rng.integers(0, lr.shape[1] - TILE + 1))
        out.append(nchw(lr[y : y + TILE, x : x + TILE]))
    return out


def tiles(natural: dict[str, np.ndarray], graphics: dict[str, np.ndarray]) -> dict[str, list]:
    rng = np.random.default_rng(0)
    lrs = {k: lr_of(v) for k, v in natural.items()}
    nat = [c for lr in lrs.values() for c in crops(lr, 4, rng)]
    out = {"natural": nat}
    out["uniform noise"] = [rng.random((1, 3, TILE, TILE), dtype=np.float32) for _ in range(10)]
    out["noise in [0.25, 0.75]"] = [0.25 + 0.5 * t for t in out["uniform noise"]]
    picks = [nat[i] for i in rng.choice(len(nat), 10, replace=False)]
    out["natural + noise 0.05"] = [
        np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1).astype(np.float32) for t in picks
    ]
    out["extreme contrast x4"] = [np.clip((t - 0.5) * 4 + 0.5, 0, 1) for t in picks]
    gfx = [c for lr in graphics.values() for c in crops(lr_of(lr), 2, rng)]
    gfx += [nchw(drawn(rng, TILE, TILE)) for _ in range(10)]
    out["graphics"] = gfx
    return out


def header() -> list[str]:
    env = collect(2)
    cpu, lib = env["cpu"], env["libraries"]
    return [
        f"CPU: {cpu['model']}, {cpu['usable_cores']} usable cores, flags {' '.join(cpu['flags'])}",
        f"openvino {lib.get('openvino')}, nncf {metadata.version('nncf')}; load average at start "
        f"{env['load_average_start']}",
        "The machine (2 cores) is shared with up to 5 other sessions working in parallel: "
        "latencies are medians of interleaved rounds, comparable within this file only.",
    ]


def part_a(xml: Path, fp32, int8, spec: GuardSpec, natural, graphics) -> list[str]:
    from scipy.stats import spearmanr

    groups = tiles(natural, graphics)
    rows = []
    for group, items in groups.items():
        for t in items:
            loss = psnr(int8.run(t), fp32.run(t))
            rows.append(
                (group, loss, {s: float(tile_statistics(t, s, TILE)[0, 0]) for s in STATISTICS})
            )
    lines = [
        "A. Which statistic predicts the INT8 loss (64x64 LR tiles run alone; PSNR of INT8 vs "
        "fp32 over RGB)",
        "",
        f"    {'tiles':24s} {'n':>3s} {'PSNR median':>11s} {'min':>6s}   "
        + "  ".join(f"{s:>10s}" for s in STATISTICS),
    ]
    for group in groups:
        sel = [r for r in rows if r[0] == group]
        values = [r[1] for r in sel]
        stats_line = "  ".join(
            f"{statistics.median(r[2][s] for r in sel):10.4f}" for s in STATISTICS
        )
        lines.append(
            f"    {group:24s} {len(sel):3d} {statistics.median(values):11.1f} "
            f"{min(values):6.1f}   {stats_line}"
        )
    losses = np.array([-r[1] for r in rows])
    lines += ["", "    Spearman rank correlation of each statistic with the loss (all tiles):"]
    for s in STATISTICS:
        rho = spearmanr([r[2][s] for r in rows], losses).statistic
        lines.append(f"      {s:10s} {rho:+.3f}")
    flagged = [r for r in rows if r[2][spec.statistic] > spec.threshold]
    bad = [r for r in rows if r[1] < 40]
    caught = [r for r in bad if r[2][spec.statistic] > spec.threshold]
    nat_flag = [r for r in flagged if r[0] == "natural"]
    top = spec.calibrated.get("max", 0.0)
    lines += [
        "",
        f"    The file's guard: {spec.statistic} > {spec.threshold:.4g} (calibration tiles: "
        f"median {spec.calibrated.get('p50', 0):.4g}, p99 {spec.calibrated.get('p99', 0):.4g}, "
        f"max {top:.4g}; threshold = max x {spec.threshold / max(top, 1e-12):.2f})",
        f"      flags {len(flagged)} of {len(rows)} tiles; {len(caught)} of the {len(bad)} tiles "
        f"under 40 dB; {len(nat_flag)} of {len(groups['natural'])} natural tiles",
    ]
    missed = [r for r in bad if r[2][spec.statistic] <= spec.threshold]
    for group, loss, st in missed[:8]:
        lines.append(
            f"      missed: {group} {loss:.1f} dB ({spec.statistic} {st[spec.statistic]:.4f})"
        )
    return lines


def timed(sessions: dict, x: np.ndarray, rounds: int = 3) -> dict[str, tuple[float, np.ndarray]]:
    outs = {name: s.run(x) for name, s in sessions.items()}  # warm-up, and the outputs
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(x)
            samples[name].append(time.perf_counter() - start)
    return {name: (statistics.median(samples[name]), outs[name]) for name in sessions}


def int8_fallback_precision(xml: Path) -> str:
    """The precision the float twin opens in with no precision asked (the file's hint):
    what the guard's fallback computes in."""
    twin = open_session(xml.parent / "float" / "model.xml", "openvino", precision=None)
    try:
        return twin.info.precision
    finally:
        twin.close()


def part_b(xml: Path, weights: Path, shared: Path, graphics, rounds: int = 3) -> list[str]:
    rng = np.random.default_rng(1)
    images = {}
    for path in sorted((shared / "data" / "Set5" / "LR_bicubic" / "X2").glob("*.png")):
        images[f"Set5 {path.stem.removesuffix('x2')}"] = nchw(
            np.asarray(Image.open(path).convert("RGB"))
        )
    images["uniform noise 320x180"] = rng.random((1, 3, 180, 320), dtype=np.float32)
    images["drawn shapes+text 320x180"] = nchw(drawn(rng, 180, 320))
    for name in ("color", "logo"):
        images[f"skimage {name} (LR)"] = nchw(lr_of(graphics[f"skimage-{name}"]))
    baby = np.asarray(Image.open(shared / "data/Set5/LR_bicubic/X2/babyx2.png").convert("RGB"))
    images["Set5 baby contrast x4"] = np.clip((nchw(baby) - 0.5) * 4 + 0.5, 0, 1)
    float_xml = xml.parent / "float" / "model.xml"
    fp32 = open_session(float_xml, "openvino", precision="fp32")
    # bf16 is the float speed a user gets by default (auto) on this CPU, a column always; the
    # guard's fallback runs the float twin in the file's hint (fp32 in today's default file)
    bf16 = open_session(float_xml, "openvino", precision="bf16")
    plain = open_session(xml, "openvino-int8", guard=False)
    guarded = open_session(xml, "openvino-int8")
    sessions = {"fp32": fp32, "bf16": bf16, "int8": plain, "int8 guarded": guarded}
    names = list(sessions)
    fallback = int8_fallback_precision(xml)
    lines = [
        f"B. Whole images: PSNR vs fp32 over RGB (dB) and median latency (s, {rounds} interleaved "
        "rounds)",
        f"   (the guard runs flagged tiles on the float twin in the file's hint: {fallback})",
        "",
        f"    {'image':28s} {'size':>9s}  "
        + "  ".join(f"{n:>17s}" for n in names[1:])
        + f"  {'fp32 s':>7s}  guard float tiles",
    ]
    try:
        for name, x in images.items():
            before = (guarded.counts.tiles, guarded.counts.float_tiles)
            result = timed(sessions, x, rounds)
            ref = result["fp32"][1]
            cells = [f"{psnr(result[n][1], ref):6.1f} dB {result[n][0]:6.3f}s" for n in names[1:]]
            runs = rounds + 1  # the warm-up and the timed rounds
            tiles_run = (guarded.counts.tiles - before[0]) // runs
            floats = (guarded.counts.float_tiles - before[1]) // runs
            lines.append(
                f"    {name:28s} {x.shape[3]:4d}x{x.shape[2]:<4d}  " + "  ".join(cells)
                + f"  {result['fp32'][0]:7.3f}  {floats}/{tiles_run}"
            )  # fmt: skip
    finally:
        for s in sessions.values():
            s.close()
    lines += [
        "",
        f"    (guard float tiles: per run; every image ran {rounds + 1} times, warm-up included)",
        f"    {guarded.counts.format()} (all runs)",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ir_dir", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "overnet-bench")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per image (part B)")
    args = parser.parse_args()
    xml = args.ir_dir / "model.xml"
    with tempfile.TemporaryDirectory() as tmp:
        pool = int8_images.pool(Path(tmp) / "pool", args.shared, args.cache)
        natural = {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in pool}
    graphics = int8_images.skimage_images(args.cache, int8_images.SKIMAGE_GRAPHICS)
    fp32 = open_session(xml.parent / "float" / "model.xml", "openvino", precision="fp32")
    int8 = open_session(xml, "openvino-int8", guard=False)
    spec = GuardSpec.from_metadata(int8.info.metadata)
    assert spec is not None, f"{xml} has no guard metadata"
    lines = [
        "INT8 run-time guard (benchmarks/int8_guard.py), recorded "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"INT8 IR of OverNet x2 (upstream weights), calibration "
        f"{int8.info.metadata.get('overnet.int8_calibration')}",
        *header(),
        "",
    ]
    try:
        lines += part_a(xml, fp32, int8, spec, natural, graphics)
    finally:
        fp32.close()
        int8.close()
    lines += ["", *part_b(xml, args.weights, args.shared, graphics, args.rounds)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
