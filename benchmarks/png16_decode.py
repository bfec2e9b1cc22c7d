"""16-bit PNG decoders compared: time to decode a 25 MP RGB48 PNG, install size,
interlacing, the metadata each returns, and how much each inflates past the image.

    python benchmarks/png16_decode.py [--rounds 3] [--old] [--filters paeth] [--only A,B]

The image is generated here (5000x5000 RGB, 16 bits: smooth gradients plus 8 bits of
noise, so it compresses like a photo), its rows cycling through all five PNG filters
(the former decoder ran Average and Paeth rows byte by byte in Python). Candidates that
are not installed are listed as such; install them beside overnet to compare
(``pip install imagecodecs opencv-python-headless pypng``).

``--filters paeth`` filters every row with Paeth instead (the former decoder's worst
case). ``--old`` also times, once, the decoder overnet had before it used pyspng: its module is
read from git (``git show 7644de3:overnet/imaging/png16.py``) and run as it was.
Each decoder runs in a child process of its own, for a clean peak RSS, with its address
space limited to 6 GiB (a decoder that inflates the bomb into memory fails there).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "7644de3"  # the last commit with the numpy/Python decoder
SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIDE = 5000
#: candidate -> (distribution whose files count as its install size, what decodes)
CANDIDATES = {
    "overnet (pyspng)": ("pyspng", "libspng, via overnet.imaging.png16.decode_png16"),
    "pyspng": ("pyspng", "libspng"),
    "imagecodecs": ("imagecodecs", "libpng (imagecodecs.png_decode)"),
    "opencv-python-headless": ("opencv-python-headless", "libpng (cv2.imdecode)"),
    "pypng": ("pypng", "pure Python"),
    "pillow (8-bit only)": ("pillow", "Pillow's own decoder: reads RGB48 as 8-bit RGB"),
}
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _filtered(pixels: np.ndarray, all_paeth: bool = False) -> np.ndarray:
    """Rows with filter type y % 5 (None, Sub, Up, Average, Paeth), or Paeth (4) on
    every row, vectorised."""
    height, _, channels = pixels.shape
    rows = np.ascontiguousarray(pixels, ">u2").view(np.uint8).reshape(height, -1)
    rows = rows.astype(np.int16)
    bpp = 2 * channels
    up = np.zeros_like(rows)
    up[1:] = rows[:-1]
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    upleft = np.zeros_like(rows)
    upleft[:, bpp:] = up[:, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    kinds = np.full(height, 4) if all_paeth else np.arange(height) % 5
    predictions = (np.zeros_like(rows), left, up, (left + up) // 2, paeth)
    out = np.empty((height, rows.shape[1] + 1), np.uint8)
    out[:, 0] = kinds
    for kind, prediction in enumerate(predictions):
        chosen = kinds == kind
        out[chosen, 1:] = ((rows[chosen] - prediction[chosen]) % 256).astype(np.uint8)
    return out


def png16(pixels: np.ndarray, *, interlace: bool = False, paeth: bool = False) -> bytes:
    height, width, channels = pixels.shape
    if interlace:
        passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2))  # fmt: skip
        raw = b"".join(
            _filtered(np.ascontiguousarray(pixels[y0::dy, x0::dx])).tobytes()
            for x0, y0, dx, dy in passes
            if pixels[y0::dy, x0::dx].size
        )
    else:
        raw = _filtered(pixels, paeth).tobytes()
    color = 2 if channels == 3 else 6
    header = struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, int(interlace))
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"gAMA", struct.pack(">I", 45455))
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def test_image(side: int = SIDE) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    base = np.stack([x / side, y / side, 0.5 + 0.5 * np.sin(x / 37 + y / 53)], -1) * 60000
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3))
    return (base + noise).astype(np.uint16)


def bomb() -> bytes:
    """A 1x1 RGB48 PNG whose one zlib stream goes on for 1 GiB past the image's 7 bytes."""
    deflate = zlib.compressobj(9)
    body = deflate.compress(b"\0" * 7)
    zeros = bytes(1 << 24)
    for _ in range(64):
        body += deflate.compress(zeros)
    body += deflate.flush()
    header = struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


# ---- run in a child: one decoder on one file ------------------------------------------


