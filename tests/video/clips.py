"""Test clips made with PyAV: a moving pattern, a sine tone, subtitles, chapters, VFR."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

#: the frame-to-frame gaps (ms) of the variable-frame-rate clip
VFR_STEPS_MS = (33, 50, 17, 100)


@dataclass
class Clip:
    """What a clip was made with (for comparisons)."""

    width: int = 64
    height: int = 48
    frames: int = 12
    rate: int = 25
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    audio: bool = True
    subtitles: bool = False
    chapters: bool = False
    attachment: bool = False  # a font, as Matroska files carry them for subtitles
    rotation: int | None = None
    vfr: bool = False
    colour: tuple[int, int, int, int] = (1, 1, 1, 1)  # BT.709 primaries/trc/matrix, limited
    options: dict[str, str] = field(default_factory=dict)


def pattern(width: int, height: int, index: int, deep: bool = False) -> np.ndarray:
    """A moving RGB pattern: diagonal bands that shift with ``index``."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [(x * 7 + index * 9) % 256, (y * 5 + index * 4) % 256, ((x + y) * 3 + index) % 256], -1
    ).astype(np.float64)
    if deep:
        return (rgb * 257).astype(np.uint16)
    return rgb.astype(np.uint8)


def make_clip(path: Path, clip: Clip | None = None) -> Path:
    """Write ``clip`` to ``path`` (container from the extension)."""
    import av

    clip = clip or Clip()
    deep = "10" in clip.pix_fmt or "16" in clip.pix_fmt
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "overnet test pattern"
        video = out.add_stream(clip.codec, rate=clip.rate, options=clip.options)
        video.width, video.height, video.pix_fmt = clip.width, clip.height, clip.pix_fmt
        ctx = video.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = clip.colour
        if clip.vfr:
            ctx.time_base = Fraction(1, 1000)
        video.metadata["language"] = "eng"
        if clip.rotation is not None:
            video.set_display_rotation(clip.rotation)
        audio = out.add_stream("aac", rate=48000) if clip.audio else None
        if audio is not None:
            audio.layout = "mono"
            audio.metadata["language"] = "fra"
        subs = out.add_mux_stream("subrip") if clip.subtitles else None
        if clip.chapters:
            out.set_chapters(_chapters(clip))
        if clip.attachment:
            out.add_attachment("subs.ttf", "font/ttf", b"not really a font " * 8)
        pts = 0
        for i in range(clip.frames):
            frame = av.VideoFrame.from_ndarray(
                pattern(clip.width, clip.height, i, deep), format="rgb48le" if deep else "rgb24"
            )
            if clip.vfr:
                frame.pts, frame.time_base = pts, Fraction(1, 1000)
                pts += VFR_STEPS_MS[i % len(VFR_STEPS_MS)]
            else:
                frame.pts = i
            out.mux(video.encode(frame))
            if subs is not None and i % 5 == 0:
                _subtitle(av, out, subs, i, clip.rate)
        out.mux(video.encode(None))
        if audio is not None:
            _tone(av, out, audio, clip.frames / clip.rate)
    return path


def _chapters(clip: Clip) -> list[dict]:
    half = clip.frames * 1000 // clip.rate // 2
    tb = Fraction(1, 1000)
    return [
        {"id": 1, "start": 0, "end": half, "time_base": tb, "metadata": {"title": "one"}},
        {"id": 2, "start": half, "end": 2 * half, "time_base": tb, "metadata": {"title": "two"}},
    ]


def _subtitle(av, out, stream, index: int, rate: int) -> None:
    packet = av.Packet(f"line {index}".encode())
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = packet.dts = index * 1000 // rate
    packet.duration = 100
    out.mux(packet)


def _tone(av, out, stream, seconds: float) -> None:
    """A 440 Hz sine, mono, 48 kHz."""
    samples = int(48000 * seconds)
    t = np.arange(samples) / 48000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    for start in range(0, samples, 1024):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(wave[:, start : start + 1024]), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


# -- reading back ---------------------------------------------------------------------
def video_frames(path: Path, fmt: str = "rgb24") -> list:
    """[(seconds as a Fraction, HxWx3 array)] of the first video stream."""
    import av

    with av.open(str(path)) as container:
        return [
            (f.pts * f.time_base, f.to_ndarray(format=fmt))
            for f in container.decode(container.streams.video[0])
        ]


def frame_times(path: Path) -> list[Fraction]:
    import av

    with av.open(str(path)) as container:
        return [f.pts * f.time_base for f in container.decode(container.streams.video[0])]


def packets(path: Path, kind: str) -> list[tuple[bytes, Fraction]]:
    """(payload, time) of every packet of the first stream of ``kind``."""
    import av

    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [(bytes(p), p.pts * p.time_base) for p in container.demux(stream) if p.size]


def facts(path: Path) -> dict:
    """What the tests compare: size, pixel format, rotation and colour of the first frame,
    stream and container metadata, chapter titles, stream kinds, frame count."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        first = frames[0]
        return {
            "size": (first.width, first.height),
            "pix_fmt": first.format.name,
            "rotation": first.rotation,
            "colour": (first.color_primaries, first.color_trc, first.colorspace, first.color_range),
            "language": stream.metadata.get("language"),
            "title": container.metadata.get("title"),
            "chapters": [c["metadata"].get("title") for c in container.chapters()],
            "streams": [s.type for s in container.streams],
            "attachments": [
                (s.metadata.get("filename"), s.data)
                for s in container.streams
                if s.type == "attachment"
            ],
            "frames": len(frames),
        }
