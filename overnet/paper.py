"""Figures published in the OverNet paper (Behjati et al., WACV 2021), for comparison.

Only figures stated in the paper are kept here; they are quoted beside measured ones.
"""

from __future__ import annotations

PAPER = "OverNet: Lightweight Multi-Scale Super-Resolution with Overscaling Network (WACV 2021)"

#: "0.9M" parameters in the paper's comparison tables.
PARAMETERS = 0.9e6
