"""One video through a session: decode -> batch -> infer -> encode -> mux, concurrently.

Three threads share the work: a decoder (demux, decode, RGB conversion), the caller's
thread (inference: the Upscaler, batching whole frames as --max-memory allows), and an
encoder (YUV conversion, encode, mux). Bounded queues join them, so the decoder stays a
few frames ahead and the encoder a few frames behind: the model sets the pace and
memory does not grow with the video's length. The output is written to a temp file
beside the target and renamed only once complete; an error or Ctrl-C removes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overnet._atomic import atomic_target
from overnet._optional import require
from overnet.errors import InputError, MemoryLimitError, OverNetError
from overnet.runtime.upscaler import Upscaler
from overnet.video.decode import Decoder, Trim
from overnet.video.encode import (
    EncodeOptions,
    EncodePlan,
    container_takes,
    muxer_for,
    plan_encoding,
)
from overnet.video.ffmpeg_log import ffmpeg_reasons
from overnet.video.frames import frames_per_run, upscale_batch
from overnet.video.mux import Encoder, carried_streams, layout_output
from overnet.video.probe import VideoFacts, facts_of, open_input
from overnet.video.report import VideoResult
from overnet.video.stages import Link, Stopped

#: items a queue holds beyond two batches (packets of copied streams share the queues)
QUEUE_SLACK = 8
#: a file whose first this many packets of other streams come with no video frame is
#: refused rather than held in memory
MAX_WAITING_PACKETS = 20_000


@dataclass
class _Stages:
    decoder: Decoder
    encoder: Encoder
    decoded: Link
    encoded: Link
    stop: threading.Event


def upscale_video(
    source: str | Path,
    target: str | Path,
    upscaler: Upscaler,
    options: EncodeOptions | None = None,
    *,
    trim: Trim | None = None,
    strict: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> VideoResult:
    """Upscale the video ``source`` into ``target`` (container from its extension).

    Raises InputError for a file that cannot be upscaled (see README "Video"); nothing is
    left under ``target`` then. ``on_frame(n)`` is called after each n frames upscaled.
    """
    av = require("av", "video files", "video")
    with ffmpeg_reasons(av):
        return _upscale_video(av, source, target, upscaler, options, trim, strict, on_frame)


def _upscale_video(av, source, target, upscaler, options, trim, strict, on_frame) -> VideoResult:
    source, target = Path(source), Path(target)
    options, trim = options or EncodeOptions(), trim or Trim()
    begin = time.perf_counter()
    muxer = muxer_for(target)
    container = open_input(source)
    try:
        facts = facts_of(container, source)
        plan = plan_encoding(options, facts.pix_fmt, facts.bits)
        if not container_takes(target.suffix.lower(), plan.codec):
            raise InputError(f"{target.suffix} files cannot hold {plan.codec}")
        copy, notes = carried_streams(container, facts, muxer)
        result = VideoResult(source, target, "done", source=facts.describe())
        with atomic_target(target) as tmp:
            with av.open(str(tmp), "w", format=muxer) as output:
                stages = _build(container, output, facts, plan, copy, trim, strict)
                try:
                    _run(stages, upscaler, plan, on_frame)
                except av.error.FFmpegError as exc:  # the file or the encoder, not a bug
                    raise OverNetError(f"{source}: FFmpeg failed: {exc}") from exc
            _finish(result, stages, facts, trim, strict)
            result.bytes = tmp.stat().st_size
    finally:
        container.close()
    result.encoding = plan.describe()
    result.notes = [*plan.notes, *notes, *stages.encoder.notes, *result.notes]
    result.seconds = time.perf_counter() - begin
    return result


def _build(container, output, facts, plan, copy, trim, strict) -> _Stages:
    stop = threading.Event()
    video, copies = layout_output(output, container, facts, plan, copy, trim.start)
    decoded = Link(QUEUE_SLACK, stop)
    encoded = Link(QUEUE_SLACK, stop)
    decoder = Decoder(container, facts, decoded, stop, copy=copy, trim=trim, strict=strict)
    encoder = Encoder(output, video, copies, plan, encoded, stop)
    return _Stages(decoder, encoder, decoded, encoded, stop)


def _run(stages: _Stages, upscaler: Upscaler, plan: EncodePlan, on_frame) -> None:
    stages.decoder.start()
    stages.encoder.start()
    try:
        _infer(stages, upscaler, plan, on_frame)
        while stages.encoder.is_alive():
            stages.encoder.join(0.1)
            stages.encoder.raise_error()
        stages.encoder.raise_error()
    except Stopped:  # a stage failed and stopped the others: its error is the story
        stages.decoder.raise_error()
        stages.encoder.raise_error()
        raise
    finally:
        stages.stop.set()
        stages.decoder.join()
        stages.encoder.join()


def _infer(stages: _Stages, upscaler: Upscaler, plan: EncodePlan, on_frame) -> None:
    """The caller's thread: group decoded frames, upscale them, hand them on in order."""
    dtype = np.dtype(np.uint16 if plan.deep else np.uint8)
    pending, per_run, waiting = [], 0, 0
    while True:
        kind, item = stages.decoded.get(alive=stages.decoder)
        if kind == "packet":
            stages.encoded.put("packet", item)
            waiting += per_run == 0
            if waiting > MAX_WAITING_PACKETS:
                raise InputError(
                    f"no video frame decoded in the first {waiting} packets of other streams"
                )
            continue
        if kind == "frame":
            if per_run == 0:
                stages.encoded.put("open", stages.decoder.first)
                per_run = frames_per_run(upscaler, *item.pixels.shape[:2])
                _resize_links(stages, queued_frames(upscaler, item.pixels.shape, per_run, dtype))
            pending.append(item)
            if len(pending) < per_run:
                continue
        if pending:
            outputs = upscale_batch(upscaler, [d.pixels for d in pending], dtype)
            for decoded, pixels in zip(pending, outputs, strict=True):
                stages.encoded.put("frame", (pixels, decoded.pts, decoded.time_base))
            if on_frame is not None:
                on_frame(len(pending))
            pending = []
        if kind == "end":
            break
    stages.encoded.put("end")


