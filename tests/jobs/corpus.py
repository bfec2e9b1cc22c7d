"""A corpus of bad inputs of every kind a user meets, mixed with good ones.

``make_corpus(folder)`` writes the files and returns {name: expected}, where expected is
"done" (a valid file, perhaps an odd one) or "failed" (one line naming the file).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return (
        struct.pack(">I", len(body) if length is None else length)
        + kind
        + body
        + struct.pack(">I", crc)
    )


#: Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2)]  # fmt: skip


def png16_bytes(pixels: np.ndarray, *, ihdr_extra: bytes = b"", interlace: int = 0) -> bytes:
    """A 16-bit RGB PNG (filter None on every row), optionally with a longer IHDR."""
    height, width, channels = pixels.shape
    color = 2 if channels == 3 else 6
    header = struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, interlace) + ihdr_extra
    big_endian = pixels.astype(">u2")
    passes = _ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = big_endian[y0::dy, x0::dx]
        if sub.size:
            rows = np.ascontiguousarray(sub).reshape(sub.shape[0], -1).view(np.uint8)
            raw += b"".join(b"\x00" + row.tobytes() for row in rows)
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png16_bomb(inflated: int = 64 << 20) -> bytes:
    """A 1x1 16-bit PNG whose image data inflates to ``inflated`` bytes."""
    header = struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0)
    packed = zlib.compress(b"\x00" * inflated, 9)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", packed) + _chunk(b"IEND", b"")


def header_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """An 8-bit PNG whose header claims width x height pixels (3.6 GP), with a tiny body."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    packed = zlib.compress(b"\x00" * 1000)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", packed) + _chunk(b"IEND", b"")


def _noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))
    return image.convert(mode)


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def palette_collision(side: int = 600) -> bytes:
    """A palette PNG whose transparent index's colour is also used by opaque pixels."""
    rng = np.random.default_rng(3)
    rgb = (rng.random((side, side, 3)) * 255).astype(np.uint8)
    quantized = Image.fromarray(rgb).quantize(64, dither=Image.Dither.NONE)
    indices = np.array(quantized)
    indices[:40, :40] = 7  # transparent corner; index 7's colour also appears opaque
    image = Image.fromarray(indices, "P")
    image.putpalette(quantized.getpalette())
    return _encoded(image, "PNG", transparency=7)


#: the pixels of the interlaced 16-bit sample (a test compares it with them)
DEEP = (np.random.default_rng(5).random((21, 26, 3)) * 65535).astype(np.uint16)


def make_corpus(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    good_png = _encoded(_noise(40, 30, 1), "PNG")
    good_jpg = _encoded(_noise(36, 28, 2), "JPEG", quality=90)
    files: dict[str, tuple[bytes, str]] = {
        "good1.png": (good_png, "done"),
        "good2.jpg": (good_jpg, "done"),
        "good3_rgba.png": (_encoded(_noise(30, 24, 4, "RGBA"), "PNG"), "done"),
        "palette_collision.png": (palette_collision(), "done"),
        "interlaced16.png": (png16_bytes(DEEP, interlace=1), "done"),
        # an x2 output wider than WebP's 16383 pixels: refused before any upscale
        "too_wide.webp": (_encoded(Image.new("RGB", (8200, 2), (90, 120, 30)), "WEBP"), "failed"),
        # IHDR 14 bytes long (Pillow opens it): read or refused, never a struct.error
        "long_ihdr16.png": (
            png16_bytes(np.full((6, 5, 3), 30000, np.uint16), ihdr_extra=b"\x00"),
            "failed",
        ),
        "truncated.png": (good_png[: len(good_png) // 2], "failed"),
        "truncated.jpg": (good_jpg[: len(good_jpg) // 3], "failed"),
        "empty.png": (b"", "failed"),
        "header_bomb.png": (header_bomb(), "failed"),
        "inflate_bomb16.png": (png16_bomb(), "failed"),
        "cmyk.jpg": (_encoded(_noise(20, 20, 6, "CMYK"), "JPEG"), "failed"),
        "gif_named.png": (_encoded(_noise(20, 20, 7, "P"), "GIF"), "failed"),
        "text.jpg": (b"this is not an image\n" * 10, "failed"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expected for name, (_, expected) in files.items()}
