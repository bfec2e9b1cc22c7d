"""Quality metrics and the MATLAB-compatible bicubic resize (numpy only)."""

from overnet.metrics.quality import psnr, psnr_rgb, psnr_y, rgb_to_y, shave, ssim, ssim_y, to_float
from overnet.metrics.resize import imresize

__all__ = [
    "imresize",
    "psnr",
    "psnr_rgb",
    "psnr_y",
    "rgb_to_y",
    "shave",
    "ssim",
    "ssim_y",
    "to_float",
]
