"""FFmpeg's log, turned on only while overnet needs what it says.

PyAV attaches FFmpeg's last logged error to an exception only while its logging is on,
and encoders report unknown keys inside ``x264-params``/``x265-params``/``svtav1-params``
only as log warnings. Its log callback must not outlive the codec threads that call it
(left on, it crashed the interpreter at exit once), so logging is on only inside these
context managers, and never changed when the caller set a level of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.Lock()
_users = 0
_ours = False


@contextmanager
def ffmpeg_reasons(av: Any) -> Iterator[None]:
    """FFmpeg's errors reach our messages: logging on at ERROR while any video runs (when
    the caller had set no level), off again after the last one."""
    global _users, _ours
    with _LOCK:
        if _users == 0:
            _ours = av.logging.get_level() is None
            if _ours:
                av.logging.set_level(av.logging.ERROR)
        _users += 1
    try:
        yield
    finally:
        with _LOCK:
            _users -= 1
            if _users == 0 and _ours:
                av.logging.set_level(None)
                _ours = False


@contextmanager
def warnings_of_this_thread(av: Any) -> Iterator[list[tuple[int, str, str]]]:
    """(level, source, message) of what FFmpeg logs at WARNING or worse from this thread
    inside the block. The level is lowered only for the block and then put back."""
    with _LOCK:
        before = av.logging.get_level()
        av.logging.set_level(av.logging.WARNING)
        try:
            with av.logging.Capture(local=True) as logs:
                yield logs
        finally:
            av.logging.set_level(before)
