"""Does a video encode give the same bytes for the same frames? And what does overnet's
repeatable libx264 setting cost?

Repeatability: `overnet.video.upscale_video` upscales one generated clip (48x128, 8
frames, x2 nearest neighbour, so no model time) N times per encoder in one process, with
overnet's default encoder threads (frame threads), after one odd-sized x3 video (as in a
batch), and counts the distinct outputs; it also gives the decoded frames' PSNR against
the exact x2 frames (range over runs) and whether one encoder thread writes other bytes
than the default count. Rows: libx264 as overnet runs it (on an AVX-512 CPU: its code
up to AVX2 only), libx264 left to pick its own code (``x264-params asm=auto``, what
FFmpeg does), libx265, SVT-AV1, VP9 and FFV1. The asm=auto row runs once more in a
child process with glibc's MALLOC_PERTURB_ set (freed memory refilled with one value).

Speed: 1080p frames encoded by libx264 (CRF 18, preset medium, 2 frame threads as
overnet runs it), overnet's setting and ``asm=auto`` alternately, ROUNDS times each;
medians and their ratio.

    python benchmarks/encoder_repeatability.py --runs 12 --rounds 9 \\
        --out benchmarks/results/encoder-repeatability.txt
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from overnet.bench.environment import cpu_info  # noqa: E402
from overnet.runtime.base import Session, SessionInfo  # noqa: E402
from overnet.runtime.upscaler import Upscaler  # noqa: E402
from overnet.video import EncodeOptions, upscale_video  # noqa: E402
from overnet.video.encode import default_encoder_threads, encoder_options  # noqa: E402

AUTO = (("x264-params", "asm=auto"),)


class Nearest(Session):
    """x``scale`` by repeating pixels: exact, and no model time."""

    def __init__(self, scale: int) -> None:
        self.info = SessionInfo("nearest", "CPU", "fp32", scale, scale)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        s = int(self.info.scale)
        return batch.repeat(s, axis=2).repeat(s, axis=3)


def make_clip(path: Path, width: int, height: int, frames: int, pix_fmt: str) -> Path:
    import av

    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            rgb = np.stack([(x * 7 + i * 9) % 256, (y * 5 + i * 4) % 256, (x + y + i) % 256], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


ROWS = [
    ("libx264 as overnet runs it", "libx264", (), ".mp4"),
    ("libx264, asm=auto (FFmpeg's default)", "libx264", AUTO, ".mp4"),
    ("libx265", "libx265", (), ".mp4"),
    ("libsvtav1", "libsvtav1", (), ".mp4"),
    ("libvpx-vp9", "libvpx-vp9", (), ".mp4"),
    ("ffv1 (AVI: Matroska writes random UIDs)", "ffv1", (), ".avi"),
]


def decoded_psnr(path: Path, truth: list[np.ndarray]) -> float:
    """Mean PSNR (dB) of the decoded frames of ``path`` against ``truth`` (RGB uint8)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    errors = [np.mean((a.astype(float) - b) ** 2) for a, b in zip(frames, truth, strict=True)]
    return float(np.mean([10 * np.log10(255**2 / max(e, 1e-12)) for e in errors]))


def run_row(row: tuple, runs: int, folder: Path) -> dict:
    """One encoder ``runs`` times: distinct files, decoded PSNR range against the exact
    x2 frames (of the decoded source), and whether 1 thread writes other bytes."""
    import av

    _, codec, extra, suffix = row
    options = EncodeOptions(codec=codec, extra=extra)
    odd = make_clip(folder / "odd.mp4", 321, 181, 3, "yuv444p")
    clip = make_clip(folder / "clip.mp4", 48, 128, 8, "yuv420p")
    with av.open(str(clip)) as container:
        truth = [
            f.to_ndarray(format="rgb24").repeat(2, axis=0).repeat(2, axis=1)
            for f in container.decode(video=0)
        ]
    upscale_video(odd, folder / f"odd-x3{suffix}", Upscaler(Nearest(3)), options)
    digests, psnrs = set(), []
    for run in range(runs):
        target = folder / f"run{run}{suffix}"
        upscale_video(clip, target, Upscaler(Nearest(2)), options)
        digests.add(hashlib.sha256(target.read_bytes()).hexdigest())
        psnrs.append(decoded_psnr(target, truth))
    one = folder / f"one-thread{suffix}"
    upscale_video(clip, one, Upscaler(Nearest(2)), dataclasses.replace(options, threads=1))
    one_differs = hashlib.sha256(one.read_bytes()).hexdigest() not in digests
    # only a repeatable encoder says anything about threads
    one = ("yes" if one_differs else "no") if len(digests) == 1 else "n/a"
    return {"distinct": len(digests), "psnr": (min(psnrs), max(psnrs)), "one": one}


