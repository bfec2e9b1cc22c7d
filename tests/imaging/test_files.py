"""Image files as paths or bytes: probe, load, encode and save give the same results on
both; only the accepted formats are parsed; every failure is an InputError naming the
image; outputs too large for their format are refused before any work."""

from __future__ import annotations

import contextlib
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageCms

from overnet.errors import InputError
from overnet.imaging.files import (
    OUTPUT_LIMITS,
    ImageHeader,
    Png16Image,
    check_output_fits,
    encode_image,
    load_image,
    probe_image,
    save_image,
)
from overnet.imaging.png16 import SIGNATURE, encode_png16

rng = np.random.default_rng(11)


def _noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).convert(mode)


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _palette_with_transparency() -> bytes:
    image = _noise(20, 14).quantize(16, dither=Image.Dither.NONE)
    return _encoded(image, "PNG", transparency=3)


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
_EXIF = Image.Exif()
_EXIF[0x0112] = 6  # orientation: rotate 90
#: name -> (file bytes, output --format name)
SAMPLES = {
    "png-rgb": (_encoded(_noise(17, 11), "PNG", dpi=(300, 300)), "png"),
    "png-rgba": (_encoded(_noise(9, 13, "RGBA"), "PNG"), "png"),
    "png-palette": (_palette_with_transparency(), "png"),
    "png-16-gray": (_encoded(Image.fromarray(rng.integers(0, 65535, (7, 8), np.uint16)), "PNG"),
                    "png"),
    "jpeg-exif-icc": (
        _encoded(_noise(24, 16), "JPEG", quality=90, exif=_EXIF, icc_profile=_SRGB),
        "jpg",
    ),
    "jpeg-cmyk": (_encoded(_noise(8, 8, "CMYK"), "JPEG"), "jpg"),
    "webp-rgba": (_encoded(_noise(12, 10, "RGBA"), "WEBP", lossless=True), "webp"),
    "tiff-rgb": (_encoded(_noise(10, 6), "TIFF", compression="tiff_deflate"), "tiff"),
    "bmp-rgb": (_encoded(_noise(5, 9), "BMP"), "png"),
    "png16-rgb": (
        encode_png16(rng.integers(0, 65536, (6, 5, 3), np.uint16), {b"gAMA": b"\0\0\xb1\x8f"}),
        "png",
    ),
}  # fmt: skip


def _pixels(image) -> np.ndarray:
    return image.pixels if isinstance(image, Png16Image) else np.asarray(image)


@pytest.mark.parametrize("sample", list(SAMPLES))
def test_bytes_and_path_give_the_same_header_pixels_and_encoded_bytes(tmp_path, sample):
    data, fmt = SAMPLES[sample]
    path = tmp_path / f"in-{sample}"
    path.write_bytes(data)
    assert probe_image(path) == probe_image(data)
    from_path, from_bytes = load_image(path), load_image(data)
    assert type(from_path) is type(from_bytes)
    np.testing.assert_array_equal(_pixels(from_path), _pixels(from_bytes))
    if isinstance(from_path, Image.Image):
        assert from_path.mode == from_bytes.mode and from_path.info == from_bytes.info
    if sample == "jpeg-cmyk":
        return  # not writable as is (the upscaler refuses CMYK; test below)
    encoded = encode_image(from_bytes, fmt, 90)
    out = save_image(from_path, tmp_path / f"out-{sample}", fmt, 90)
    assert out.read_bytes() == encoded
    if fmt in ("png", "tiff"):  # lossless: the same pixels come back
        np.testing.assert_array_equal(_pixels(load_image(encoded)), _pixels(from_bytes))


def test_encoding_keeps_icc_exif_dpi_and_transparency():
    jpeg = load_image(SAMPLES["jpeg-exif-icc"][0])
    for fmt in ("jpg", "png", "webp", "tiff"):
        back = load_image(encode_image(jpeg, fmt))
        assert back.info.get("icc_profile") == _SRGB, fmt
        if fmt == "tiff":  # Pillow applies a TIFF's orientation as it reads it
            assert back.size == (16, 24)
        else:
            assert back.getexif().get(0x0112) == 6, fmt
    png = load_image(SAMPLES["png-rgb"][0])
    assert load_image(encode_image(png, "png")).info["dpi"] == pytest.approx((300, 300), abs=0.01)
    palette = load_image(encode_image(load_image(SAMPLES["png-palette"][0]), "png"))
    assert palette.mode == "P" and palette.info["transparency"] == 3
    deep = load_image(SAMPLES["png16-rgb"][0])
    assert isinstance(deep, Png16Image) and deep.chunks == {b"gAMA": b"\0\0\xb1\x8f"}
    assert load_image(encode_image(deep, "png")).chunks == deep.chunks


