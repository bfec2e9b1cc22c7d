"""16-bit RGB / RGBA PNG reading and writing (Pillow has no 48/64-bit mode: it would
silently read such files as 8-bit RGB).

Arrays are HxWx3 or HxWx4 uint16. Colour-management and metadata chunks (iCCP, sRGB,
gAMA, cHRM, eXIf, pHYs) are carried over unchanged.

Reading. Our own code only walks the chunks (lengths, CRCs, order) and validates the
header; the pixels are decoded by libspng through ``pyspng`` (a 0.2 MB wheel, 0.4 MB
installed, a core dependency), which undoes the row filters and Adam7 interlacing in C.
Chosen after ``benchmarks/png16_decode.py`` (``benchmarks/results/png16-decode.txt``,
25 MP RGB48 on a 2-CPU EPYC): the C decoders all take 0.9-1.2 s with the five filters in
turn and 1.6-2.5 s with Paeth on every row (libpng, in imagecodecs and OpenCV, ahead by
0.1-0.6 s), where our former numpy/Python decoder took 13.5 s and 58 s; pypng took 19 s.
What decided it:

* only libspng stops inflating at the image's last row. libpng inflates whatever
  follows in the same zlib stream, into a small buffer but to its end: a 1 MB file
  with a 1x1 header held a CPU for 2.2 s, so a crafted upload within the service's
  50 MB body limit could hold one for well over a minute;
* size: imagecodecs is 82 MB installed (26 MB wheel, 60 codecs), OpenCV 180 MB; a
  core dependency that every install pulls should not be either.

What it costs: pyspng holds the GIL while it decodes (1-2.5 s per 25 MP here, against
minutes of upscaling for such an image), returns 16-bit RGB as RGBA with an opaque
alpha (dropped here, as a view), skips CRCs (checked here) and cannot encode.

Bounds, before and during the decode:

* the header is read first: width x height is checked against ``max_pixels`` before a
  byte is inflated, and only a well-formed 13-byte IHDR with a matching CRC is accepted;
* every chunk's length and CRC is checked, so a damaged file is an InputError as with
  Pillow, never a ``struct.error``;
* compressed image data beyond what the header's size can need (:func:`raw_size` plus
  deflate's worst-case overhead, :func:`max_compressed_size`) is refused unread;
* libspng is handed only IHDR, the IDAT chunks and IEND: the ancillary chunks, which it
  would otherwise parse and partly inflate (iCCP, zTXt, iTXt), never reach it; the kept
  ones are copied here as bytes, uninterpreted;
* libspng inflates exactly the image's rows (height x (stride + 1) bytes, or the seven
  Adam7 passes) into an output buffer of the header's size, and stops there.

Writing stays ours: pyspng only decodes, and imagecodecs' PNG encoder cannot insert
metadata chunks. numpy applies the one row filter used (Up) to a block of rows at a
time and zlib deflates it as it goes, so deflate is the only real cost and the extra
memory is a block's, not the image's.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overnet._atomic import write_bytes_atomic
from overnet.errors import InputError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEPT_CHUNKS = (b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"eXIf", b"pHYs")
_CHANNELS = {2: 3, 6: 4}  # PNG colour type -> channels (truecolour, truecolour + alpha)
#: PNG colour type -> the bit depths the specification allows for it
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_MAX_U31 = 2**31 - 1  # largest chunk length, width and height a PNG may state
HEADER_BYTES = len(SIGNATURE) + 8 + 13 + 4  # signature + IHDR chunk


@dataclass(frozen=True)
class PngHeader:
    """The IHDR fields of a PNG."""

    width: int
    height: int
    depth: int
    color: int
    interlace: int

    @property
    def png16_color(self) -> bool:
        """16-bit truecolour (RGB or RGBA): what Pillow would reduce to 8 bits."""
        return self.depth == 16 and self.color in _CHANNELS

    @property
    def channels(self) -> int:
        return _CHANNELS[self.color]


def read_header(data: bytes | memoryview, name: str = "the image") -> PngHeader:
    """The header of PNG ``data`` (its first 33 bytes suffice), validated: the signature,
    IHDR first and 13 bytes long with a matching CRC, sizes of 1..2^31-1, a colour type
    and bit depth the specification allows, no unknown compression, filter or interlace
    method. Anything else is an InputError naming ``name``."""
    data = memoryview(data)
    if bytes(data[:8]) != SIGNATURE:
        raise InputError(f"{name} is not a PNG file (no PNG signature)")
    if len(data) < 16:
        raise InputError(f"{name} is corrupt or truncated (it ends inside the PNG header)")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR":
        raise InputError(
            f"{name} is corrupt: its first PNG chunk is {_kind_name(kind)}, expected IHDR"
        )
    if length != 13:
        raise InputError(
            f"{name} is corrupt: its PNG header chunk (IHDR) is {length} bytes, expected 13; "
            "re-save it with another program"
        )
    if len(data) < HEADER_BYTES:
        raise InputError(f"{name} is corrupt or truncated (it ends inside the PNG header)")
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(body, zlib.crc32(b"IHDR")) != crc:
        raise InputError(f"{name} is corrupt: its PNG header (IHDR) fails its CRC check")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if not (0 < width <= _MAX_U31 and 0 < height <= _MAX_U31):
        raise InputError(f"{name} is corrupt: its PNG header states a size of {width}x{height}")
    if depth not in _DEPTHS.get(color, ()):
        raise InputError(
            f"{name} is corrupt: its PNG header states colour type {color} with bit depth "
            f"{depth}, which PNG does not allow"
        )
    if compression or filtering or interlace > 1:
        raise InputError(
            f"{name} is corrupt: its PNG header states unknown methods (compression "
            f"{compression}, filter {filtering}, interlace {interlace})"
        )
    return PngHeader(width, height, depth, color, interlace)


def _kind_name(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


def is_png16_color(source: str | Path | bytes) -> bool:
    """True for what claims to be a 16-bit truecolour (RGB/RGBA) PNG: the signature, then
    an IHDR chunk whose bit depth and colour type say so (a path or the file's bytes).

    Deliberately loose: a damaged header that still says 16-bit RGB is True, so that it
    goes to :func:`decode_png16` and is refused there, not read by Pillow as 8-bit."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:HEADER_BYTES])
    else:
        with open(source, "rb") as fh:
            head = fh.read(HEADER_BYTES)
    return (
        len(head) >= 26
        and head[:8] == SIGNATURE
        and head[12:16] == b"IHDR"
        and head[24] == 16
        and head[25] in _CHANNELS
    )


@dataclass(frozen=True)
class _Chunks:
    header: PngHeader
    image: bytes  # IHDR, the IDAT chunks and IEND as a PNG of its own
    kept: dict[bytes, bytes]
    idat_bytes: int  # compressed image data, all IDAT chunks together


def _walk(data: bytes, name: str) -> _Chunks:
    """Check every chunk (length, CRC, IDATs in one run, IEND present) and split the file
    into the image stream and the kept metadata chunks."""
    view = memoryview(data)
    header = read_header(view, name)
    parts: list[memoryview] = [view[:HEADER_BYTES]]
    kept: dict[bytes, bytes] = {}
    pos, idat_state, idat_bytes = HEADER_BYTES, 0, 0  # state 0: none yet, 1: in, 2: after
    left_out = False  # a chunk not handed to the decoder
    while True:
        if pos + 8 > len(view):
            raise InputError(f"{name} is corrupt or truncated (the PNG ends without IEND)")
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if length > _MAX_U31:
            raise InputError(f"{name} is corrupt: a PNG chunk states {length} bytes")
        if end > len(view):
            raise InputError(
                f"{name} is corrupt or truncated (the PNG ends inside its {_kind_name(kind)} chunk)"
            )
        body = view[pos + 8 : end - 4]
        (crc,) = struct.unpack(">I", view[end - 4 : end])
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            raise InputError(
                f"{name} is corrupt: its PNG chunk {_kind_name(kind)} fails its CRC check"
            )
        if kind == b"IDAT":
            if idat_state == 2:
                raise InputError(f"{name} is corrupt: its PNG image data (IDAT) is split")
            idat_state = 1
            idat_bytes += length
            parts.append(view[pos:end])
        else:
            idat_state = 2 if idat_state else 0
            if kind == b"IEND":
                parts.append(view[pos:end])
                break
            if kind == b"IHDR":
                raise InputError(f"{name} is corrupt: it has a second PNG header (IHDR)")
            if kind in KEPT_CHUNKS:
                kept[kind] = bytes(body)
            left_out = True
        pos = end
    if idat_state == 0:
        raise InputError(f"{name} is corrupt: the PNG has no image data (IDAT)")
    if not left_out and end == len(view) and isinstance(data, bytes):
        image = data  # nothing to leave out: no copy
    else:
        image = b"".join(parts)
    return _Chunks(header, image, kept, idat_bytes)


#: Adam7 passes: (first column, first row, column step, row step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip


def raw_size(header: PngHeader) -> int:
    """Bytes the image data of ``header`` inflates to: each row's filter byte and
    samples, for the whole image or the seven Adam7 passes."""
    pixel = header.channels * header.depth // 8
    passes = _ADAM7 if header.interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns = max(0, -(-(header.width - x0) // dx))
        rows = max(0, -(-(header.height - y0) // dy))
        if columns:
            total += rows * (1 + columns * pixel)
    return total


def max_compressed_size(raw: int) -> int:
    """The most compressed bytes an honest encoder writes for ``raw`` bytes: deflate's
    worst case is under 1/8 more than its input (fixed Huffman codes of at most 9 bits
    a byte; stored blocks add 5 bytes in 65535), plus headers."""
    return raw + raw // 8 + 1024


def decode_png16(
    data: bytes, *, name: str = "the image", max_pixels: int | None = None
) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """HxWx3/4 uint16 pixels and the kept metadata chunks of 16-bit truecolour PNG bytes.

    The header is checked against ``max_pixels`` before anything is decoded; every
    problem is an InputError naming ``name``.
    """
    from overnet._optional import require

    header = read_header(data, name)
    if not header.png16_color:
        raise InputError(
            f"{name}: expected a 16-bit RGB/RGBA PNG, got bit depth {header.depth} and "
            f"colour type {header.color}; 8-bit and gray PNGs are read by Pillow"
        )
    pixels = header.width * header.height
    if max_pixels is not None and pixels > max_pixels:
        raise InputError(
            f"{name} is {header.width}x{header.height} ({pixels / 1e6:.0f} MP), above the "
            f"{max_pixels / 1e6:.0f} MP limit that guards against decompression bombs; "
            "raise --max-pixels if the file is trusted"
        )
    chunks = _walk(data, name)
    raw = raw_size(header)
    if chunks.idat_bytes > max_compressed_size(raw):
        raise InputError(
            f"{name} is damaged or a decompression bomb: its compressed image data is "
            f"{chunks.idat_bytes} bytes, more than a {header.width}x{header.height} 16-bit PNG "
            f"can need ({raw} bytes uncompressed); re-save it"
        )
    pyspng = require("pyspng", "16-bit PNG decoding")
    try:
        decoded = pyspng.load(chunks.image)
    except (RuntimeError, ValueError, MemoryError) as exc:
        raise InputError(f"{name} is corrupt or truncated ({exc})") from exc
    expected = (header.height, header.width)
    if decoded.dtype != np.uint16 or decoded.ndim != 3 or decoded.shape[:2] != expected:
        raise InputError(
            f"{name}: the 16-bit PNG decoded to {decoded.shape} {decoded.dtype}, expected "
            f"{header.height}x{header.width} uint16; the file is damaged"
        )
    return decoded[:, :, : header.channels], chunks.kept


def read_png16(
    path: str | Path, max_pixels: int | None = None
) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """HxWx3/4 uint16 pixels and the kept metadata chunks of a 16-bit truecolour PNG."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror or exc})") from exc
    return decode_png16(data, name=str(path), max_pixels=max_pixels)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


#: raw (filtered) bytes deflated per step of encode_png16: its memory besides the input
_ENCODE_BLOCK_BYTES = 8 << 20
#: largest IDAT chunk written (the format allows 2^31-1 bytes)
_IDAT_MAX = 1 << 30


def _deflate_rows(pixels: np.ndarray) -> bytes:
    """The zlib stream of the rows, each with filter Up (filter byte 2), deflated a block
    of rows at a time (the same stream as one zlib.compress(..., 6) of all rows)."""
    height, width, channels = pixels.shape
    stride = width * channels * 2
    block = max(1, _ENCODE_BLOCK_BYTES // (stride + 1))
    deflate = zlib.compressobj(6)
    parts = []
    above = np.zeros(stride, np.uint8)  # the row before the first: zeros, by definition
    for start in range(0, height, block):
        rows = np.ascontiguousarray(pixels[start : start + block], ">u2")
        rows = rows.view(np.uint8).reshape(len(rows), stride)
        filtered = np.empty((len(rows), stride + 1), np.uint8)
        filtered[:, 0] = 2
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 wrap-around
        np.subtract(rows[0], above, out=filtered[0, 1:])
        above = rows[-1].copy()
        parts.append(deflate.compress(filtered))
    parts.append(deflate.flush())
    return b"".join(parts)


def encode_png16(pixels: np.ndarray, kept: dict[bytes, bytes] | None = None) -> bytes:
    """PNG bytes of an HxWx3/4 uint16 array (filter Up on every row, zlib level 6), with
    the ``kept`` metadata chunks (KEPT_CHUNKS only, in that order) before the image."""
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint16:
        raise InputError(f"expected HxWx3/4 uint16 pixels, got {pixels.shape} {pixels.dtype}")
    height, width, channels = pixels.shape
    if not (0 < width <= _MAX_U31 and 0 < height <= _MAX_U31):
        raise InputError(f"a PNG is 1 to 2^31-1 pixels per side, got {width}x{height}")
    color = 2 if channels == 3 else 6
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color, 0, 0, 0))]
    for kind in KEPT_CHUNKS:
        if kept and kind in kept:
            parts.append(_chunk(kind, kept[kind]))
    stream = memoryview(_deflate_rows(pixels))
    for start in range(0, len(stream), _IDAT_MAX):
        parts.append(_chunk(b"IDAT", stream[start : start + _IDAT_MAX]))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def write_png16(pixels: np.ndarray, path: str | Path, kept: dict[bytes, bytes] | None = None):
    """Write atomically (temp file in the same folder + rename)."""
    return write_bytes_atomic(path, encode_png16(pixels, kept))
