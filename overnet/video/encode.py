"""Encoding choices: codec, quality, preset, pixel format, and the container to write.

Defaults (README "Video"): libx264 at CRF 18, preset medium; the output keeps the
input's pixel format when the codec can encode it (a 10-bit yuv420p10le input stays
10-bit with libx264/libx265/libsvtav1/ffv1), else the codec's own default of that depth.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from overnet._optional import require
from overnet.errors import InputError
from overnet.video.user_options import check_encoder_options, merge_options
from overnet.video.x264 import brief_x264_params, repeatable_x264_options

#: output extension -> FFmpeg muxer
MUXERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}
#: --video-format names
VIDEO_FORMATS = tuple(s[1:] for s in MUXERS)
#: containers tried, in order, when the input's own cannot take the codec
FALLBACK_SUFFIXES = (".mkv", ".mov")
DEFAULT_CODEC = "libx264"
#: the most encoder threads the default asks for, so that a large machine running several
#: videos at once does not hand each encoder all of its CPUs (--encoder-threads goes higher)
MAX_DEFAULT_ENCODER_THREADS = 16


@dataclass(frozen=True)
class CodecSpec:
    """How overnet drives one encoder: its quality and speed options and pixel formats."""

    crf: tuple[str, int] | None  # (option name, default); None: no quality knob (lossless)
    preset: tuple[str, str] | None  # (option name, default)
    pix_fmt_8: str
    pix_fmt_deep: str | None  # for inputs above 8 bits; None: 8 bits only
    options: dict[str, str] = field(default_factory=dict)
    preset_values: dict[str, str] = field(default_factory=dict)  # --preset name -> value


#: ProRes profiles by name (prores, the "anatoliy" encoder, takes only the numbers)
_PRORES_PROFILES = {"proxy": "0", "lt": "1", "standard": "2", "hq": "3", "4444": "4", "4444xq": "5"}
_PRORES = CodecSpec(None, ("profile", "hq"), "yuv422p10le", "yuv422p10le", {}, _PRORES_PROFILES)
_NVENC = CodecSpec(("cq", 23), ("preset", "p5"), "yuv420p", "p010le")
_QSV = CodecSpec(("global_quality", 23), ("preset", "medium"), "nv12", "p010le")
CODECS: dict[str, CodecSpec] = {
    "libx264": CodecSpec(("crf", 18), ("preset", "medium"), "yuv420p", "yuv420p10le"),
    "libx265": CodecSpec(
        ("crf", 20),
        ("preset", "medium"),
        "yuv420p",
        "yuv420p10le",
        {"x265-params": "log-level=error"},
    ),
    "libsvtav1": CodecSpec(("crf", 30), ("preset", "8"), "yuv420p", "yuv420p10le"),
    # constant quality in libvpx needs the bit rate at 0
    "libvpx-vp9": CodecSpec(("crf", 31), ("cpu-used", "4"), "yuv420p", None, {"b": "0"}),
    "prores": _PRORES,
    "prores_ks": _PRORES,
    "ffv1": CodecSpec(None, None, "yuv420p", "yuv420p10le", {"level": "3", "slicecrc": "1"}),
    "h264_nvenc": CodecSpec(("cq", 23), ("preset", "p5"), "yuv420p", None),
    "hevc_nvenc": _NVENC,
    "av1_nvenc": _NVENC,
    "h264_qsv": CodecSpec(("global_quality", 23), ("preset", "medium"), "nv12", None),
    "hevc_qsv": _QSV,
    "av1_qsv": _QSV,
}
#: pixel formats a request for packed RGB may be served with (same depth, lossless shuffle)
_RGB_EQUIVALENTS = {
    "rgb24": ("rgb24", "bgr0", "rgb0", "bgr24", "gbrp"),
    "rgb48le": ("rgb48le", "gbrp16le", "rgba64le"),
}


@dataclass(frozen=True)
class EncodeOptions:
    """What the user asked for; None takes the codec's default."""

    codec: str = DEFAULT_CODEC
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    threads: int | None = None  # encoder threads; None: default_encoder_threads()
    #: the encoder's own options (FFmpeg names, e.g. ("tune", "film"), ("x264-params",
    #: "aq-mode=3")), applied after overnet's (``user_options.merge_options``: a key
    #: replaces overnet's value; ``*-params`` lists merge entry by entry)
    extra: tuple[tuple[str, str], ...] = ()