def test_probe_reads_the_header_only():
    good = SAMPLES["png-rgb"][0]
    cut = good[: len(good) - 30]  # header intact, image data cut
    assert probe_image(cut) == ImageHeader("PNG", 17, 11, "RGB")
    with pytest.raises(InputError, match="the image is corrupt or truncated"):
        load_image(cut)
    header = probe_image(SAMPLES["png16-rgb"][0])
    assert header == ImageHeader("PNG", 5, 6, "RGB", png16=True) and header.pixels == 30
    assert probe_image(SAMPLES["jpeg-cmyk"][0]).mode == "CMYK"


def test_multi_picture_files_report_their_frames_and_mpo_reads_as_jpeg():
    frames = [_noise(8, 6) for _ in range(3)]
    tiff = _encoded(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    assert probe_image(tiff).frames == 2  # more than one (counting pages is not cheap)
    np.testing.assert_array_equal(np.asarray(load_image(tiff)), np.asarray(frames[0]))
    mpo = _encoded(frames[0], "MPO", save_all=True, append_images=frames[1:2], quality=95)
    header = probe_image(mpo)
    assert header.format == "JPEG" and header.frames == 2


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (_encoded(_noise(10, 10, "P"), "GIF"), "GIF"),
        (_encoded(_noise(16, 16), "ICO"), "ICO"),
        (_encoded(_noise(10, 10), "PCX"), "PCX"),
        (_encoded(_noise(10, 10), "PPM"), "PNM"),
        (b"8BPS\x00\x01" + bytes(40), "PSD"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "EPS"),
    ],
    ids=["gif", "ico", "pcx", "ppm", "psd", "eps"],
)
def test_formats_outside_the_accepted_ones_are_refused_by_name(tmp_path, data, kind):
    path = tmp_path / "looks-like.png"
    path.write_bytes(data)
    for source in (path, data):
        with pytest.raises(InputError, match=f"{kind}.*not an accepted image format"):
            probe_image(source)
        with pytest.raises(InputError, match="PNG, JPEG, WebP, TIFF or BMP"):
            load_image(source)


def test_a_refused_format_is_never_parsed(monkeypatch):
    def parse(self):
        raise AssertionError("the GIF parser was run")

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_open", parse)
    with pytest.raises(InputError, match="GIF"):
        load_image(_encoded(_noise(4, 4, "P"), "GIF"))


