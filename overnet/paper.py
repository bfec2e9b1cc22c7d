"""Figures published in the OverNet paper (Behjati et al., WACV 2021), for comparison.

Only figures stated in the paper are kept here; they are quoted beside measured ones.
"""

from __future__ import annotations

PAPER = "OverNet: Lightweight Multi-Scale Super-Resolution with Overscaling Network (WACV 2021)"

#: "0.9M" parameters in the paper's comparison tables.
PARAMETERS = 0.9e6

#: (dataset, scale) -> (PSNR-Y dB, SSIM-Y) from the paper's comparison table.
#: Only the figures this project has checked against the paper are listed; add
#: others here with their source to have `overnet eval` compare against them.
BENCHMARK: dict[tuple[str, int], tuple[float, float]] = {
    ("Set5", 2): (38.11, 0.9608),
    ("Set5", 3): (34.46, 0.9273),
}
