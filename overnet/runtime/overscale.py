"""Any scale at any size: run a graph that ends at the overscaled features, finish on the host.

OverNet resizes its F-channel overscaled features (x upscale) to the target size, then
applies ``exit1`` (3x3 conv) and adds the resized input. A graph cut before that resize
tiles like any integer-scale model; this module computes any window of the finished
output from a window of the features, with the resize's global coordinates
(``overnet.imaging.bicubic``), so tiles finish independently and match the whole-image
network up to the usual tiling error. numpy only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from overnet.config import check_scale, output_size
from overnet.errors import InputError, ModelLoadError
from overnet.formats.ir_metadata import read_ir_metadata
from overnet.formats.onnx_metadata import read_onnx_metadata
from overnet.formats.overscale_head import OverscaleHead, head_of
from overnet.imaging.bicubic import needed_range, resize_window
from overnet.imaging.tiling import Tile, batches, ramp
from overnet.runtime.base import Session, as_numpy
from overnet.runtime.model_source import ModelSource

#: input pixels past its own outputs that a window of the finished output reads (bicubic
#: taps, exit1's 3x3, at any scale in [1, upscale]: at most 2.25); kept inside each tile
READ_MARGIN = 3
#: the least overlap of overscale tiles: both neighbours' margins, and pixels to blend over
MIN_OVERLAP = 2 * READ_MARGIN + 2
#: output rows finished at a time
STRIP_ROWS = 32


def head_bytes_per_input_pixel(head: OverscaleHead, scale: float) -> int:
    """Host memory per input pixel for finishing one tile: the features as returned
    (float32) and the backend's own output buffer, and the 3-channel output window with
    its blend weight. The finishing itself works in strips of STRIP_ROWS output rows,
    whose intermediates grow with the tile's width, not its area."""
    f, u = head.channels, head.upscale
    floats = 2 * f * u * u + 4 * scale * scale
    return int(4 * floats) + 1


def _conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """exit1 on F x (h+2) x (w+2) features (padding included): one matmul of all nine
    taps' weights with the features, then the nine shifted 3-channel sums."""
    f, hp, wp = x.shape
    h, w = hp - 2, wp - 2
    taps = weight.transpose(2, 3, 0, 1).reshape(27, f)  # (ky, kx, out) x F
    proj = (taps @ x.reshape(f, -1)).reshape(3, 3, 3, hp, wp)
    out = np.empty((3, h, w), np.float32)
    out[:] = bias[:, None, None]
    for ky in range(3):
        for kx in range(3):
            out += proj[ky, kx, :, ky : ky + h, kx : kx + w]
    return out


