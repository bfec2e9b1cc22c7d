"""Folder throughput of `upscale_files` with and without the decode/encode overlap, against
the model-only rate on the same images, interleaved in one run.

    python benchmarks/folder_overlap.py [--set5 ../shared/data/Set5] [--rounds 2]

Two folders: the Set5 HR images (Set5-sized inputs, PNG) and 960x540 JPEGs made from them.
Model-only = the Upscaler on images already decoded (no file I/O). Backend: auto (OpenVINO
on CPU, fp32 so every machine runs the same precision). Prints images/s and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from cold_start import cpu  # noqa: E402

from overnet.imaging.files import expand_inputs, load_image  # noqa: E402
from overnet.jobs.batch import upscale_files  # noqa: E402
from overnet.runtime import Upscaler, open_session  # noqa: E402


def make_folders(set5: Path, work: Path) -> dict[str, Path]:
    small, large = work / "set5", work / "960x540"
    small.mkdir()
    large.mkdir()
    for path in sorted((set5 / "HR").glob("*.png")):
        image = Image.open(path).convert("RGB")
        image.save(small / path.name)
        image.resize((960, 540), Image.Resampling.BICUBIC).save(
            large / f"{path.stem}.jpg", quality=92
        )
    return {"Set5 HR (PNG)": small, "960x540 (JPEG)": large}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set5", type=Path, default=ROOT.parent / "shared" / "data" / "Set5")
    weights = ROOT.parent / "shared" / "weights" / "OverNet_x2.pth.tar"
    parser.add_argument("--weights", type=Path, default=weights)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"folder throughput, x2, openvino fp32 ({cpu()})")
    print(f"command: python benchmarks/folder_overlap.py --rounds {args.rounds}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_session(args.weights, "openvino", precision="fp32") as session,
    ):
        work = Path(tmp)
        upscaler = Upscaler(session)
        for label, folder in make_folders(args.set5, work).items():
            files, _ = expand_inputs([str(folder)], False)
            decoded = [load_image(f.path) for f in files]
            for image in decoded:  # warm-up: OpenVINO builds kernels per new input shape
                upscaler.upscale(image)
            results: dict[str, list[float]] = {"model only": [], "overlap": [], "serial": []}
            for _ in range(args.rounds):
                start = time.perf_counter()
                for image in decoded:
                    upscaler.upscale(image)
                results["model only"].append(rate(len(files), time.perf_counter() - start))
                for name, overlap in (("overlap", True), ("serial", False)):
                    out = work / f"out-{name}"
                    report = upscale_files(
                        files, out, upscaler, overwrite=True, progress=False, overlap_io=overlap
                    )
                    assert report.ok, report.summary()
                    results[name].append(rate(len(files), report.seconds))
            medians = {name: statistics.median(v) for name, v in results.items()}
            print(f"  {label}, {len(files)} images:")
            for name, value in medians.items():
                share = value / medians["model only"]
                print(f"    {name:<11} {value:6.3f} images/s  ({share:.0%} of model only)")


if __name__ == "__main__":
    main()
