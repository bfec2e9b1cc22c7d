"""Upscale whole images of any size through a Session: tiling, batching, modes, alpha."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from overnet.config import DEFAULT_OVERLAP, output_size
from overnet.errors import InputError, MemoryLimitError
from overnet.imaging.tiling import Tile, TileBlender, batches, plan_tiles
from overnet.runtime.base import Session
from overnet.runtime.memory import bytes_per_input_pixel, host_bytes
from overnet.runtime.overscale import (
    MIN_OVERLAP,
    finish_whole,
    head_bytes_per_input_pixel,
    run_overscaled,
)
from overnet.units import parse_memory

#: Memory budget of one image: the network's working memory (the tiles in flight) plus
#: the image's host buffers (decoded input, float planes, accumulators, the result and
#: its encoding; ``runtime.memory.host_bytes``). The process itself (~0.3 GB with a
#: model loaded) comes on top (see README, "Tiling").
DEFAULT_MAX_MEMORY = "2GB"
#: Smallest automatic tile side: below it the per-tile global pooling drifts too far.
MIN_AUTO_TILE = 96


@dataclass(frozen=True)
class TilePlan:
    """How one input will be run: tile side (input pixels), overlap, tiles per batch."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    overlap: int
    batch: int
    tiles: tuple[Tile, ...]
    #: working memory of the network for one run of ``batch`` tiles (estimated)
    network_bytes: int = 0
    #: the image's host buffers besides the network (``runtime.memory.host_bytes``)
    host_bytes: int = 0

    @property
    def tiled(self) -> bool:
        return len(self.tiles) > 1

    @property
    def total_bytes(self) -> int:
        """What a run of ``batch`` whole images (video frames) or of one image's tiles
        holds at its peak (estimated): within the ``max_memory`` the plan was made for."""
        return self.network_bytes + self.host_bytes

    @property
    def image_bytes(self) -> int:
        """What upscaling one image holds at its peak (estimated): its host buffers and
        one run of its tiles (or of the image alone: the batch of whole images is for
        frames of a video, not for a single image)."""
        one_run = self.network_bytes if self.tiled else self.network_bytes // self.batch
        return one_run + self.host_bytes


