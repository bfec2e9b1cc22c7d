"""16-bit RGB / RGBA PNG reading and writing (Pillow has no 48/64-bit mode: it would
silently read such files as 8-bit RGB).

numpy + zlib only. Arrays are HxWx3 or HxWx4 uint16. Colour-management and metadata
chunks (iCCP, sRGB, gAMA, cHRM, eXIf, pHYs) are carried over unchanged.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from overnet._atomic import write_bytes_atomic
from overnet.errors import InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEPT_CHUNKS = (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"eXIf", b"pHYs")
_CHANNELS = {2: 3, 6: 4}  # PNG colour type -> channels (truecolour, truecolour + alpha)


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise InputError("truncated PNG chunk")
        yield kind, body
        pos += 12 + length
        if kind == b"IEND":
            return
    raise InputError("PNG ends without an IEND chunk (truncated file)")


def is_png16_color(path: str | Path) -> bool:
    """True for a 16-bit truecolour (RGB/RGBA) PNG, judged from its header."""
    with open(path, "rb") as fh:
        head = fh.read(29)
    return (
        len(head) == 29
        and head[:8] == SIGNATURE
        and head[12:16] == b"IHDR"
        and head[24] == 16
        and head[25] in _CHANNELS
    )


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    pos = 0
    for y in range(height):
        kind = raw[pos]
        line = np.frombuffer(raw, np.uint8, stride, pos + 1).copy()
        pos += stride + 1
        if kind == 1:  # Sub: running sum per byte lane
            lanes = line.reshape(-1, bpp).astype(np.uint32)
            line = (np.cumsum(lanes, axis=0) % 256).astype(np.uint8).reshape(-1)
        elif kind == 2:  # Up
            line = line + prev
        elif kind in (3, 4):  # Average / Paeth: each byte depends on the one to its left
            cur, up = line.tolist(), prev.tolist()
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                if kind == 3:
                    pred = (left + up[i]) // 2
                else:
                    pred = _paeth(left, up[i], up[i - bpp] if i >= bpp else 0)
                cur[i] = (cur[i] + pred) & 0xFF
            line = np.array(cur, np.uint8)
        elif kind != 0:
            raise InputError(f"corrupt PNG: unknown row filter {kind}")
        out[y] = line
        prev = line
    return out


def read_png16(path: str | Path) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """HxWx3/4 uint16 pixels and the kept metadata chunks of a 16-bit truecolour PNG."""
    path = Path(path)
    data = path.read_bytes()
    if data[:8] != SIGNATURE:
        raise InputError(f"{path} is not a PNG file")
    header, idat, kept = None, [], {}
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind in KEPT_CHUNKS:
            kept[kind] = body
    if header is None:
        raise InputError(f"{path}: PNG without a header chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 16 or color not in _CHANNELS:
        raise InputError(f"{path}: expected a 16-bit RGB/RGBA PNG, got depth {depth}")
    if interlace:
        raise InputError(f"{path}: interlaced 16-bit PNGs are not supported; re-save it")
    channels = _CHANNELS[color]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise InputError(f"{path} is corrupt or truncated ({exc})") from exc
    stride = width * channels * 2
    if len(raw) < height * (stride + 1):
        raise InputError(f"{path} is corrupt or truncated (image data too short)")
    rows = _unfilter(raw, height, stride, channels * 2)
    pixels = rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
    return pixels, kept


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def encode_png16(pixels: np.ndarray, kept: dict[bytes, bytes] | None = None) -> bytes:
    """PNG bytes of an HxWx3/4 uint16 array (filter Up on every row, zlib level 6)."""
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint16:
        raise InputError(f"expected HxWx3/4 uint16 pixels, got {pixels.shape} {pixels.dtype}")
    height, width, channels = pixels.shape
    rows = np.ascontiguousarray(pixels.astype(">u2")).view(np.uint8).reshape(height, -1)
    up = rows.copy()
    up[1:] = rows[1:] - rows[:-1]  # uint8 wrap-around is the PNG arithmetic
    filtered = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1)
    color = 2 if channels == 3 else 6
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, 0))]
    for kind in KEPT_CHUNKS:
        if kept and kind in kept:
            parts.append(_chunk(kind, kept[kind]))
    parts.append(_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def write_png16(pixels: np.ndarray, path: str | Path, kept: dict[bytes, bytes] | None = None):
    """Write atomically (temp file in the same folder + rename)."""
    return write_bytes_atomic(path, encode_png16(pixels, kept))
