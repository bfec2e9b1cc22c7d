"""The output file: streams laid out like the input's, and the encoding + muxing stage.

Every stream keeps its place. The video stream is re-encoded with the input's time base,
frame timestamps, colour tags and display matrix; audio, subtitle, data and attachment
streams are copied packet for packet (no re-encoding) when the output container can
hold them, else left out with a note. Container and stream metadata (title, language,
...) and chapters are copied; tags that describe the old encoding (encoder, duration,
statistics) are not.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError
from overnet.video.decode import FirstFrame
from overnet.video.encode import EncodePlan
from overnet.video.probe import VideoFacts, stream_label
from overnet.video.stages import Link, Stage

if TYPE_CHECKING:
    import threading

    from av.container import InputContainer, OutputContainer

#: metadata keys (lower case) that describe the old file's encoding, not its content
_STALE_KEYS = {
    "encoder",
    "duration",
    "bps",
    "number_of_frames",
    "number_of_bytes",
    "major_brand",
    "minor_version",
    "compatible_brands",
}


def content_metadata(tags: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in tags.items()
        if k.lower() not in _STALE_KEYS and not k.lower().startswith("_statistics")
    }


def carried_streams(source: InputContainer, facts: VideoFacts, muxer: str):
    """(indices of the streams to copy, notes on those the ``muxer`` cannot hold)."""
    av = require("av", "video files", "video")
    copy, notes = [], []
    for stream in source.streams:
        if stream.index == facts.index:
            continue
        try:  # the muxer's own verdict: write a header with this stream alone
            with av.open(io.BytesIO(), "w", format=muxer) as trial:
                trial.add_stream_from_template(stream)
                trial.start_encoding()
            copy.append(stream.index)
        except (ValueError, TypeError, NotImplementedError, av.error.FFmpegError) as exc:
            notes.append(f"{stream_label(stream)} left out: a {muxer} file cannot hold it ({exc})")
    return copy, notes


def layout_output(
    output: OutputContainer,
    source: InputContainer,
    facts: VideoFacts,
    plan: EncodePlan,
    copy: list[int],
    shift_s: float = 0.0,
) -> tuple[Any, dict[int, Any]]:
    """Add the output's streams in the input's order: (video stream, {index: copy})."""
    video, copies = None, {}
    for stream in source.streams:
        if stream.index == facts.index:
            video = output.add_stream(plan.codec, rate=facts.rate or 25, options=plan.options)
            video.pix_fmt = plan.pix_fmt
            video.codec_context.thread_count = plan.threads  # never "auto": see EncodePlan
            # frame and slice threads, as the ffmpeg command line allows (PyAV's default
            # is slices only: libx264 then runs sliced threads, which compress worse)
            video.codec_context.thread_type = "AUTO"
            video.time_base = facts.time_base
            video.codec_context.time_base = facts.time_base
            video.metadata.update(content_metadata(stream.metadata))
        elif stream.index in copy:
            copies[stream.index] = out = output.add_stream_from_template(stream)
            out.metadata.update(content_metadata(stream.metadata))
            out.disposition = stream.disposition
    output.metadata.update(content_metadata(source.metadata))
    output.set_chapters(_shifted_chapters(source.chapters(), shift_s))
    return video, copies


def _shifted_chapters(chapters: list[Any], shift_s: float) -> list[Any]:
    if not shift_s:
        return chapters
    kept = []
    for chapter in chapters:
        shift = round(shift_s / chapter["time_base"])
        if chapter["end"] - shift > 0:
            kept.append(
                {
                    **chapter,
                    "start": max(0, chapter["start"] - shift),
                    "end": chapter["end"] - shift,
                }
            )
    return kept


def encodable_size(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    """The largest size ``pix_fmt`` can hold within width x height: chroma-subsampled
    formats (yuv420p, ...) need even sides."""
    av = require("av", "video files", "video")
    fmt = av.video.format.VideoFormat(pix_fmt)
    if fmt.chroma_width(2) == 1:
        width -= width % 2
    if fmt.chroma_height(2) == 1:
        height -= height % 2
    return width, height


class Encoder(Stage):
    """Takes ("open", FirstFrame), ("frame", (pixels, pts, time_base)), ("packet", Packet)
    and ("end", None) from ``link``; encodes and muxes into ``output``."""

    def __init__(
        self,
        output: OutputContainer,
        video: Any,
        copies: dict[int, Any],
        plan: EncodePlan,
        link: Link,
        stop: threading.Event,
    ) -> None:
        super().__init__("overnet-encode", stop)
        self.output = output
        self.video = video
        self.copies = copies
        self.plan = plan
        self.link = link
        self.first: FirstFrame | None = None
        self.size: tuple[int, int] | None = None  # (width, height) written
        self.frames_out = 0
        self.notes: list[str] = []
        self._waiting: list[Any] = []  # packets that came before the header was written
        self._last_dts: int | None = None  # of the video packets muxed so far
        self.repaired = 0  # video packets whose encoder timestamps were repaired

    def work(self) -> None:
        while True:
            kind, item = self.link.get()
            if kind == "open":
                self.first = item
            elif kind == "frame":
                self._encode(*item)
            elif kind == "packet":
                self._mux(item)
            elif kind == "end":
                break
        if self.size is not None:
            self._mux_video(self.video.encode(None))
        if self.repaired:
            self.notes.append(
                f"{self.repaired} encoded packet(s) came with an invalid dts from "
                f"{self.plan.codec}; repaired as the ffmpeg command line does"
            )

    def _start(self, width: int, height: int) -> None:
        av = require("av", "video files", "video")
        self.size = encodable_size(self.plan.pix_fmt, width, height)
        if self.size != (width, height):
            self.notes.append(
                f"{self.plan.pix_fmt} needs even sides: {width}x{height} cropped to "
                f"{self.size[0]}x{self.size[1]}"
            )
        ctx = self.video.codec_context
        ctx.width, ctx.height = self.size
        if self.first is not None:
            colour = self.first.colour
            ctx.color_primaries, ctx.color_trc = colour.primaries, colour.trc
            ctx.colorspace, ctx.color_range = colour.space, colour.range
            if self.first.display_matrix:
                self.video.set_display_matrix(self.first.display_matrix)
        try:
            self.output.start_encoding()
        except (av.error.FFmpegError, ValueError) as exc:
            hardware = any(h in self.plan.codec for h in ("nvenc", "qsv", "amf", "vaapi"))
            hint = "; a hardware encoder needs its GPU and driver" if hardware else ""
            raise InputError(
                f"could not start the {self.plan.describe()} encoder at "
                f"{self.size[0]}x{self.size[1]}: {exc}{hint}"
            ) from exc
        for packet in self._waiting:
            self._mux(packet)
        self._waiting = []

    def _encode(self, pixels: np.ndarray, pts: int, time_base: Any) -> None:
        av = require("av", "video files", "video")
        if self.size is None:
            self._start(pixels.shape[1], pixels.shape[0])
        width, height = self.size
        rgb = "rgb48le" if pixels.dtype == np.uint16 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels[:height, :width]), rgb)
        if self.plan.pix_fmt != rgb:
            colour = self.first.colour if self.first else None
            if colour is not None:
                frame.colorspace = colour.space
            frame = frame.reformat(
                format=self.plan.pix_fmt,
                dst_color_range=colour.range if colour and colour.range else None,
            )
        frame.pts, frame.time_base = pts, time_base
        self._mux_video(self.video.encode(frame))
        self.frames_out += 1

    def _mux_video(self, packets: list[Any]) -> None:
        """Mux encoded packets, with the timestamp repairs the ffmpeg command line makes:
        libx265 with frame threads can hand out a garbage dts (above the pts) for the
        first packets of a short run, which every muxer refuses ("pts < dts")."""
        for packet in packets:
            pts, dts = packet.pts, packet.dts
            if pts is not None and dts is not None:
                floor = self._last_dts + 1 if self._last_dts is not None else None
                if dts > pts:  # the median of pts, dts and the next free dts, as ffmpeg
                    dts = pts if floor is None else sorted((pts, dts, floor))[1]
                    packet.pts = max(pts, dts)
                if floor is not None and dts < floor:
                    dts = floor
                    packet.pts = max(packet.pts, dts)
                if dts != packet.dts:
                    self.repaired += 1
                    packet.dts = dts
                self._last_dts = dts
            self.output.mux(packet)

    def _mux(self, packet: Any) -> None:
        if self.size is None:  # the header needs the video's size: hold until then
            self._waiting.append(packet)
            return
        packet.stream = self.copies[packet.stream_index]
        self.output.mux(packet)
