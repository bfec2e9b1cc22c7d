"""Video pipeline speed and memory: pipeline fps against model-only fps on the same frames,
and peak RSS as the video gets longer.

Each measurement runs in a fresh process (so its peak RSS is its own). A ratio run makes
a clip (moving pattern, libx264, AAC sine track) and decodes its frames into memory; then
it alternates the model alone on those frames (Upscaler.upscale_array on ready float
batches, no conversions) with the whole pipeline on the clip (decode -> infer -> libx264
encode -> mux, audio copied), starting and ending with the model alone, and compares the
medians. It also times the model calls inside the pipeline: their share of the pipeline's
wall time is the overlap, measured in the same seconds (immune to load from other
processes, which moves the model-only passes on a shared machine). An RSS run upscales a
clip of N frames and reports the peak RSS and the RSS after 10% and 100% of the frames.

    python benchmarks/video_pipeline.py --weights ../shared/weights/OverNet_x2.pth.tar \\
        --ratio 960x540:2:1 --ratio 160x90:10:3 --rss 64x36:100,1000 \\
        --out benchmarks/results/video-pipeline.txt

(--ratio WIDTHxHEIGHT:FRAMES:ROUNDS, --rss WIDTHxHEIGHT:N1,N2.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_clip(path: Path, width: int, height: int, frames: int, rate: int = 25) -> Path:
    """A moving pattern (libx264 yuv420p) with a 440 Hz AAC track."""
    import av

    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for i in range(frames):
            rgb = np.stack([(x * 3 + i * 5) % 256, (y * 2 + i) % 256, (x + y + 2 * i) % 256], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = 48000 * frames // rate
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = np.ascontiguousarray(wave[None, start : start + 1024])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, start
            out.mux(audio.encode(af))
        out.mux(audio.encode(None))
    return path


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def _timed(upscaler) -> list[float]:
    """Make ``upscaler`` add the seconds its model calls take to the returned cell."""
    spent = [0.0]
    plain = upscaler.upscale_array

    def timed(batch, plan=None):
        begin = time.perf_counter()
        try:
            return plain(batch, plan)
        finally:
            spent[0] += time.perf_counter() - begin

    upscaler.upscale_array = timed
    return spent


def child_ratio(weights: Path, width: int, height: int, frames: int, rounds: int) -> dict:
    from overnet.runtime import Upscaler, open_session
    from overnet.video import upscale_video
    from overnet.video.frames import to_batch
    from overnet.video.probe import open_input

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", width, height, frames)
        with open_input(clip) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        batches = [to_batch([f]) for f in decoded]
        with open_session(weights) as session:
            upscaler = Upscaler(session)
            upscaler.upscale_array(batches[0])  # warm-up

            def model_only() -> float:
                begin = time.perf_counter()
                for batch in batches:
                    upscaler.upscale_array(batch)
                return len(batches) / (time.perf_counter() - begin)

            # model, pipeline, model, pipeline, ..., model: each pipeline pass bracketed
            model_fps, pipeline_fps, inside, wall = [model_only()], [], 0.0, 0.0
            for _ in range(rounds):
                spent = _timed(upscaler)
                result = upscale_video(clip, Path(tmp) / "out.mp4", upscaler)
                del upscaler.upscale_array  # back to the plain method
                pipeline_fps.append(result.fps)
                inside, wall = inside + spent[0], wall + result.seconds
                model_fps.append(model_only())
            plan = upscaler.plan(height, width)
            return {
                "backend": session.info.describe(),
                "tiles": len(plan.tiles),
                "frames": result.frames_out,
                "model_fps": model_fps,
                "pipeline_fps": pipeline_fps,
                "ratio": statistics.median(pipeline_fps) / statistics.median(model_fps),
                "model_s_inside": inside,
                "wall_s": wall,
                "output": result.size,
                "encoding": result.encoding,
            }


def child_rss(weights: Path, width: int, height: int, frames: int, rounds: int = 1) -> dict:
    from overnet.runtime import Upscaler, open_session
    from overnet.video import upscale_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", width, height, frames)
        samples: dict[int, float] = {}
        done = [0]

        def on_frame(n: int) -> None:
            done[0] += n
            if done[0] in (frames // 10, frames):
                samples[done[0]] = _rss_mb()

        with open_session(weights) as session:
            result = upscale_video(
                clip, Path(tmp) / "out.mp4", Upscaler(session), on_frame=on_frame
            )
        return {
            "frames": result.frames_out,
            "fps": result.fps,
            "rss_mb_at": samples,
            "peak_rss_mb": _peak_mb(),
        }


def run_child(kind: str, weights: Path, size: str, frames: int, rounds: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--weights", str(weights), "--rounds", str(rounds)]
    cmd += ["--child", kind, size, str(frames)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> list[str]:
    flags = set()
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    simd = sorted(f for f in flags if f.startswith("avx512") or f in ("avx2", "fma", "amx_bf16"))
    import av

    return [
        f"cpu: {model}, {os.cpu_count()} cores, {platform.machine()}; flags: {' '.join(simd)}",
        f"python {platform.python_version()}, PyAV {av.__version__}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights", type=Path, default=ROOT.parent / "shared/weights/OverNet_x2.pth.tar"
    )
    parser.add_argument("--ratio", action="append", default=[], help="WIDTHxHEIGHT:FRAMES[:ROUNDS]")
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rss", action="append", default=[], help="WIDTHxHEIGHT:N1,N2")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--note", action="append", default=[], help="a line for the file")
    parser.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size, frames = args.child
        width, height = (int(v) for v in size.split("x"))
        run = child_ratio if kind == "ratio" else child_rss
        print(json.dumps(run(args.weights, width, height, int(frames), args.rounds)))
        return
    lines = [*machine(), f"load average before: {os.getloadavg()[0]:.2f}"]
    begin = time.perf_counter()
    for spec in args.ratio:
        size, frames, *rounds = spec.split(":")
        r = run_child("ratio", args.weights, size, int(frames), int(rounds[0]) if rounds else 1)
        w, h = r["output"]
        model = " / ".join(f"{v:.4g}" for v in r["model_fps"])
        pipe = " / ".join(f"{v:.4g}" for v in r["pipeline_fps"])
        lines.append(
            f"ratio {size} -> {w}x{h}, {r['frames']} frames, {r['backend']}, {r['tiles']} "
            f"tile(s)/frame, {r['encoding']}: model-only passes {model} fps, pipeline passes "
            f"{pipe} fps (in between), ratio of medians {r['ratio']:.3f}; inside the "
            f"pipeline the model ran {r['model_s_inside']:.1f} s of {r['wall_s']:.1f} s wall "
            f"({100 * r['model_s_inside'] / r['wall_s']:.1f}%)"
        )
        print(lines[-1], flush=True)
    for spec in args.rss:
        size, counts = spec.split(":")
        for n in counts.split(","):
            r = run_child("rss", args.weights, size, int(n))
            at = ", ".join(f"{k} frames {v:.0f} MB" for k, v in r["rss_mb_at"].items())
            lines.append(
                f"rss {size}, {r['frames']} frames: peak RSS {r['peak_rss_mb']:.0f} MB; RSS at "
                f"{at}; {r['fps']:.3g} fps"
            )
            print(lines[-1], flush=True)
    lines.append(
        f"load average after: {os.getloadavg()[0]:.2f}; total {time.perf_counter() - begin:.0f} s"
    )
    if args.out:
        options = [f"--weights {args.weights}"]
        options += [f"--ratio {spec}" for spec in args.ratio]
        options += [f"--rss {spec}" for spec in args.rss]
        command = f"python benchmarks/video_pipeline.py {' '.join(options)} --out {args.out}"
        notes = [f"# {note}" for note in args.note]
        args.out.write_text("\n".join([f"# command: {command}", *notes, *lines]) + "\n")


if __name__ == "__main__":
    main()