class Upscaler:
    """Tiled super-resolution of single images through an open ``Session``.

    ``tile``: tile side in input pixels; None derives it from ``max_memory`` (the whole
    image when it fits); 0 runs whole images, untiled and unplanned (Real-ESRGAN's
    ``--tile 0``). ``batch``: most tiles (or whole images) per ``Session.run`` (None: 1 on
    CPU, 4 on GPUs). ``max_memory`` bounds what one run holds, batch included: a plan
    lowers the batch (down to 1) before it shrinks a tile below ``MIN_AUTO_TILE``, and an
    explicit ``tile`` is kept as given with the batch lowered to fit.

    Any scale tiles on a session opened with ``overscale=True`` (or a graph exported with
    ``--overscale``): tiles run to the model's overscaled features and each finishes its
    window of the output on the host (``overnet.runtime.overscale``); the features and
    that work are counted in ``max_memory``. A session whose graph ends at a fractional
    scale runs whole images only.
    """

    def __init__(
        self,
        session: Session,
        *,
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        max_memory: str | int = DEFAULT_MAX_MEMORY,
        batch: int | None = None,
    ) -> None:
        self.session = session
        self.tile = tile
        self.overlap = overlap
        try:
            self.max_memory = parse_memory(max_memory)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if tile is not None and tile < 0:
            raise InputError(
                f"tile must be a number of input pixels (0: the whole image), got {tile}"
            )
        if overlap < 0:
            raise InputError(f"overlap must be >= 0, got {overlap}")
        if batch is not None and batch < 1:
            raise InputError(f"batch must be at least 1, got {batch}")
        self.batch = batch or (4 if session.info.on_gpu else 1)
        if session.info.max_batch is not None:
            self.batch = min(self.batch, session.info.max_batch)
        variant = session.info.backend
        self.bytes_per_pixel = bytes_per_input_pixel(variant, session.info.upscale)
        #: set for sessions that end at the overscaled features (OverscaleSession)
        self.head = getattr(session, "head", None)
        if self.head is not None:
            self.bytes_per_pixel += head_bytes_per_input_pixel(self.head, session.info.scale)

    # -- planning --------------------------------------------------------------------
    @property
    def min_tile(self) -> int:
        """The smallest tile side this upscaler can blend: an overscale session's tiles
        must overlap by MIN_OVERLAP and keep pixels of their own."""
        return 2 * (MIN_OVERLAP + 1) if self.head is not None else 1

    def check_tile(self) -> None:
        """Refuse an explicit tile below ``min_tile`` before any image is read (a usage
        error: the same for every image of a run)."""
        if self.tile and self.tile < self.min_tile:
            raise InputError(
                f"--tile {self.tile} is below the smallest tile x{self.session.info.scale:g} "
                f"can blend: overscale tiles overlap by at least {MIN_OVERLAP} pixels and need "
                f"pixels of their own; give --tile {self.min_tile} or more (or no --tile)"
            )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the result for a ``height`` x ``width`` input."""
        return output_size(height, width, self.session.info.scale)

    def plan(self, height: int, width: int) -> TilePlan:
        """Tile layout for an input of ``height`` x ``width`` pixels.

        Depends only on the image size, the model and ``tile``/``overlap``/``max_memory``
        (not on ``batch``, nor on who calls it): every path that upscales an image with
        the same options runs the same tiles and so gives the same pixels (OverNet pools
        globally, so the tile plan changes the output). The network gets what the image's
        host buffers leave of ``max_memory``; an image whose buffers and smallest tile do
        not fit is refused with the estimate.
        """
        self.check_tile()
        info = self.session.info
        max_h, max_w = info.max_hw or (height, width)
        whole = (Tile(0, height, 0, width),)
        host = host_bytes(height, width, *self.output_size(height, width))
        if self.tile == 0:
            if height > max_h or width > max_w:
                raise InputError(
                    f"tile 0 runs whole images, but {height}x{width} is outside the "
                    f"{info.backend} profile (max {max_h}x{max_w}); let the tile follow "
                    "--max-memory (no --tile) or give a tile size"
                )
            network = height * width * self.bytes_per_pixel * self.batch
            return TilePlan(height, width, height, width, 0, self.batch, whole, network, host)
        budget_pixels = max(0, self.max_memory - host) // self.bytes_per_pixel
        fits = height * width <= budget_pixels and height <= max_h and width <= max_w
        if self.tile is None and fits:
            batch = self._batch_within(budget_pixels, height * width)
            network = batch * height * width * self.bytes_per_pixel
            return TilePlan(height, width, height, width, 0, batch, whole, network, host)
        # the largest tile the budget holds on its own: the batch never changes the tiles
        side = self.tile if self.tile is not None else max(MIN_AUTO_TILE, math.isqrt(budget_pixels))
        tile_h, tile_w = min(side, height, max_h), min(side, width, max_w)
        if self.tile is None:  # an explicit --tile is used as given
            tile_h = _balanced_side(height, tile_h, self.overlap)
            tile_w = _balanced_side(width, tile_w, self.overlap)
            if tile_h * tile_w > budget_pixels:
                self._refuse(height, width, tile_h * tile_w * self.bytes_per_pixel, host)
        # Overlap must leave each tile some pixels of its own, on the axes that are tiled
        # (a thin untiled side must not shrink the overlap of the long one).
        tiled_sides = [t for t, n in ((tile_h, height), (tile_w, width)) if t < n]
        wanted = self.overlap if self.head is None else max(self.overlap, MIN_OVERLAP)
        overlap = min([wanted] + [max(0, t // 2 - 1) for t in tiled_sides])
        if not tiled_sides:
            overlap = 0
        if self.head is None and not float(info.scale).is_integer() and tiled_sides:
            raise InputError(
                f"this {height}x{width} image needs tiling (budget {self.max_memory / 1e9:.2g} GB"
                f"), and this {info.backend} graph ends at x{info.scale:g}, which tiles do not "
                "line up on; open the model with overscale=True (a checkpoint does this for "
                "fractional scales; export files with `overnet export --overscale`) or raise "
                "--max-memory"
            )
        tiles = plan_tiles(height, width, (tile_h, tile_w), overlap)
        batch = min(self._batch_within(budget_pixels, tile_h * tile_w), len(tiles))
        network = batch * tile_h * tile_w * self.bytes_per_pixel
        return TilePlan(height, width, tile_h, tile_w, overlap, batch, tuple(tiles), network, host)

    def _refuse(self, height: int, width: int, tile_bytes: int, host: int) -> None:
        out_h, out_w = self.output_size(height, width)
        need = tile_bytes + host
        # a smaller tile helps only when the buffers alone fit
        advice = (
            "raise --max-memory or downscale the input"
            if host >= self.max_memory
            else f"raise --max-memory (tiles smaller than {MIN_AUTO_TILE} lose quality) or "
            "give --tile"
        )
        raise MemoryLimitError(
            f"{width}x{height} -> {out_w}x{out_h} needs about {need / 1e6:.0f} MB "
            f"({host / 1e6:.0f} MB for the image's buffers, {tile_bytes / 1e6:.0f} MB for "
            f"the smallest {MIN_AUTO_TILE}-pixel tile with {self.session.info.backend}), "
            f"above --max-memory {self.max_memory / 1e6:.0f} MB; {advice}",
            need,
            self.max_memory,
        )

    def _batch_within(self, budget_pixels: int, pixels: int) -> int:
        """Most inputs of ``pixels`` each (up to ``batch``) one run may hold within the
        budget; at least 1 (an explicit tile above the budget still runs, alone)."""
        return max(1, min(self.batch, budget_pixels // max(1, pixels)))

    # -- arrays ----------------------------------------------------------------------
    def upscale_array(self, batch: np.ndarray, plan: TilePlan | None = None) -> np.ndarray:
        """Nx3xHxW float32 [0, 1] -> Nx3xH'xW' float32 (not clipped), tiled as planned."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise InputError(f"expected an Nx3xHxW batch, got shape {batch.shape}")
        n, _, h, w = batch.shape
        plan = plan or self.plan(h, w)
        if self.head is not None and plan.tiled:
            return np.stack([self._run_overscaled(batch[i], plan) for i in range(n)])
        if self.head is not None:  # whole images, batched: features, then each finished
            step, u = plan.batch, self.head.upscale
            run = self.session.run_features_borrowed  # type: ignore[attr-defined]
            return np.concatenate(
                [
                    finish_whole(
                        self._run_padded(batch[i : i + step], run, u),
                        batch[i : i + step],
                        self.head,
                        self.session.info.scale,
                    )
                    for i in range(0, n, step)
                ]
            )
        if not plan.tiled:  # whole images, as many per run as the plan's budget allows
            step = plan.batch
            return np.concatenate(
                [self._run_padded(batch[i : i + step]) for i in range(0, n, step)]
            )
        outputs = [self._run_tiled(batch[i], plan) for i in range(n)]
        return np.stack(outputs)

    def _run_tiled(self, image: np.ndarray, plan: TilePlan) -> np.ndarray:
        scale = int(self.session.info.scale)
        blender = TileBlender(3, plan.height, plan.width, scale, plan.overlap)
        for group in batches(list(plan.tiles), plan.batch):
            stack = np.stack([image[:, t.y0 : t.y1, t.x0 : t.x1] for t in group])
            result = self._run_padded(stack)
            for tile, out in zip(group, result, strict=True):
                blender.add(tile, out)
        return blender.result()

    def _run_overscaled(self, image: np.ndarray, plan: TilePlan) -> np.ndarray:
        assert self.head is not None
        features = self.session.run_features_borrowed  # type: ignore[attr-defined]
        return run_overscaled(
            image,
            list(plan.tiles),
            plan.batch,
            lambda stack: self._run_padded(stack, features, self.head.upscale),
            self.head,
            self.session.info.scale,
        )

    def _run_padded(
        self,
        batch: np.ndarray,
        run: Callable[[np.ndarray], np.ndarray] | None = None,
        factor: float | None = None,
    ) -> np.ndarray:
        """Run (``session.run``, or ``run`` giving outputs ``factor`` times larger),
        padding inputs below the model's minimum size (TensorRT profiles, fixed-tile
        files) with their mirror image."""
        run = run or self.session.run
        _, _, h, w = batch.shape
        min_h, min_w = self.session.info.min_hw
        pad_h, pad_w = max(0, min_h - h), max(0, min_w - w)
        if not (pad_h or pad_w):
            return run(batch)
        scale = self.session.info.scale if factor is None else factor
        if not float(scale).is_integer():
            raise InputError(
                f"{h}x{w} is below the model minimum {min_h}x{min_w}; padding needs an "
                f"integer scale, got x{scale:g} (overscale=True pads at the model's upscale)"
            )
        # Mirrored, not edge-repeated: OverNet pools globally, and a mirror keeps the padded
        # tile's statistics close to the image's
        padded = np.pad(batch, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="symmetric")
        s = int(scale)
        return run(padded)[:, :, : h * s, : w * s]

    # -- images ----------------------------------------------------------------------
    def upscale(self, image: Any) -> Any:
        """Upscale one image: numpy HxW[xC] uint8/uint16/float [0, 1] or a PIL image.

        Returns the same kind, mode and bit depth; alpha is upscaled separately (bicubic).
        """
        from PIL import Image

        from overnet.imaging.modes import (
            merge_array_in_strips,
            pil_from_array,
            split_array,
            split_pil,
        )

        is_pil = isinstance(image, Image.Image)
        split = split_pil(image) if is_pil else split_array(image)
        # Each buffer is dropped as soon as the next step has what it needs: these host
        # buffers are counted in max_memory (runtime.memory.host_bytes).
        nchw = np.ascontiguousarray(split.rgb.transpose(2, 0, 1)[None])
        alpha_in = None if split.alpha is None else np.ascontiguousarray(split.alpha)
        split.rgb = split.alpha = None  # type: ignore[assignment]
        out = self.upscale_array(nchw)[0]
        del nchw
        rgb = out.transpose(1, 2, 0)
        alpha = None
        if alpha_in is not None:
            alpha = _resize_plane(alpha_in, rgb.shape[0], rgb.shape[1])
            del alpha_in
        merged = merge_array_in_strips(split, rgb, alpha)
        del out, rgb, alpha
        return pil_from_array(split, merged) if is_pil else merged

    def upscale_with(self, image: Any, run: Callable[[np.ndarray], np.ndarray]) -> Any:
        """``upscale``, with every group of equal-shape tiles (an Nx3xhxw float32 batch,
        already padded to the model's minimum size) run by ``run`` instead of
        ``session.run``. Planning, padding, blending, modes and alpha are ``upscale``'s
        own, so the result is the same whenever ``run`` returns what ``session.run``
        would: ``overnet.serve`` passes a batcher that runs tiles of concurrent requests
        together. Safe to call from several threads at once."""
        view = copy.copy(self)
        view.session = _RunThrough(self.session, run)  # type: ignore[assignment]
        return view.upscale(image)