def _decoder(name: str):
    if name == "overnet (pyspng)":
        from overnet.imaging.png16 import decode_png16

        return lambda data: decode_png16(data)[0]
    if name == "old overnet decoder":
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:overnet/imaging/png16.py"],
            cwd=ROOT, capture_output=True, check=True, text=True,
        ).stdout  # fmt: skip
        module: dict = {"__name__": "old_png16"}
        exec(compile(source, "old_png16.py", "exec"), module)

        def old(data: bytes) -> np.ndarray:
            with tempfile.NamedTemporaryFile(suffix=".png") as fh:
                fh.write(data)
                fh.flush()
                return module["read_png16"](fh.name)[0]

        return old
    if name == "pyspng":
        import pyspng

        return pyspng.load
    if name == "imagecodecs":
        import imagecodecs

        return imagecodecs.png_decode
    if name == "opencv-python-headless":
        import cv2

        def opencv(data: bytes) -> np.ndarray:
            out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if out is None:
                raise ValueError("cv2.imdecode returned None")
            return out[..., ::-1] if out.ndim == 3 else out  # BGR -> RGB

        return opencv
    if name == "pypng":
        import png

        def pure(data: bytes) -> np.ndarray:
            width, height, rows, _ = png.Reader(bytes=data).asDirect()
            return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, -1)

        return pure
    if name == "pillow (8-bit only)":
        import io

        from PIL import Image

        def pillow(data: bytes) -> np.ndarray:
            with Image.open(io.BytesIO(data)) as image:
                return np.asarray(image)

        return pillow
    raise KeyError(name)