def queued_frames(upscaler: Upscaler, shape: tuple, per_run: int, dtype: np.dtype) -> int:
    """Items each queue may hold: two batches and some packets, but no more upscaled
    frames than ``--max-memory`` has room for beside the frames being upscaled (a
    1080p x4 10-bit frame is 0.2 GB: ten queued ones would be 2 GB outside the budget)."""
    height, width = shape[:2]
    plan = upscaler.plan(height, width)
    out_h, out_w = upscaler.output_size(height, width)
    working = plan.network_bytes + plan.host_bytes * (1 if plan.tiled else per_run)
    if working > upscaler.max_memory and upscaler.tile != 0:  # --tile N is not planned
        raise MemoryLimitError(
            f"{width}x{height} frames need about {working / 1e6:.0f} MB each run, above "
            f"--max-memory {upscaler.max_memory / 1e6:.0f} MB; raise --max-memory or give "
            "a smaller --tile",
            working,
            upscaler.max_memory,
        )
    frame = (out_h * out_w + height * width) * 3 * np.dtype(dtype).itemsize
    room = max(0, upscaler.max_memory - working) // frame
    return int(max(2, min(2 * per_run + QUEUE_SLACK, room)))


def _resize_links(stages: _Stages, size: int) -> None:
    """A Queue's bound may grow or shrink live."""
    for link in (stages.decoded, stages.encoded):
        with link.queue.mutex:
            link.queue.maxsize = size


def _finish(result: VideoResult, stages: _Stages, facts: VideoFacts, trim: Trim, strict) -> None:
    """Counts into ``result``; InputError when nothing was decoded, or for a file that
    ends early under --strict."""
    decoder, encoder = stages.decoder, stages.encoder
    result.frames_in, result.frames_out = decoder.frames_in, encoder.frames_out
    result.damaged, result.dropped = decoder.damaged, decoder.dropped
    result.size = encoder.size
    if decoder.frames_in == 0:
        where = f" after --start {trim.start:g} s" if trim.start else ""
        raise InputError(
            f"{facts.path}: no video frame could be decoded{where} "
            f"({decoder.damaged} damaged packets); the file is empty, truncated or damaged"
        )
    result.missing = _missing(decoder, facts) if trim == Trim() else 0
    if result.missing:
        result.notes.append(
            f"the file ends early: {result.missing} frames that its header announces are "
            "missing (truncated?)"
        )
        if strict:
            raise InputError(f"{facts.path}: {result.notes[-1]} (--strict)")
    if decoder.dropped:
        result.notes.append(f"{decoder.dropped} frames with repeated timestamps left out")


def _missing(decoder: Decoder, facts: VideoFacts) -> int:
    """Frames the header announces (frame count, else duration) that were not decoded."""
    if facts.frames:
        return max(0, facts.frames - decoder.frames_in - decoder.damaged)
    if facts.duration and facts.rate and decoder.last_seconds is not None:
        frame = float(1 / facts.rate)
        gap = facts.duration - decoder.last_seconds - frame
        # The file's duration covers its longest stream: an audio tail under a second
        # past the video is no sign of truncation. The video's own is exact to a frame.
        if gap > (1.5 * frame if facts.stream_duration else max(1.0, 1.5 * frame)):
            return round(gap * facts.rate)
    return 0
