"""Why fractional scales cannot be tiled by resizing the overscaled RGB output: OverNet
resizes its 64-channel features before the last convolution (exit1), so running the
network at its integer upscale and resizing the RGB result bicubically is a different
function. Prints PSNR (dB) of that shortcut against whole-image inference.

    python benchmarks/overscale_resize.py [--shared ../shared]

96x96 crops of three Set5 LR images, x2 and x3 weights, scales 1.37 to upscale - 0.5.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from overnet.config import output_size
from overnet.imaging import read_rgb8, rgb8_to_nchw
from overnet.weights import load_model

ROOT = Path(__file__).resolve().parents[1]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return 10 * np.log10(1 / mse) if mse > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    images = sorted((args.shared / "data" / "Set5" / "LR_bicubic" / "X2").glob("*.png"))[:3]
    print("weights  image      scale  PSNR of resize(overscaled RGB) vs whole image")
    for name in ("OverNet_x2.pth.tar", "OverNet_x3.pth.tar"):
        model = load_model(args.shared / "weights" / name)
        for path in images:
            x = torch.from_numpy(rgb8_to_nchw(read_rgb8(path)[0]))[:, :, :96, :96]
            for scale in (1.37, 1.5, 2.5, 3.5):
                if scale >= model.upscale:
                    continue
                size = output_size(x.shape[2], x.shape[3], scale)
                with torch.inference_mode():
                    exact = model(x, scale)
                    over = model(x, float(model.upscale))
                    shortcut = F.interpolate(over, size=size, mode="bicubic", align_corners=False)
                print(f"{name[8:10]}       {path.stem:<10} {scale:<6} {psnr(exact, shortcut):.2f}")


if __name__ == "__main__":
    main()
