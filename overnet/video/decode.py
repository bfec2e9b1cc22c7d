"""The decoding stage: demux, decode, trim, convert frames to RGB arrays for the network.

Frames leave as HxWx3 ``rgb24`` (uint8) arrays, or ``rgb48le`` (uint16) for inputs above
8 bits, converted with the frame's own colour matrix and range. Packets of the streams
that are copied (audio, subtitles, data) leave untouched, in file order, with their
timestamps shifted only when ``--start`` cuts the beginning off.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from overnet._optional import require
from overnet.errors import InputError
from overnet.video.probe import Colour, VideoFacts
from overnet.video.stages import Link, Stage

if TYPE_CHECKING:
    import threading

    from av.container import InputContainer

#: codecs whose packets may hold no picture (DivX/Xvid packed B-frames in AVI)
_PLACEHOLDER_CODECS = {"mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "h263"}
#: packets of copied streams read on after the last frame of a trimmed run, in seconds
#: (files interleave audio and video within about a second)
_TAIL_S = 1.0


@dataclass(frozen=True)
class Trim:
    """Part of the video to upscale: from ``start`` seconds, for ``duration`` seconds
    and/or at most ``frames`` frames (None: to the end)."""

    start: float = 0.0
    duration: float | None = None
    frames: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0:
            raise InputError(f"--start must be >= 0 seconds, got {self.start:g}")
        if self.duration is not None and self.duration <= 0:
            raise InputError(f"--duration must be > 0 seconds, got {self.duration:g}")
        if self.frames is not None and self.frames < 1:
            raise InputError(f"--frames must be at least 1, got {self.frames}")


@dataclass
class Decoded:
    """One decoded frame on its way to the network."""

    pixels: np.ndarray  # HxWx3 uint8 or uint16 RGB
    pts: int  # in time_base, shifted by --start
    time_base: Fraction


@dataclass(frozen=True)
class FirstFrame:
    """What the encoder copies from the first decoded frame."""

    width: int
    height: int
    colour: Colour
    display_matrix: tuple[int, ...] | None


def display_matrix(frame: Any) -> tuple[int, ...] | None:
    """The frame's 3x3 display matrix (9 int32, FFmpeg's layout), if it has one."""
    for data in frame.side_data:
        if data.type.name == "DISPLAYMATRIX":
            return tuple(np.frombuffer(bytes(data), "<i4").tolist())
    return None


class Decoder(Stage):
    """Reads ``container`` and feeds ``link`` with ("frame", Decoded), ("packet", Packet)
    and finally ("end", None). Counts frames decoded, damaged and dropped."""

    def __init__(
        self,
        container: InputContainer,
        facts: VideoFacts,
        link: Link,
        stop: threading.Event,
        *,
        copy: list[int],
        trim: Trim,
        strict: bool,
    ) -> None:
        super().__init__("overnet-decode", stop)
        self.container = container
        self.facts = facts
        self.link = link
        self.copy = copy
        self.trim = trim
        self.strict = strict
        self.rgb = "rgb48le" if facts.bits > 8 else "rgb24"
        self.first: FirstFrame | None = None
        self.frames_in = self.damaged = self.dropped = 0
        #: where the video stops (--duration; the last frame's end under --frames), and
        #: where copied streams stop until then (--frames at the average rate)
        self.end = None if trim.duration is None else trim.start + trim.duration
        self.copy_end = _planned_end(trim, facts)
        self._last_pts: int | None = None
        self.last_seconds: float | None = None  # of the latest frame handed on
        self.problems: list[str] = []  # the first few damaged frames, for the report
        self._done = False
        self._sent = self._decoded = self._failed = 0  # video packets in, frames out, errors

    def work(self) -> None:
        av = require("av", "video files", "video")
        container = self.container
        video = container.streams[self.facts.index]
        video.thread_type = "AUTO"
        if self.trim.start:
            try:
                container.seek(int(self.trim.start * 1_000_000), backward=True)
            except av.error.FFmpegError as exc:
                raise InputError(
                    f"{self.facts.path}: cannot seek to --start {self.trim.start:g} s ({exc})"
                ) from exc
        streams = [video] + [container.streams[i] for i in self.copy]
        try:
            for packet in container.demux(streams):
                if packet.stream_index != video.index:
                    if not self._copy(packet):
                        break
                elif not self._done:
                    if packet.size:  # an empty one marks the end: flushed below, once
                        self._frames(av, video, packet)
                elif not self.copy or self._past_tail(packet):
                    break
            if not self._done:
                self._frames(av, video, None)
                self._count_lost(video.codec_context.name)
        except av.error.FFmpegError as exc:  # the demuxer itself failed mid-file
            self._damage(f"reading stopped: {exc}")
        self.link.put("end")

    # -- video -----------------------------------------------------------------------
    def _frames(self, av: Any, video: Any, packet: Any) -> None:
        self._sent += packet is not None
        try:
            frames = video.decode(packet)
        except av.error.EOFError:  # flushed already
            return
        except av.error.FFmpegError as exc:
            self._failed += 1
            self._damage(f"a packet failed to decode ({exc})")
            return
        self._decoded += len(frames)
        for frame in frames:
            if self._done:
                return
            self._frame(frame)

    def _frame(self, frame: Any) -> None:
        tb = frame.time_base or self.facts.time_base
        pts = frame.pts
        if pts is None:  # some AVI files: number the frames at the stream's rate
            step = round(1 / (self.facts.rate * tb)) if self.facts.rate else 1
            pts = 0 if self._last_pts is None else self._last_pts + step
        seconds = float(pts * tb)
        if seconds < self.trim.start - 1e-6:  # decoded from the keyframe before --start
            return
        if self.end is not None and seconds >= self.end - 1e-6:
            self._finish(None)
            return
        if self._last_pts is not None and pts <= self._last_pts:
            self.dropped += 1  # a repeated or backwards timestamp no encoder accepts
            return
        if frame.is_corrupt:
            self._damage(f"frame at {seconds:.3f} s is damaged")
        self._check_size(frame, seconds)
        self._last_pts = pts
        pixels = frame.to_ndarray(format=self.rgb)
        shift = round(self.trim.start / tb)
        self.link.put("frame", Decoded(pixels, pts - shift, tb))
        self.frames_in += 1
        self.last_seconds = seconds
        if self.trim.frames is not None and self.frames_in >= self.trim.frames:
            rate = self.facts.rate or Fraction(25)
            self._finish(seconds + float(1 / rate))

    def _count_lost(self, codec: str) -> None:
        """Packets that gave no frame and no error: frame-threaded decoders drop a
        damaged frame silently (MPEG-4 Part 2's packed B-frames are placeholders)."""
        lost = self._sent - self._decoded - self._failed
        if lost > 0 and codec not in _PLACEHOLDER_CODECS:
            for _ in range(lost):
                self._damage(f"{lost} packets decoded to no frame")

    def _check_size(self, frame: Any, seconds: float) -> None:
        if self.first is None:
            self.first = FirstFrame(
                frame.width, frame.height, Colour.of(frame), display_matrix(frame)
            )
        elif (frame.width, frame.height) != (self.first.width, self.first.height):
            first = self.first
            raise InputError(
                f"{self.facts.path}: the frame size changes from {first.width}x{first.height} "
                f"to {frame.width}x{frame.height} at {seconds:.3f} s (after {self.frames_in} "
                "frames); overnet writes one size per video: split the file there and "
                "upscale the parts"
            )

    def _finish(self, end: float | None) -> None:
        self._done = True
        if end is not None:
            self.end = end if self.end is None else min(self.end, end)
        self.copy_end = self.end

    def _damage(self, what: str) -> None:
        self.damaged += 1
        if len(self.problems) < 5:
            self.problems.append(what)
        if self.strict:
            raise InputError(f"{self.facts.path}: {what} (--strict stops at damaged frames)")

    # -- copied streams ----------------------------------------------------------------
    def _past_tail(self, packet: Any) -> bool:
        """True for a packet after the trimmed end and the interleaving slack."""
        seconds = _seconds(packet)
        end = self.copy_end
        return seconds is not None and end is not None and seconds >= end + _TAIL_S

    def _copy(self, packet: Any) -> bool:
        """Forward a packet of a copied stream; False once past the trimmed end."""
        seconds = _seconds(packet)
        if seconds is None or packet.size == 0:
            return True
        if self._done and self._past_tail(packet):
            return False
        before = self.trim.start and seconds < self.trim.start - 1e-6
        if before or (self.copy_end is not None and seconds >= self.copy_end):
            return True
        if self.trim.start:
            shift = round(self.trim.start / packet.time_base)
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = None if packet.dts is None else packet.dts - shift
        self.link.put("packet", packet)
        return True


def _seconds(packet: Any) -> float | None:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return None if stamp is None or packet.time_base is None else float(stamp * packet.time_base)


def _planned_end(trim: Trim, facts: VideoFacts) -> float | None:
    """Where a trimmed run ends, in seconds, as far as known before decoding (--frames
    at the average rate: exact for constant frame rates, tightened at the last frame)."""
    ends = []
    if trim.duration is not None:
        ends.append(trim.start + trim.duration)
    if trim.frames is not None and facts.rate:
        ends.append(trim.start + float(trim.frames / facts.rate))
    return min(ends) if ends else None
