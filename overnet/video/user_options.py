"""``--encoder-option KEY=VALUE``: the user's options of the encoder itself, merged with
overnet's and checked by the encoder before any file is read.

Merging: a key replaces overnet's value, except the ``*-params`` lists (``x264-params``,
``x265-params``, ``svtav1-params``), whose ``name=value`` entries are merged entry by
entry (the user's win), so ``x264-params=aq-mode=3`` keeps overnet's ``asm=...`` and
with it repeatable output; a repeated ``*-params`` key adds entries, any other repeated
key is refused. ``threads`` is refused: ``--encoder-threads`` sets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from overnet.errors import InputError
from overnet.video.ffmpeg_log import warnings_of_this_thread

#: the frame size of the trial open (above hardware encoders' minimum sizes)
_TRIAL_SIDE = 256
#: words of an FFmpeg log line that complains about an option
_COMPLAINTS = ("option", "invalid", "unknown", "pars", "unrecogni")
#: (codec, pix_fmt, options, given keys) whose trial open passed in this process
_PASSED: set[tuple[Any, ...]] = set()


def _entries(params: str) -> dict[str, str | None]:
    """``a=1:b=2:flag`` -> {"a": "1", "b": "2", "flag": None}, in order."""
    entries: dict[str, str | None] = {}
    for item in filter(None, params.split(":")):
        key, sep, value = item.partition("=")
        entries[key] = value if sep else None
    return entries


def _joined(entries: dict[str, str | None]) -> str:
    return ":".join(k if v is None else f"{k}={v}" for k, v in entries.items())


def merge_options(ours: dict[str, str], given: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``ours`` with the user's ``given`` (key, value) pairs applied (rules above)."""
    merged = dict(ours)
    seen: set[str] = set()
    for key, value in given:
        if key == "threads":
            raise InputError("--encoder-option threads: give --encoder-threads N instead")
        if key.endswith("-params"):
            entries = _entries(merged.get(key, ""))
            entries.update(_entries(value))
            merged[key] = _joined(entries)
        elif key in seen:
            raise InputError(f"--encoder-option {key} is given twice: give it once")
        else:
            merged[key] = value
        seen.add(key)
    return merged


def check_encoder_options(
    av: Any, codec: str, pix_fmt: str, options: dict[str, str], given: Sequence[str]
) -> None:
    """Open ``codec`` once with ``options`` on a small frame: an option it does not know,
    a value it refuses, or an entry of a ``*-params`` list it complains about is an
    InputError naming it (FFmpeg itself only ignores or logs those). Options that passed
    are not opened again (every video of a batch is planned with them)."""
    key = (codec, pix_fmt, tuple(sorted(options.items())), tuple(given))
    if key in _PASSED:
        return
    try:
        leftover, complaints = _trial_open(av, codec, pix_fmt, options)
    except (av.error.FFmpegError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        without = {k: v for k, v in options.items() if k not in given}
        try:
            _trial_open(av, codec, pix_fmt, without)
        except (av.error.FFmpegError, ValueError):
            raise InputError(
                f"could not open {codec} to check --encoder-option ({reason}); a hardware "
                "encoder needs its GPU and driver"
            ) from exc
        mine = ", ".join(f"{k}={options[k]}" for k in given)
        raise InputError(
            f"{codec} refused --encoder-option {mine} ({reason}); see FFmpeg's "
            f"documentation of the encoder (`ffmpeg -h encoder={codec}`)"
        ) from exc
    unused = sorted(set(leftover) & set(given))
    if unused:
        raise InputError(
            f"{codec} has no option {', '.join(unused)} (--encoder-option); see FFmpeg's "
            f"documentation of the encoder (`ffmpeg -h encoder={codec}`)"
        )
    if complaints:
        raise InputError(f"{codec} did not take --encoder-option: {'; '.join(complaints)}")
    _PASSED.add(key)


def _trial_open(
    av: Any, codec: str, pix_fmt: str, options: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """(options the encoder left unused, its log lines complaining about options)."""
    context = av.codec.CodecContext.create(codec, "w")
    context.width = context.height = _TRIAL_SIDE
    context.pix_fmt = pix_fmt
    context.time_base = Fraction(1, 25)
    context.options = dict(options)
    with warnings_of_this_thread(av) as logs:
        context.open()
    complaints = [
        message.strip()
        for _, _, message in logs
        if any(word in message.lower() for word in _COMPLAINTS)
    ]
    return dict(context.options), complaints