def default_encoder_threads() -> int:
    """The machine's CPU count (at most MAX_DEFAULT_ENCODER_THREADS), not the process's
    CPU mask.

    Encoders left on "auto" count the CPUs the calling process may run on, and libx264,
    libx265 write different bytes with a different thread count: a Ray actor pinned to
    one CPU then wrote other bytes than the local command
    (``tests/video/test_pipeline.py`` narrows the mask and compares). An explicit count
    from the machine keeps the output independent of pinning; --encoder-threads fixes it
    across machines too."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_ENCODER_THREADS))


@dataclass(frozen=True)
class EncodePlan:
    """What will be written: encoder, its options, pixel formats, notes for the report."""

    codec: str
    pix_fmt: str
    options: dict[str, str]
    deep: bool  # more than 8 bits per component: the network's output is kept as uint16
    notes: tuple[str, ...] = ()
    threads: int = 1  # the encoder's thread count, set explicitly (see default_encoder_threads)

    def describe(self) -> str:
        quality = ", ".join(f"{k} {brief_x264_params(k, v)}" for k, v in self.options.items())
        return f"{self.codec} {self.pix_fmt}" + (f" ({quality})" if quality else "")


def encoder_formats(codec: str) -> list[str]:
    """Pixel formats the encoder ``codec`` takes; InputError when it is not in this build."""
    av = require("av", "video files", "video")
    try:
        found = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError) as exc:
        raise InputError(
            f"no encoder {codec!r} in this FFmpeg build; use one of {', '.join(CODECS)} "
            "(hardware encoders only where their drivers are present)"
        ) from exc
    if found.type != "video":
        raise InputError(f"{codec!r} is a {found.type} encoder, not a video encoder")
    return [f.name for f in found.video_formats or []]


def bits_of(pix_fmt: str) -> int:
    av = require("av", "video files", "video")
    return max(c.bits for c in av.video.format.VideoFormat(pix_fmt).components)


def choose_pix_fmt(codec: str, input_pix_fmt: str, input_bits: int, requested: str | None):
    """(pixel format, note or ''): the requested one, else the input's when the codec
    takes it, else the codec's default of the input's depth."""
    formats = encoder_formats(codec)
    spec = CODECS.get(codec)
    if requested:
        for candidate in _RGB_EQUIVALENTS.get(requested, (requested,)):
            if not formats or candidate in formats:
                note = "" if candidate == requested else f"{requested} written as {candidate}"
                return candidate, note
        raise InputError(
            f"{codec} cannot encode --pix-fmt {requested}; it takes {', '.join(formats)}"
        )
    if input_pix_fmt in formats:
        return input_pix_fmt, ""
    deep = input_bits > 8
    wanted = (spec.pix_fmt_deep if deep else spec.pix_fmt_8) if spec else None
    if wanted and (wanted in formats or not formats):
        return wanted, ""
    if deep:
        for name in formats:
            if "p10" in name or "p12" in name or "p16" in name:
                return name, ""
    fallback = (spec.pix_fmt_8 if spec else None) or (formats[0] if formats else "yuv420p")
    note = f"{codec} encodes 8 bits here: {input_bits}-bit input written as {fallback}"
    return fallback, note if deep else ""


def encoder_options(
    codec: str, crf: int | None, preset: str | None, extra: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    """The encoder's own options for --crf and --preset (defaults from CODECS), then
    ``extra`` (--encoder-option, merged as ``user_options.merge_options`` says)."""
    options = _quality_options(codec, crf, preset)
    if codec == "libx264":
        options.update(repeatable_x264_options())
    return merge_options(options, extra)


def _quality_options(codec: str, crf: int | None, preset: str | None) -> dict[str, str]:
    spec = CODECS.get(codec)
    options = dict(spec.options) if spec else {}
    if spec is None:  # an encoder overnet has no table for: pass the usual names
        if crf is not None:
            options["crf"] = str(crf)
        if preset is not None:
            options["preset"] = preset
        return options
    if crf is not None and spec.crf is None:
        raise InputError(f"--crf does not apply to {codec} (lossless or fixed-profile)")
    if preset is not None and spec.preset is None:
        raise InputError(f"--preset does not apply to {codec}")
    if spec.crf:
        options[spec.crf[0]] = str(crf if crf is not None else spec.crf[1])
    if spec.preset:
        name = preset if preset is not None else spec.preset[1]
        options[spec.preset[0]] = spec.preset_values.get(name, name)
    return options


def plan_encoding(options: EncodeOptions, input_pix_fmt: str, input_bits: int) -> EncodePlan:
    if options.threads is not None and options.threads < 1:
        raise InputError(f"encoder threads must be at least 1, got {options.threads}")
    if options.codec == "libsvtav1":
        # SVT-AV1 prints a banner per encoder straight to stderr; errors only, as
        # x265's log-level=error (its level is an environment variable; a user's is kept)
        os.environ.setdefault("SVT_LOG", "1")
    pix_fmt, note = choose_pix_fmt(options.codec, input_pix_fmt, input_bits, options.pix_fmt)
    plan = EncodePlan(
        codec=options.codec,
        pix_fmt=pix_fmt,
        options=encoder_options(options.codec, options.crf, options.preset, options.extra),
        deep=bits_of(pix_fmt) > 8,
        notes=(note,) if note else (),
        threads=options.threads or default_encoder_threads(),
    )
    if options.extra:
        av = require("av", "video files", "video")
        given = [key for key, _ in options.extra]
        check_encoder_options(av, plan.codec, plan.pix_fmt, plan.options, given)
    return plan


@functools.lru_cache(maxsize=16)
def _muxer_codecs(muxer: str) -> frozenset[str]:
    av = require("av", "video files", "video")
    with av.open(io.BytesIO(), "w", format=muxer) as probe:
        return frozenset(probe.supported_codecs)


def container_takes(suffix: str, codec: str) -> bool:
    return suffix in MUXERS and codec in _muxer_codecs(MUXERS[suffix])


def choose_suffix(input_suffix: str, requested: str | None, codec: str) -> tuple[str, str]:
    """(output extension, note or ''): ``requested`` (mp4, mkv, ...) when given, else the
    input's; when that container cannot hold ``codec``, the first fallback that can."""
    if requested:
        suffix = "." + requested.lower().lstrip(".")
        if suffix not in MUXERS:
            raise InputError(f"unknown video format {requested!r}; use one of {_names()}")
        if not container_takes(suffix, codec):
            fits = [s for s in MUXERS if container_takes(s, codec)]
            raise InputError(
                f"{suffix} files cannot hold {codec}; containers that can: "
                + (", ".join(f[1:] for f in fits) or "none")
            )
        return suffix, ""
    if container_takes(input_suffix, codec):
        return input_suffix, ""
    for suffix in FALLBACK_SUFFIXES:
        if container_takes(suffix, codec):
            return suffix, f"{input_suffix} cannot hold {codec}: written as {suffix}"
    raise InputError(f"no container overnet writes can hold {codec}")


def muxer_for(path: Path) -> str:
    try:
        return MUXERS[path.suffix.lower()]
    except KeyError:
        raise InputError(
            f"cannot tell the container of {path} from its extension; use one of {_names()}"
        ) from None


def _names() -> str:
    return ", ".join(s[1:] for s in MUXERS)
