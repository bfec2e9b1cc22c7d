"""How much tiling changes OverNet's output on Set5: PSNR-Y drop and seam error.

OverNet's squeeze-excitation blocks pool globally, so a tile sees different channel
weights than the whole image; the overlap hides the tile borders. For each tile side and
overlap this prints the Set5 PSNR-Y (paper protocol) of tiled minus whole-image inference,
and the largest |tiled - whole| on tile borders and elsewhere (8-bit levels).

    python benchmarks/tiling_quality.py --model x2.onnx [--shared ../shared]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from overnet.eval import discover, evaluate
from overnet.imaging import read_rgb8, rgb8_to_nchw
from overnet.imaging.tiling import seam_mask
from overnet.runtime import open_session
from overnet.runtime.upscaler import Upscaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="ONNX file or checkpoint (x2)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--tiles", default="32,48,64,96,128")
    parser.add_argument("--overlaps", default="0,8,16,24")
    args = parser.parse_args()
    session = open_session(args.model, args.backend)
    scale = int(session.info.scale)
    dataset = discover(args.shared / "data" / "Set5", scale)
    whole = evaluate(dataset, session.run, "paper", None, False).mean("psnr_y")
    print(f"{session.info.describe()}; Set5 x{scale} whole-image PSNR-Y {whole:.4f} dB")
    print("tile overlap  PSNR-Y   drop dB  max|diff| border  elsewhere (8-bit levels)")
    for tile in (int(t) for t in args.tiles.split(",")):
        for overlap in (int(o) for o in args.overlaps.split(",")):
            if overlap >= tile // 2:
                continue
            upscaler = Upscaler(session, tile=tile, overlap=overlap)
            tiled = evaluate(dataset, upscaler.upscale_array, "paper", None, False).mean("psnr_y")
            border_err = other_err = 0.0
            for sample in dataset.samples:
                lr = rgb8_to_nchw(read_rgb8(sample.lr_path)[0])
                _, _, h, w = lr.shape
                plan = upscaler.plan(h, w)
                diff = np.abs(upscaler.upscale_array(lr, plan) - session.run(lr))[0].max(0) * 255
                mask = seam_mask(h, w, list(plan.tiles), scale, band=2 * scale)
                border_err = max(border_err, float(diff[mask].max(initial=0)))
                other_err = max(other_err, float(diff[~mask].max(initial=0)))
            print(
                f"{tile:4d} {overlap:7d}  {tiled:.4f}  {tiled - whole:+.4f}  "
                f"{border_err:16.2f}  {other_err:9.2f}"
            )


if __name__ == "__main__":
    main()