def repeatability(runs: int, folder: Path) -> list[str]:
    threads = default_encoder_threads()
    lines = [f"{threads} encoder threads (frame threads)", ""]
    lines += [
        f"| encoder | distinct outputs in {runs} runs | decoded PSNR vs exact x2, dB "
        "(min-max over runs) | 1 thread writes other bytes |",
        "|---|---|---|---|",
    ]
    for row in ROWS:
        found = run_row(row, runs, folder)
        low, high = found["psnr"]
        lines.append(f"| {row[0]} | {found['distinct']} | {low:.2f}-{high:.2f} | {found['one']} |")
        print(lines[-1], flush=True)
    perturbed = perturbed_auto_row(runs)
    lines += [
        "",
        f"libx264 asm=auto again, in a child process with MALLOC_PERTURB_=85 (glibc fills "
        f"freed memory with one value): {perturbed} distinct outputs in {runs} runs",
    ]
    return lines


def perturbed_auto_row(runs: int) -> int:
    """The asm=auto row in a child process whose freed memory glibc refills with one
    value: if the runs then agree, what differed was memory the encoder never wrote."""
    env = {**os.environ, "MALLOC_PERTURB_": "85"}
    child = [sys.executable, __file__, "--child-auto", "--runs", str(runs)]
    done = subprocess.run(child, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def encode_seconds(
    frames: list, options: dict[str, str], thread_type: str = "AUTO"
) -> tuple[float, int]:
    """(seconds, bytes written) for one encode of ``frames``."""
    import av

    begin = time.perf_counter()
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.codec_context.thread_count = 2
        stream.codec_context.thread_type = thread_type  # AUTO: frame threads, as overnet
        for index, frame in enumerate(frames):
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return time.perf_counter() - begin, len(buffer.getvalue())


def speed(rounds: int) -> list[str]:
    import av

    y, x = np.mgrid[0:1080, 0:1920]
    noise = np.random.default_rng(0).integers(0, 64, size=(1080, 1920, 3))
    frames = []
    for i in range(24):
        rgb = np.stack([(x * 3 + i * 5) % 192, (y * 2 + i * 3) % 192, (x + y + i) % 192], -1)
        pixels = (rgb + noise).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        frames.append(frame)
    ours = encoder_options("libx264", None, None)
    auto = encoder_options("libx264", None, None, AUTO)
    mine, theirs, sliced = [], [], []
    for _ in range(rounds):
        mine.append(encode_seconds(frames, ours))
        theirs.append(encode_seconds(frames, auto))
        sliced.append(encode_seconds(frames, ours, "SLICE"))
    a, b, c = (statistics.median(t for t, _ in v) for v in (mine, theirs, sliced))
    size_frame, size_slice = mine[0][1], sliced[0][1]
    return [
        "",
        f"libx264 1080p, 24 frames, CRF 18 medium, 2 threads, median of {rounds} (alternating):",
        f"  as overnet runs it (frame threads, {ours.get('x264-params', 'x264 default')}): "
        f"{a:.2f} s",
        f"  asm=auto: {b:.2f} s; ratio {a / b:.3f}",
        f"  slice threads (PyAV's default, what overnet ran before): {c:.2f} s; ratio {c / a:.3f}",
        f"  bytes written: frame threads {size_frame:,}, slice threads {size_slice:,} "
        f"({size_slice / size_frame:.3f}x) at the same CRF",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=12, help="encodes per encoder")
    parser.add_argument("--rounds", type=int, default=5, help="speed rounds per setting")
    parser.add_argument("--out", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child-auto", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import av

    if args.child_auto:  # perturbed_auto_row's child: print the distinct count
        with tempfile.TemporaryDirectory() as folder:
            print(run_row(ROWS[1], args.runs, Path(folder))["distinct"])
        return

    cpu = cpu_info()
    lines = [
        f"# python benchmarks/{Path(__file__).name} --runs {args.runs} --rounds {args.rounds}",
        f"# {cpu['model']}; {cpu['logical_cores']} CPUs; flags: {' '.join(cpu['flags'])}",
        f"# Python {platform.python_version()}, PyAV {av.__version__}",
        "",
    ]
    with tempfile.TemporaryDirectory() as folder:
        lines += repeatability(args.runs, Path(folder))
    lines += speed(args.rounds)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