def _peak_rss() -> int:
    """This process's peak RSS in bytes (VmHWM: unlike ru_maxrss, not inherited from the
    parent's size at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _other_thread_share(decode, data: bytes) -> float:
    """How much a pure-Python thread gets done during one decode, relative to what it
    gets done in the same time alone: ~100% when the decoder releases the GIL, ~0% when
    it holds it throughout."""
    count, stop = [0], [False]

    def spin() -> None:
        while not stop[0]:
            count[0] += 1

    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.2)
    before, start = count[0], time.perf_counter()
    decode(data)
    during, spent = count[0] - before, time.perf_counter() - start
    before = count[0]
    time.sleep(spent)
    alone = count[0] - before
    stop[0] = True
    thread.join()
    return 100.0 * during / max(alone, 1)


#: address space a child may use: a decoder that inflates a bomb into memory gets a
#: MemoryError instead of waking the kernel's OOM killer (pypng did, without this)
CHILD_MEMORY = 6 << 30


def _child(name: str, path: str, reference: str, rounds: int, gil: bool) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    data = Path(path).read_bytes()
    try:
        decode = _decoder(name)
    except ImportError:
        print(json.dumps({"missing": True}))
        return
    times, equal, error = [], None, None
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            out = decode(data)
        except (Exception, MemoryError) as exc:  # a candidate's refusal is a result here
            error = f"{type(exc).__name__}: {exc}"
            times.append(time.perf_counter() - start)
            break
        times.append(time.perf_counter() - start)
        if reference and equal is None:
            expected = np.load(reference, mmap_mode="r")
            equal = bool(out.dtype == np.uint16 and np.array_equal(out[..., :3], expected))
        del out
    peak = _peak_rss()
    share = _other_thread_share(decode, data) if gil and error is None else None
    print(json.dumps({"times": times, "equal": equal, "error": error, "peak": peak, "gil": share}))


def _run(name: str, path: Path, reference: Path | None, rounds: int, gil: bool = False) -> dict:
    args = [sys.executable, __file__, "--child", name, str(path), str(reference or ""),
            str(rounds), "gil" if gil else "-"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"error": f"crashed: {last}"}
    return json.loads(lines[-1])


def _short(error: str) -> str:
    return error if len(error) <= 70 else error[:67] + "..."


def _install_size(dist: str) -> str:
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
    total = 0
    for entry in files:
        located = Path(entry.locate())
        if located.is_file():
            total += located.stat().st_size
    # bundled shared libraries (auditwheel's NAME.libs folder) are listed in RECORD too
    return f"{total / 1e6:.1f} MB"


def _cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("model name")), "unknown")  # fmt: skip
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                      if ln.startswith("flags")), []))  # fmt: skip
    present = " ".join(f"{flag}={'yes' if flag in flags else 'no'}" for flag in FLAGS)
    return f"{model}, {os.cpu_count()} CPUs; {present}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed decodes per candidate")
    parser.add_argument("--old", action="store_true", help="also time the old decoder, once")
    parser.add_argument(
        "--filters",
        choices=("cycle", "paeth"),
        default="cycle",
        help="row filters of the 25 MP image: the five in turn (default), or Paeth on every row",
    )
    parser.add_argument("--only", help="comma-separated decoder names (default: all)")
    args = parser.parse_args()

    print(f"command: python benchmarks/png16_decode.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"cpu: {_cpu()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, zlib {zlib.ZLIB_VERSION}")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        pixels = test_image()
        reference = folder / "pixels.npy"
        np.save(reference, pixels)
        flat, interlaced, small = folder / "flat.png", folder / "adam7.png", folder / "s.npy"
        flat.write_bytes(png16(pixels, paeth=args.filters == "paeth"))
        np.save(small, pixels[:301, :257])
        interlaced.write_bytes(png16(pixels[:301, :257], interlace=True))
        bombed = folder / "bomb.png"
        bombed.write_bytes(bomb())
        del pixels
        filters = "Paeth on every row" if args.filters == "paeth" else (
            "rows filtered None/Sub/Up/Average/Paeth in turn")  # fmt: skip
        print(f"image: {SIDE}x{SIDE} RGB, 16 bits ({SIDE * SIDE / 1e6:.0f} MP), "
              f"{flat.stat().st_size / 1e6:.1f} MB, {filters}")  # fmt: skip
        bomb_mb = bombed.stat().st_size / 1e6
        print(f"interlaced: 257x301 RGB48, Adam7; bomb: 1x1 RGB48, {bomb_mb:.2f} MB file "
              "whose zlib stream inflates to 1 GiB")  # fmt: skip
        print("GIL: what a pure-Python thread gets done during a 25 MP decode, relative to alone")
        print()
        names = list(CANDIDATES) + (["old overnet decoder"] if args.old else [])
        if args.only:
            names = [name for name in names if name in args.only.split(",")]
        header = ("decoder", "25 MP decode s (best; all)", "equal", "peak RSS", "GIL",
                  "interlaced", "1 GiB bomb", "installed", "decodes with")  # fmt: skip
        print(" | ".join(header))
        print(" | ".join("---" for _ in header))
        for name in names:
            dist, what = CANDIDATES.get(name, ("", "numpy + Python (before this change)"))
            slow = name in ("old overnet decoder", "pypng")
            big = _run(name, flat, reference, 1 if slow else args.rounds, gil=not slow)
            if big.get("missing"):
                print(f"{name} | not installed | | | | | | | {what}")
                continue
            if big.get("error") and not big.get("times"):
                print(f"{name} | {_short(big['error'])} | | | | | | | {what}")
                continue
            times = big["times"]
            timing = f"{min(times):.2f} ({', '.join(f'{t:.2f}' for t in times)})"
            gil = "held (Python loops)" if slow else (
                "-" if big.get("gil") is None else f"{big['gil']:.0f}%")  # fmt: skip
            adam7 = _run(name, interlaced, small, 1)
            adam7_text = "equal" if adam7.get("equal") else (
                _short(adam7.get("error") or "DIFFERENT"))  # fmt: skip
            boom = _run(name, bombed, None, 1)
            if boom.get("error"):
                spent = f" in {boom['times'][0]:.2f} s" if boom.get("times") else ""
                boom_text = f"refused{spent}: {_short(boom['error'])}"
            else:
                boom_text = f"decoded: {boom['times'][0]:.2f} s, {boom['peak'] / 1e6:.0f} MB peak"
            equal = {True: "yes", False: "NO", None: "-"}[big.get("equal")]
            size = _install_size(dist) if dist else "-"
            print(f"{name} | {timing} | {equal} | {big['peak'] / 1e6:.0f} MB | {gil} | "
                  f"{adam7_text} | {boom_text} | {size} | {what}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == "gil")
    else:
        main()
