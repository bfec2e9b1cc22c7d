"""`overnet upscale`'s video options, their time syntax, and the per-video progress bar."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import click

from overnet.cli.library import LibraryChoice, constant
from overnet.cli.options import Decorator, stack

_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")


class TimeType(click.ParamType):
    """Seconds (``12.5``) or a clock time (``1:02:03.5``, ``02:03``) -> seconds."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, float):
            return value
        text = str(value).strip()
        match = _CLOCK.fullmatch(text)
        try:
            seconds = (
                int(match.group(1) or 0) * 3600 + int(match.group(2)) * 60 + float(match.group(3))
                if match
                else float(text)
            )
        except ValueError:
            self.fail(f"expected seconds (12.5) or [HH:]MM:SS[.ms], got {value!r}", param, ctx)
        if seconds < 0:
            self.fail(f"a time must be >= 0, got {value!r}", param, ctx)
        return seconds


TIME = TimeType()


class KeyValueType(click.ParamType):
    """``KEY=VALUE`` -> (key, value); the value may itself hold '=' (x264-params=a=1:b=2)."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        key, sep, rest = str(value).partition("=")
        if not sep or not key.strip():
            self.fail(f"expected KEY=VALUE (e.g. tune=film), got {value!r}", param, ctx)
        return key.strip(), rest


KEY_VALUE = KeyValueType()


def video_options() -> Decorator:
    """Encoding, container, trimming and damage options for video inputs."""
    return stack(
        click.option(
            "--codec",
            default=constant("overnet.video.encode", "DEFAULT_CODEC"),
            help="Video encoder: libx264, libx265, libsvtav1, libvpx-vp9, prores, ffv1 "
            "(lossless), or a hardware encoder present here (h264_nvenc, hevc_qsv, ...).",
        ),
        click.option(
            "--crf",
            type=click.IntRange(0, 63),
            default=None,
            help="Constant quality (lower is better); default per codec: x264 18, x265 20, "
            "svt-av1 30, vp9 31.",
        ),
        click.option(
            "--preset",
            default=None,
            help="Encoder speed preset (x264/x265: medium; svt-av1: 8; vp9 cpu-used: 4; "
            "prores profile: hq).",
        ),
        click.option(
            "--pix-fmt",
            default=None,
            help="Output pixel format (default: the input's when the codec takes it, so "
            "10-bit stays 10-bit). rgb24/rgb48le ask for lossless RGB (e.g. with ffv1).",
        ),
        click.option(
            "--encoder-threads",
            type=click.IntRange(min=1),
            default=None,
            help="Threads of the video encoder (default: this machine's CPU count, at most "
            "16). The bytes an encoder writes depend on it: give the same number everywhere "
            "for identical outputs across machines.",
        ),
        click.option(
            "--encoder-option",
            "encoder_options",
            type=KEY_VALUE,
            multiple=True,
            metavar="KEY=VALUE",
            help="An option of the encoder itself, by FFmpeg's name (repeatable): "
            "tune=film, g=48, x264-params=aq-mode=3. Replaces overnet's value of that key; "
            "*-params lists merge entry by entry (x264-params=asm=auto gives back x264's "
            "own choice of code, which is not repeatable on AVX-512 CPUs). Checked by "
            "opening the encoder before any file is read.",
        ),
        click.option(
            "--video-format",
            type=LibraryChoice("overnet.video.encode", "VIDEO_FORMATS"),
            default=None,
            help="Output container (default: the input's; mkv when it cannot hold --codec).",
        ),
        click.option(
            "--frames",
            "max_frames",
            type=click.IntRange(min=1),
            default=None,
            help="Upscale at most N frames of each video (a preview).",
        ),
        click.option(
            "--start", type=TIME, default=0.0, help="Start at this time: seconds or HH:MM:SS."
        ),
        click.option(
            "--duration", type=TIME, default=None, help="Upscale this long: seconds or HH:MM:SS."
        ),
        click.option(
            "--strict",
            is_flag=True,
            help="Fail a video with damaged or missing frames (default: count them, go on).",
        ),
    )


def frame_progress(enabled: bool) -> Callable[[str, int | None], Any] | None:
    """A factory of per-video tqdm bars (frames, fps, ETA); None when disabled."""
    if not enabled:
        return None

    def open_bar(name: str, total: int | None):
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc=name[-30:], dynamic_ncols=True, leave=True)
        return bar.update, bar.close

    return open_bar


def video_settings(params: Mapping[str, Any]) -> tuple[Any, Any]:
    """(EncodeOptions, Trim) from the parameters of :func:`video_options`, by name."""
    from overnet.video.decode import Trim
    from overnet.video.encode import EncodeOptions

    encode = EncodeOptions(
        codec=params["codec"],
        crf=params["crf"],
        preset=params["preset"],
        pix_fmt=params["pix_fmt"],
        threads=params["encoder_threads"],
        extra=tuple(params["encoder_options"]),
    )
    trim = Trim(start=params["start"], duration=params["duration"], frames=params["max_frames"])
    return encode, trim


def check_video_options(encode: Any, video_format: str | None) -> None:
    """Refuse an unknown codec, a pixel format or option it does not take, or a container
    that cannot hold it, before any file is read (when PyAV is installed; without it each
    video fails with the install hint and images go on)."""
    from overnet._optional import available
    from overnet.video.encode import choose_suffix, plan_encoding

    if available("av"):
        plan_encoding(encode, "yuv420p", 8)
        if video_format:
            choose_suffix(".mkv", video_format, encode.codec)
