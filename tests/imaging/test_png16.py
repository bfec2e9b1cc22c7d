"""16-bit RGB(A) PNGs keep all 16 bits through read, upscale and write."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from overnet.errors import InputError
from overnet.imaging.png16 import (
    SIGNATURE,
    decode_png16,
    encode_png16,
    is_png16_color,
    read_png16,
)

ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))  # fmt: skip


def _filter_rows(pixels: np.ndarray) -> bytes:
    """Rows of ``pixels`` as PNG scanlines, cycling through all five row filters."""
    h, _, c = pixels.shape
    rows = np.ascontiguousarray(pixels.astype(">u2")).view(np.uint8).reshape(h, -1).astype(int)
    bpp = 2 * c
    out = []
    for y in range(h):
        cur = rows[y]
        up = rows[y - 1] if y else np.zeros_like(cur)
        left = np.concatenate([np.zeros(bpp, int), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, int), up[:-bpp]])
        kind = y % 5
        if kind == 0:
            pred = np.zeros_like(cur)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        out.append(bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes())
    return b"".join(out)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _reference_png(
    pixels: np.ndarray,
    chunks: dict[bytes, bytes] | None = None,
    *,
    interlace: bool = False,
    ihdr_extra: bytes = b"",
    idat: bytes | None = None,
) -> bytes:
    """An independent encoder that cycles through all five row filters (in each Adam7
    pass when interlaced); ``idat`` replaces the compressed image data."""
    h, w, c = pixels.shape
    if interlace:
        raw = b"".join(
            _filter_rows(pixels[y0::dy, x0::dx])
            for x0, y0, dx, dy in ADAM7
            if pixels[y0::dy, x0::dx].size
        )
    else:
        raw = _filter_rows(pixels)
    color = 2 if c == 3 else 6
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, int(interlace)) + ihdr_extra
    data = SIGNATURE + chunk(b"IHDR", ihdr)
    for kind, body in (chunks or {}).items():
        data += chunk(kind, body)
    body = zlib.compress(raw) if idat is None else idat
    return data + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [3, 4])
def test_reader_undoes_every_filter_and_writer_round_trips(tmp_path, channels):
    pixels = np.random.default_rng(channels).integers(0, 65536, (11, 7, channels), np.uint16)
    path = tmp_path / "ref.png"
    path.write_bytes(_reference_png(pixels, {b"iCCP": b"profile\0\0xyz"}))
    assert is_png16_color(path)
    decoded, kept = read_png16(path)
    np.testing.assert_array_equal(decoded, pixels)
    assert kept == {b"iCCP": b"profile\0\0xyz"}
    again = tmp_path / "again.png"
    again.write_bytes(encode_png16(decoded, kept))
    np.testing.assert_array_equal(read_png16(again)[0], pixels)


def test_truncated_png16_is_a_clear_error(tmp_path):
    pixels = np.zeros((20, 20, 3), np.uint16)
    data = _reference_png(pixels)
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_png16(path)


def test_cli_keeps_16_bit_rgb(tmp_path, x2_onnx):
    from overnet.cli import main

    pixels = np.random.default_rng(0).integers(0, 65536, (9, 10, 3), np.uint16)
    src = tmp_path / "in"
    src.mkdir()
    (src / "deep.png").write_bytes(_reference_png(pixels, {b"iCCP": b"p\0\0abc"}))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["upscale", str(src), "-o", str(out), "--model", str(x2_onnx), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    upscaled, kept = read_png16(out / "deep.png")
    assert upscaled.shape == (18, 20, 3) and upscaled.dtype == np.uint16
    assert kept[b"iCCP"] == b"p\0\0abc"
    assert len(np.unique(upscaled % 257)) > 1  # real 16-bit values, not 8-bit scaled up
    jpg = CliRunner().invoke(
        main,
        [
            "upscale",
            str(src),
            "-o",
            str(out),
            "--model",
            str(x2_onnx),
            "--no-progress",
            "--format",
            "jpg",
        ],
    )
    assert jpg.exit_code == 1 and "written as PNG only" in jpg.output


def _tiff16_rgb(height: int, width: int) -> bytes:
    """A minimal uncompressed 16-bit RGB TIFF (Pillow reads it as 8-bit RGB)."""
    data = np.zeros((height, width, 3), "<u2").tobytes()
    entries = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, 3, -1),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, -2),
        (277, 3, 1, 3),
        (278, 3, 1, height),
        (279, 4, 1, len(data)),
        (284, 3, 1, 1),
    ]
    bits_at = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, count, value in entries:
        value = {-1: bits_at, -2: bits_at + 6}.get(value, value)
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + struct.pack("<3H", 16, 16, 16) + data


def test_16_bit_rgb_tiff_is_refused_not_silently_reduced(tmp_path):
    from overnet.imaging.files import load_image

    path = tmp_path / "deep.tif"
    path.write_bytes(_tiff16_rgb(5, 6))
    with pytest.raises(InputError, match="16-bit RGB TIFF"):
        load_image(path)


# ---- the decoder's bounds and robustness ------------------------------------------------


@pytest.mark.parametrize("channels", [3, 4])
def test_interlaced_png16_decodes_equal_to_non_interlaced(channels):
    pixels = np.random.default_rng(7).integers(0, 65536, (23, 17, channels), np.uint16)
    flat = decode_png16(_reference_png(pixels))[0]
    adam7 = decode_png16(_reference_png(pixels, interlace=True))[0]
    np.testing.assert_array_equal(adam7, pixels)
    np.testing.assert_array_equal(flat, adam7)


def test_14_byte_ihdr_is_an_input_error_not_a_struct_error(tmp_path):
    data = _reference_png(np.zeros((4, 5, 3), np.uint16), ihdr_extra=b"\x00")
    with pytest.raises(InputError, match="IHDR.* 14 bytes, expected 13"):
        decode_png16(data)
    path = tmp_path / "long.png"
    path.write_bytes(data)
    assert is_png16_color(path)  # still routed here, not to Pillow's 8-bit reading
    with pytest.raises(InputError, match=str(path)):
        read_png16(path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:20], "truncated"),
        (lambda d: d[:8] + struct.pack(">I", 2**31 + 5) + d[12:], "IHDR"),
        (lambda d: d[:29] + b"\0\0\0\0" + d[33:], "CRC"),  # IHDR's CRC
        (lambda d: d[:-20] + bytes([d[-20] ^ 1]) + d[-19:], "CRC"),  # inside IDAT
        (lambda d: d[:-12], "without IEND"),
        (lambda d: d.replace(b"IDAT", b"IDAx"), "no image data|CRC"),
        (lambda d: d[:24] + b"\x10\x07" + d[26:], "colour type 7|CRC"),
    ],
    ids=["cut-header", "huge-length", "ihdr-crc", "idat-crc", "no-iend", "no-idat", "bad-type"],
)
def test_damaged_png16_is_always_an_input_error(damage, message):
    data = damage(_reference_png(np.ones((6, 7, 3), np.uint16)))
    with pytest.raises(InputError, match=message):
        decode_png16(data, name="x.png")


def test_random_damage_never_escapes_as_another_exception():
    pixels = np.random.default_rng(1).integers(0, 65536, (9, 11, 4), np.uint16)
    good = _reference_png(pixels, {b"gAMA": b"\0\0\xb1\x8f"}, interlace=True)
    rng = np.random.default_rng(2)
    for _ in range(300):
        data = bytearray(good)
        for at in rng.integers(0, len(data), rng.integers(1, 4)):
            data[at] = rng.integers(0, 256)
        data = bytes(data[: rng.integers(len(data) // 2, len(data) + 1)])
        with contextlib.suppress(InputError):
            decode_png16(data)


def test_pixel_limit_is_checked_from_the_header_before_any_inflate():
    header = struct.pack(">IIBBBBB", 60_000, 60_000, 16, 2, 0, 0, 0)
    data = SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", b"not even zlib")
    with pytest.raises(InputError, match="3600 MP.*decompression bombs"):
        decode_png16(data, max_pixels=100_000_000)


def test_one_pixel_png16_with_64_mib_of_image_data_is_refused_without_inflating():
    idat = zlib.compress(b"\0" * (64 << 20), 9)  # 1x1 RGB48 needs 7 bytes
    data = _reference_png(np.zeros((1, 1, 3), np.uint16), idat=idat)
    start = time.perf_counter()
    with pytest.raises(InputError, match="decompression bomb"):
        decode_png16(data)
    assert time.perf_counter() - start < 0.5  # a header and chunk walk, no inflate


def _trailing_bomb(side: int, extra_mib: int) -> bytes:
    """A black side x side RGB48 PNG whose one zlib stream goes on with ``extra_mib`` MiB
    of zeros after the image's rows (a valid stream: right Adler-32 at the end). Built
    from one full-flush segment repeated, so making it costs no 1 GiB deflate."""
    rows = bytes(side * (1 + side * 6))
    deflate = zlib.compressobj(9)
    stream = deflate.compress(rows) + deflate.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(16 << 20)
    segment = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    check = zlib.adler32(rows)
    for _ in range(extra_mib // 16):
        check = zlib.adler32(zeros, check)
    end = deflate.flush()
    stream += segment * (extra_mib // 16) + end[:-4] + struct.pack(">I", check)
    return _reference_png(np.zeros((side, side, 3), np.uint16), idat=stream)


_BOMB_CHILD = """
import sys, time
from pathlib import Path
import pyspng
from overnet.imaging.png16 import decode_png16

