"""One syntax for amounts of memory and for image sizes, everywhere (no third-party imports).

Memory: a number and a unit. ``KB``/``MB``/``GB``/``TB`` are powers of 1000 and
``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024 (IEC), ``B`` is bytes; case does not
matter and decimals are allowed (``1.5GB``, ``800mb``, ``4GiB``). A bare number is
refused: tools disagree on whether ``4096`` means bytes, KiB or MiB. An ``int`` given
from Python is a number of bytes.

Sizes: ``WIDTHxHEIGHT`` as ffmpeg and Pillow write them (``320x180`` is 320 pixels
wide and 180 high). TensorRT profile shapes are NxCxHxW, TensorRT's own order; they
are parsed by :mod:`overnet.formats.profile`, not here.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from overnet.errors import InputError

#: unit (lower case) -> bytes
MEMORY_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
#: the accepted memory forms, for help texts and error messages
MEMORY_FORMS = (
    "a memory size with a unit such as 1.5GB, 800MB or 4GiB "
    "(KB/MB/GB/TB = 1000^n bytes, KiB/MiB/GiB/TiB = 1024^n, B = bytes)"
)
#: the accepted size form, for help texts and error messages
SIZE_FORM = "WIDTHxHEIGHT such as 320x180 (320 wide, 180 high)"

_MEMORY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))\s*([a-z]*)", re.IGNORECASE)
_SIZE = re.compile(r"(\d+)\s*x\s*(\d+)", re.IGNORECASE)


def parse_memory(text: str | int) -> int:
    """``'1.5GB'`` -> 1_500_000_000, ``'4GiB'`` -> 4 * 2**30; an int is bytes already.

    Raises InputError for a bare number, an unknown unit, or an amount below one byte.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InputError(f"expected {MEMORY_FORMS}, got {text!r}")
    if isinstance(text, int):
        amount = text
    else:
        match = _MEMORY.fullmatch(text.strip())
        if match is None or match.group(2).lower() not in MEMORY_UNITS:
            hint = "; a bare number is ambiguous" if match and not match.group(2) else ""
            raise InputError(f"expected {MEMORY_FORMS}{hint}, got {text!r}")
        try:
            number = Decimal(match.group(1))
        except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
            raise InputError(f"expected {MEMORY_FORMS}, got {text!r}") from None
        amount = int(number * MEMORY_UNITS[match.group(2).lower()])
    if amount < 1:
        raise InputError(f"a memory size must be at least 1 byte, got {text!r}")
    return amount


def format_bytes(n: int | float) -> str:
    """1_500_000_000 -> '1.5 GB' (powers of 1000, three significant digits)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"


def format_memory(n: int) -> str:
    """Bytes -> the exact text :func:`parse_memory` reads back: 4 * 2**30 -> '4GiB',
    1_500_000_000 -> '1500MB', 1234 -> '1234B' (for command lines that are re-run)."""
    for unit in ("TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"):
        factor = MEMORY_UNITS[unit.lower()]
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"


def parse_size(text: str | tuple[int, int]) -> tuple[int, int]:
    """``'320x180'`` -> (320, 180): (width, height), both at least 1 pixel.

    A (width, height) tuple is checked and returned as is.
    """
    if isinstance(text, tuple) and len(text) == 2:
        width, height = (int(v) for v in text)
    else:
        match = _SIZE.fullmatch(str(text).strip())
        if match is None:
            raise InputError(f"expected {SIZE_FORM}, got {text!r}")
        width, height = int(match.group(1)), int(match.group(2))
    if width < 1 or height < 1:
        raise InputError(f"size {text!r}: width and height must be at least 1 pixel")
    return width, height
