"""Overlapping tiles with blended seams (numpy only).

A tile covers ``tile`` input pixels per side; neighbours overlap by ``overlap`` pixels and
their outputs are cross-faded with linear ramps across the overlap, so no tile's border
pixels (the ones that saw zero padding and a partial global pool) show as a seam.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from overnet.errors import InputError


@dataclass(frozen=True)
class Tile:
    """Input rectangle [y0, y1) x [x0, x1) of one tile."""

    y0: int
    y1: int
    x0: int
    x1: int


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile - overlap, last tile flush with the edge."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(count)]
    return sorted(set(starts))


def plan_tiles(height: int, width: int, tile: int | tuple[int, int], overlap: int) -> list[Tile]:
    """Tiles covering a height x width input; all have the same shape (batchable).

    ``tile`` is a side or (tile height, tile width), in input pixels.
    """
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    if min(tile_h, tile_w) < 1:
        raise InputError(f"tile size must be at least 1 pixel, got {tile}")
    th, tw = min(tile_h, height), min(tile_w, width)
    needs_overlap = [side for side, length in ((th, height), (tw, width)) if side < length]
    if overlap < 0 or any(overlap >= side for side in needs_overlap):
        raise InputError(f"overlap must be in [0, tile side {tile}), got {overlap}")
    return [
        Tile(y, y + th, x, x + tw)
        for y in _starts(height, th, overlap)
        for x in _starts(width, tw, overlap)
    ]


def ramp(length: int, before: int, after: int) -> np.ndarray:
    """1-D weights: rising over ``before`` samples, falling over ``after``, 1 in between.

    Weights never reach 0 so that every output pixel keeps a positive total weight.
    """
    weights = np.ones(length, np.float32)
    if before:
        weights[:before] = (np.arange(before, dtype=np.float32) + 0.5) / before
    if after:
        weights[length - after :] = np.minimum(
            weights[length - after :], (np.arange(after, 0, -1, dtype=np.float32) - 0.5) / after
        )
    return weights


class TileBlender:
    """Accumulates scaled tile outputs into a C x H' x W' float32 image with blended seams.

    Works for integer scales only: a tile's output then maps exactly onto the full output.
    """

    def __init__(self, channels: int, height: int, width: int, scale: int, overlap: int) -> None:
        self.scale = scale
        self.overlap = overlap
        self.size = (height, width)
        self.total = np.zeros((channels, height * scale, width * scale), np.float32)
        self.weight = np.zeros((height * scale, width * scale), np.float32)

    def add(self, tile: Tile, output: np.ndarray) -> None:
        """``output``: C x (tile h * scale) x (tile w * scale) float32."""
        s, ov = self.scale, self.overlap * self.scale
        h, w = self.size
        wy = ramp(output.shape[1], ov if tile.y0 > 0 else 0, ov if tile.y1 < h else 0)
        wx = ramp(output.shape[2], ov if tile.x0 > 0 else 0, ov if tile.x1 < w else 0)
        weights = wy[:, None] * wx[None, :]
        ys, xs = slice(tile.y0 * s, tile.y1 * s), slice(tile.x0 * s, tile.x1 * s)
        self.total[:, ys, xs] += output * weights
        self.weight[ys, xs] += weights

    def result(self) -> np.ndarray:
        """The blended C x H' x W' float32 image (the accumulator is reused in place)."""
        self.total /= self.weight
        return self.total


def batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for start in range(0, len(tiles), size):
        yield tiles[start : start + size]


def seam_mask(height: int, width: int, tiles: list[Tile], scale: int, band: int = 1) -> np.ndarray:
    """Boolean H' x W' mask of output pixels within ``band`` of a tile border (for seam
    checks: the error there should be no larger than elsewhere)."""
    mask = np.zeros((height * scale, width * scale), bool)
    for t in tiles:
        for y in (t.y0, t.y1):
            if 0 < y < height:
                mask[max(0, y * scale - band) : y * scale + band, t.x0 * scale : t.x1 * scale] = 1
        for x in (t.x0, t.x1):
            if 0 < x < width:
                mask[t.y0 * scale : t.y1 * scale, max(0, x * scale - band) : x * scale + band] = 1
    return mask