def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

data = Path(sys.argv[1]).read_bytes()
base = hwm()
start = time.perf_counter()
pixels, _ = decode_png16(data)
print(time.perf_counter() - start, hwm() - base, pixels.shape)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_data_after_the_last_row_is_never_inflated(tmp_path):
    """1 GiB of zeros after a 1024x1024 image's rows, within the compressed-size bound:
    the decoder stops at the last row (libpng would inflate it all: 2.2 s here, and the
    former decoder held the whole 1 GiB). Run in a child for a clean peak RSS."""
    path = tmp_path / "trailing.png"
    path.write_bytes(_trailing_bomb(1024, 1024))
    done = subprocess.run(
        [sys.executable, "-c", _BOMB_CHILD, str(path)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seconds, grown, shape = done.stdout.split(maxsplit=2)
    assert shape.strip() == "(1024, 1024, 3)"
    assert int(grown) < 64 << 20  # the 8 MiB RGBA decode and a 1 MB copy, not 1 GiB
    assert float(seconds) < 1.0


def test_bytes_and_path_read_the_same():
    pixels = np.random.default_rng(3).integers(0, 65536, (5, 6, 3), np.uint16)
    data = _reference_png(pixels, {b"pHYs": b"\0\0\x0b\x13\0\0\x0b\x13\x01"})
    assert is_png16_color(data)
    decoded, kept = decode_png16(data)
    np.testing.assert_array_equal(decoded, pixels)
    assert kept == {b"pHYs": b"\0\0\x0b\x13\0\0\x0b\x13\x01"}


def test_writer_splits_nothing_below_a_gigabyte_and_round_trips_large_rows():
    pixels = np.random.default_rng(4).integers(0, 65536, (3, 40_000, 3), np.uint16)
    data = encode_png16(pixels)
    assert data.count(b"IDAT") == 1
    np.testing.assert_array_equal(decode_png16(data)[0], pixels)
