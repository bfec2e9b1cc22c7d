"""16-bit RGB(A) PNGs keep all 16 bits through read, upscale and write."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from overnet.errors import InputError
from overnet.imaging.png16 import SIGNATURE, encode_png16, is_png16_color, read_png16


def _reference_png(pixels: np.ndarray, chunks: dict[bytes, bytes] | None = None) -> bytes:
    """An independent encoder that cycles through all five row filters."""
    h, w, c = pixels.shape
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

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    color = 2 if c == 3 else 6
    data = SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0))
    for kind, body in (chunks or {}).items():
        data += chunk(kind, body)
    return data + chunk(b"IDAT", zlib.compress(b"".join(out))) + chunk(b"IEND", b"")


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