def finish_window(
    features: np.ndarray,
    origin: tuple[int, int],
    image: np.ndarray,
    head: OverscaleHead,
    scale: float,
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> np.ndarray:
    """Rows [y0, y1) x cols [x0, x1) of the model's output at ``scale``: 3 x h x w float32
    (not clipped).

    ``image``: the whole input, 3 x H x W float32 [0, 1]; ``features``: F x h' x w'
    overscaled features of a part of it whose top-left input pixel is ``origin`` (row,
    col). ValueError when they lack a pixel the window reads.
    """
    # In strips of output rows: the F-channel intermediates of a strip stay small (a
    # whole 1080p output would need three 0.5 GB temporaries), at 2 halo rows per strip.
    y0, y1 = rows
    strips = [(y, min(y + STRIP_ROWS, y1)) for y in range(y0, y1, STRIP_ROWS)]
    parts = [_finish_strip(features, origin, image, head, scale, s, cols) for s in strips]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _finish_strip(features, origin, image, head, scale, rows, cols) -> np.ndarray:
    _, height, width = image.shape
    u = head.upscale
    out_h, out_w = output_size(height, width, scale)
    feat_size = (height * u, width * u)
    (y0, y1), (x0, x1) = rows, cols
    # exit1 reads one resized row/col more on each side: zeros past the image's border
    ry, rx = (max(y0 - 1, 0), min(y1 + 1, out_h)), (max(x0 - 1, 0), min(x1 + 1, out_w))
    resized = resize_window(
        features, feat_size, (out_h, out_w), (origin[0] * u, origin[1] * u), ry, rx
    )
    pad = ((0, 0), (ry[0] - y0 + 1, y1 + 1 - ry[1]), (rx[0] - x0 + 1, x1 + 1 - rx[1]))
    out = _conv3x3(np.pad(resized, pad), head.weight, head.bias)
    (ly0, ly1), (lx0, lx1) = needed_range(height, out_h, y0, y1), needed_range(width, out_w, x0, x1)
    centered = image[:, ly0:ly1, lx0:lx1] + head.input_shift[:, None, None]
    out += resize_window(centered, (height, width), (out_h, out_w), (ly0, lx0), rows, cols)
    out += head.output_shift[:, None, None]
    return out


def finish_whole(
    features: np.ndarray, images: np.ndarray, head: OverscaleHead, scale: float
) -> np.ndarray:
    """N x 3 x H' x W' at ``scale`` from whole images (N x 3 x H x W) and their features."""
    out_h, out_w = output_size(images.shape[2], images.shape[3], scale)
    return np.stack(
        [
            finish_window(f, (0, 0), image, head, scale, (0, out_h), (0, out_w))
            for f, image in zip(features, images, strict=True)
        ]
    )


def owned_outputs(
    length: int, out_length: int, spans: list[tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Per input span [a, b) of one axis: (first, end, blend before, blend after) of the
    output indices its tile finishes. A span finishes the outputs whose reads stay
    ``READ_MARGIN`` inside its inner edges; neighbours' ranges overlap and are
    cross-faded over the shared indices."""
    ranges = []
    for a, b in spans:
        first = 0 if a == 0 else -(-(a + READ_MARGIN) * out_length // length)
        end = out_length if b == length else (b - READ_MARGIN) * out_length // length
        ranges.append((first, end))
    owned = {}
    for i, (span, (first, end)) in enumerate(zip(spans, ranges, strict=True)):
        before = ranges[i - 1][1] - first if i else 0
        after = end - ranges[i + 1][0] if i + 1 < len(ranges) else 0
        if before < 0 or after < 0 or end <= first:
            raise ValueError(f"tiles {spans} leave outputs unfinished; overlap >= {MIN_OVERLAP}")
        owned[span] = (first, end, before, after)
    return owned


def run_overscaled(
    image: np.ndarray,
    tiles: list[Tile],
    batch: int,
    run_features: Callable[[np.ndarray], np.ndarray],
    head: OverscaleHead,
    scale: float,
) -> np.ndarray:
    """3 x H x W float32 [0, 1] -> 3 x H' x W' (``output_size``) at ``scale``, tile by
    tile: ``run_features`` maps an N x 3 x h x w batch to its N x F x uh x uw features."""
    _, height, width = image.shape
    out_h, out_w = output_size(height, width, scale)
    rows = owned_outputs(height, out_h, sorted({(t.y0, t.y1) for t in tiles}))
    cols = owned_outputs(width, out_w, sorted({(t.x0, t.x1) for t in tiles}))
    if len(tiles) == 1:  # the whole image: nothing to blend
        features = run_features(image[None])[0]
        return finish_window(features, (0, 0), image, head, scale, (0, out_h), (0, out_w))
    total = np.zeros((3, out_h, out_w), np.float32)
    weight = np.zeros((out_h, out_w), np.float32)
    for group in batches(tiles, batch):
        stack = np.stack([image[:, t.y0 : t.y1, t.x0 : t.x1] for t in group])
        for tile, features in zip(group, run_features(stack), strict=True):
            y0, y1, y_before, y_after = rows[(tile.y0, tile.y1)]
            x0, x1, x_before, x_after = cols[(tile.x0, tile.x1)]
            out = finish_window(
                features, (tile.y0, tile.x0), image, head, scale, (y0, y1), (x0, x1)
            )
            w = ramp(y1 - y0, y_before, y_after)[:, None] * ramp(x1 - x0, x_before, x_after)
            total[:, y0:y1, x0:x1] += out * w
            weight[y0:y1, x0:x1] += w
    total /= weight
    return total


def overscale_head_of(source: ModelSource) -> OverscaleHead | None:
    """The head a model file records (ONNX metadata, IR rt_info, engine sidecar): None for
    checkpoints, modules and graphs that end in RGB."""
    if source.path is None or source.kind not in ("onnx", "ir", "engine"):
        return None
    try:
        if source.kind == "engine":
            from overnet.formats.sidecar import read_sidecar, sidecar_path

            text = read_sidecar(source.path).head
            return OverscaleHead.from_text(text, str(sidecar_path(source.path))) if text else None
        if source.kind == "ir":
            metadata = read_ir_metadata(source.path)
        else:
            metadata = read_onnx_metadata(source.path)
    except (ModelLoadError, InputError):
        return None  # not readable: the backend that opens it says why, in its terms
    return head_of(metadata, str(source.path))


class OverscaleSession(Session):
    """A session on a graph that ends at the overscaled features, finished to ``scale``.

    ``run`` keeps the Session contract (N x 3 x H x W -> N x 3 x H' x W' at ``scale``,
    whole images); ``run_features`` returns the graph's own output, N x F x uH x uW,
    which ``Upscaler`` tiles. ``info`` is the inner session's, with the target scale.
    """

    def __init__(self, inner: Session, head: OverscaleHead, scale: float | None = None) -> None:
        self.inner = inner
        self.head = head
        target = check_scale(head.scale if scale is None else scale, head.upscale)
        note = (
            f"overscale: the graph ends at x{head.upscale} features; resize and exit1 run "
            f"on the host (numpy) to x{target:g}"
        )
        self.info = dataclasses.replace(
            inner.info,
            scale=target,
            upscale=head.upscale,
            notes=[*inner.info.notes, note],
            overscale=True,
        )

    def run_features(self, batch: Any) -> np.ndarray:
        """N x 3 x h x w float32 [0, 1] -> N x F x uh x uw float32 (the graph's output)."""
        return self.inner.run(batch)

    def run_features_borrowed(self, batch: Any) -> np.ndarray:
        """``run_features`` without the copy where the backend can lend its output buffer
        (valid until the next call): what Upscaler uses, finishing each batch at once."""
        return self.inner.run_borrowed(batch)

    def _run(self, batch: Any) -> np.ndarray:
        features = self.run_features_borrowed(batch)
        return finish_whole(features, as_numpy(batch), self.head, self.info.scale)

    def release_memory(self) -> None:
        self.inner.release_memory()

    def close(self) -> None:
        self.inner.close()
        super().close()