def _header_bomb(width: int, height: int, depth: int = 8) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 1000)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("depth", [8, 16])
def test_too_many_pixels_is_refused_from_the_header(depth):
    data = _header_bomb(60_000, 60_000, depth)
    start = time.perf_counter()
    for call in (probe_image, load_image):
        with pytest.raises(InputError, match=r"decompression bombs.*--max-pixels"):
            call(data, 100_000_000)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(InputError, match="upload.png is 40x30"):
        probe_image(_encoded(_noise(40, 30), "PNG"), 1199, name="upload.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some text, not an image at all", "not an image Pillow can read"),
        (SAMPLES["jpeg-exif-icc"][0][:200], "corrupt or truncated"),
        (SAMPLES["png-rgb"][0][:30], "corrupt or truncated"),
        (SAMPLES["webp-rgba"][0][:40], "corrupt or truncated"),
        (SAMPLES["tiff-rgb"][0][:60], "corrupt or truncated"),
        (SAMPLES["bmp-rgb"][0][:70], "corrupt or truncated"),
    ],
    ids=["empty", "text", "jpeg-cut", "png-cut", "webp-cut", "tiff-cut", "bmp-cut"],
)
def test_bad_files_are_input_errors_naming_the_image(tmp_path, data, message):
    with pytest.raises(InputError, match=message) as info:
        load_image(data, name="upload.bin")
    assert "upload.bin" in str(info.value)
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="image not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="got a directory"):
        probe_image(tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on damaged EXIF
@pytest.mark.parametrize("sample", [s for s in SAMPLES if s != "png16-rgb"])
def test_random_damage_is_an_input_error_or_an_image(sample):
    """Whatever Pillow or a codec raises on a damaged file (struct.error, IndexError,
    zlib.error, SyntaxError, ...) comes out as an InputError."""
    good = SAMPLES[sample][0]
    damage = np.random.default_rng(len(sample))
    for _ in range(60):
        data = bytearray(good)
        for at in damage.integers(0, len(data), damage.integers(1, 5)):
            data[at] = damage.integers(0, 256)
        with contextlib.suppress(InputError):
            load_image(bytes(data[: damage.integers(8, len(data) + 1)]))


def test_16_bit_rgb_tiff_is_refused_by_the_probe():
    header = struct.pack("<2sHI", b"II", 42, 8)
    entries = [(256, 3, 1, 2), (257, 3, 1, 2), (258, 3, 3, 0), (262, 3, 1, 2), (277, 3, 1, 3)]
    ifd = struct.pack("<H", len(entries) + 2)
    bits_at = 8 + 2 + 12 * (len(entries) + 2) + 4
    for tag, kind, count, value in entries:
        value = bits_at if tag == 258 else value
        ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<HHII", 273, 4, 1, bits_at + 6) + struct.pack("<HHII", 279, 4, 1, 24)
    data = header + ifd + struct.pack("<I", 0) + struct.pack("<3H", 16, 16, 16) + bytes(24)
    with pytest.raises(InputError, match="16-bit RGB TIFF"):
        probe_image(data)


def test_cmyk_jpeg_loads_as_cmyk_and_the_upscaler_refuses_it():
    from overnet.runtime.upscaler import Upscaler
    from tests.runtime.doubles import NearestSession

    image = load_image(SAMPLES["jpeg-cmyk"][0])
    assert image.mode == "CMYK" and image.format == "JPEG"
    with pytest.raises(InputError, match="CMYK images are not supported"):
        Upscaler(NearestSession(2)).upscale(image)


# ---- output limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "fits", "too_big"),
    [
        ("webp", (16383, 2), (16384, 2)),
        ("jpg", (3, 65500), (3, 65501)),
        ("png", (2**31 - 1, 1), (2**31, 1)),
        ("tiff", (40_000, 26_000), (40_000, 27_000)),  # 4.16 vs 4.32 GB at 4 bytes/pixel
    ],
)
def test_check_output_fits_the_format_limits(fmt, fits, too_big):
    check_output_fits(fmt, *fits)
    with pytest.raises(InputError) as info:
        check_output_fits(fmt, *too_big, name="big.png")
    message = str(info.value)
    assert message.startswith("big.png: the ") and f"{too_big[0]}x{too_big[1]}" in message
    assert "--format" in message and "--scale" in message


def test_limits_are_exported_and_tiff_counts_the_mode():
    assert OUTPUT_LIMITS["webp"].max_side == 16383 and OUTPUT_LIMITS["jpg"].max_side == 65500
    assert OUTPUT_LIMITS["tiff"].max_bytes == 2**32
    check_output_fits("tiff", 40_000, 30_000, mode="RGB")  # 3.6 GB
    with pytest.raises(InputError, match=r"4\.5 GiB.*4 GiB.*classic TIFF"):
        check_output_fits("tiff", 40_000, 30_000)  # unknown mode: 4 bytes a pixel
    with pytest.raises(InputError, match="--format must be one of"):
        check_output_fits("gif", 10, 10)


def test_encode_refuses_an_oversized_output_before_encoding():
    wide = Image.new("RGB", (16384, 1))
    with pytest.raises(InputError, match="16383 pixels per side"):
        encode_image(wide, "webp")
    assert encode_image(wide, "png")[:8] == SIGNATURE


def test_a_turned_tiff_probes_at_the_size_it_decodes_to():
    """Pillow applies a TIFF's orientation as it decodes (11+ already reports the turned
    size at open, 10.x only after loading): the header says what load_image returns."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encoded(_noise(24, 16), "TIFF", exif=exif, compression="tiff_deflate")
    header = probe_image(data)
    assert (header.width, header.height) == (16, 24) == load_image(data).size
