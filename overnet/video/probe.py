"""What a file is: a video container (told by its first bytes), and the facts of its streams.

Telling a video from an image needs no FFmpeg: MP4/MOV start with an ``ftyp`` box (or an
old QuickTime atom), Matroska/WebM with the EBML magic, AVI with ``RIFF....AVI ``. So a
clip named ``.png`` is still a video, and a file named ``.mp4`` that is none of these
still goes the video way, where opening it says precisely what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overnet._optional import require
from overnet.errors import InputError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")
#: container kind (sniff_container) -> the file extension it is written with
SUFFIX_OF_KIND = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}
# ISO-BMFF brands of still images (HEIF, AVIF): an ftyp box, but not a video
_IMAGE_BRANDS = {b"avif", b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def sniff_container(path: str | Path) -> str | None:
    """``mp4``, ``mov``, ``matroska``, ``webm`` or ``avi`` from the file's first bytes;
    None for anything else (images, text, unreadable files)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return None
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "mov" if brand == b"qt  " else "mp4"
    if box in _QUICKTIME_ATOMS:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head else "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def is_video_file(path: str | Path) -> bool:
    """True for a video container by content, or a file named like one (.mp4 .mkv ...)."""
    return sniff_container(path) is not None or Path(path).suffix.lower() in VIDEO_SUFFIXES


def video_suffix(path: Path) -> str:
    """The extension ``path``'s container is written with: its own when it is a video
    extension, else the one of the container found in its first bytes (.mkv by default)."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return path.suffix.lower()
    return SUFFIX_OF_KIND.get(sniff_container(path) or "", ".mkv")


@dataclass(frozen=True)
class Colour:
    """FFmpeg's colour tags (AVColorPrimaries, AVColorTransferCharacteristic,
    AVColorSpace, AVColorRange); 2 (0 for the range) means unspecified."""

    primaries: int = 2
    trc: int = 2
    space: int = 2
    range: int = 0

    @classmethod
    def of(cls, obj: Any) -> Colour:
        """The tags of a decoded frame or a codec context."""
        return cls(obj.color_primaries, obj.color_trc, obj.colorspace, obj.color_range)


@dataclass
class VideoFacts:
    """The video stream overnet upscales, and what else the file holds."""

    path: Path
    container: str  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    index: int  # of the video stream
    codec: str
    width: int
    height: int
    pix_fmt: str
    bits: int  # per colour component
    rate: Fraction | None  # average frame rate
    time_base: Fraction
    frames: int  # from the header; 0 when the container does not say
    duration: float | None  # seconds: the video stream's, else the whole file's
    stream_duration: bool  # True when ``duration`` is the video stream's own
    colour: Colour
    others: list[str] = field(default_factory=list)  # "#1 audio aac", ...

    def estimated_frames(self, start: float = 0.0, duration: float | None = None) -> int | None:
        """Frames a run over [start, start + duration) will see, when the file says."""
        total = self.frames or None
        if total is None and self.duration and self.rate:
            total = round(self.duration * self.rate)
        if total is None or not self.rate:
            return total
        total -= round(start * self.rate)
        if duration is not None:
            total = min(total, round(duration * self.rate))
        return max(0, total)

    def describe(self) -> str:
        rate = f"{float(self.rate):.3g} fps" if self.rate else "unknown rate"
        return f"{self.width}x{self.height} {self.codec} {self.pix_fmt} {rate}"


def open_input(path: str | Path) -> InputContainer:
    """Open ``path`` with FFmpeg; every failure is an InputError naming the file."""
    av = require("av", "video files", "video")
    path = Path(path)
    if not path.exists():
        raise InputError(f"video not found: {path}")
    if path.is_dir():
        raise InputError(f"expected a video file, got a directory: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"video file is empty (0 bytes): {path}")
    try:
        return av.open(str(path), "r", metadata_errors="replace")
    except (av.error.FFmpegError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path} is not a video FFmpeg can read, or it is corrupt or truncated ({exc})"
        ) from exc


def main_video_stream(container: InputContainer) -> VideoStream:
    """The video stream to upscale: the first that is not a cover picture."""
    path = container.name
    videos = [s for s in container.streams.video if not s.disposition & s.disposition.attached_pic]
    if not videos:
        kinds = ", ".join(f"#{s.index} {s.type}" for s in container.streams) or "none"
        raise InputError(f"{path} has no video stream (streams: {kinds})")
    stream = videos[0]
    if stream.codec_context is None:
        raise InputError(
            f"{path}: video stream #{stream.index} uses a codec this FFmpeg build cannot "
            "decode; convert it with ffmpeg first"
        )
    return stream


def stream_label(stream: Any) -> str:
    """``#1 audio aac`` for reports."""
    ctx = stream.codec_context
    name = ctx.name if ctx is not None else "unknown codec"
    return f"#{stream.index} {stream.type} {name}"


def facts_of(container: InputContainer, path: Path) -> VideoFacts:
    stream = main_video_stream(container)
    ctx = stream.codec_context
    fmt = ctx.format
    pix_fmt = fmt.name if fmt is not None else (ctx.pix_fmt or "unknown")
    bits = max((c.bits for c in fmt.components), default=8) if fmt is not None else 8
    duration, own = None, stream.duration is not None and bool(stream.time_base)
    if own:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    return VideoFacts(
        path=path,
        container=container.format.name,
        index=stream.index,
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        pix_fmt=pix_fmt,
        bits=bits,
        rate=stream.average_rate or stream.guessed_rate,
        time_base=stream.time_base or Fraction(1, 90000),
        frames=stream.frames,
        duration=duration,
        stream_duration=own,
        colour=Colour.of(ctx),
        others=[stream_label(s) for s in container.streams if s.index != stream.index],
    )


def probe_video(path: str | Path) -> VideoFacts:
    """Facts of ``path``'s video stream; InputError for a file overnet cannot upscale."""
    path = Path(path)
    with open_input(path) as container:
        return facts_of(container, path)