class _RunThrough:
    """A session's ``info`` with another ``run`` (what ``Upscaler.upscale_with`` uses).

    On an overscale session the tiles ``run`` gets are the ones ``run_features`` would
    get: ``run`` then returns features, as ``session.run_features`` would."""

    def __init__(self, session: Session, run: Callable[[np.ndarray], np.ndarray]) -> None:
        self.info = session.info
        self.run = run
        self.run_features = self.run_features_borrowed = run


def _balanced_side(length: int, max_side: int, overlap: int) -> int:
    """The smallest tile side that covers ``length`` with as many tiles as ``max_side``
    needs: a 640-pixel row with 308-pixel tiles takes three tiles of 224 instead of three
    of 308 (44% more pixels computed than the row holds). Never below MIN_AUTO_TILE."""
    if length <= max_side or max_side <= overlap:
        return max_side
    count = math.ceil((length - overlap) / (max_side - overlap))
    side = math.ceil((length + (count - 1) * overlap) / count)
    return min(max_side, max(side, MIN_AUTO_TILE))


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of an HxW float32 plane (alpha) to height x width, clipped to [0, 1]."""
    from PIL import Image

    resized = Image.fromarray(plane.astype(np.float32, copy=False), "F").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    plane = np.array(resized)  # a writable copy; the PIL image goes with this scope
    del resized
    return np.clip(plane, 0.0, 1.0, out=plane)
