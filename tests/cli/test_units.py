"""`overnet.units`: the one memory syntax (MB = 10^6, MiB = 2^20) and the one size syntax."""

from __future__ import annotations

import pytest

from overnet.errors import InputError
from overnet.units import format_bytes, format_memory, parse_memory, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1B", 1),
        ("1KB", 10**3),
        ("1MB", 10**6),
        ("1GB", 10**9),
        ("1TB", 10**12),
        ("1KiB", 2**10),
        ("1MiB", 2**20),
        ("1GiB", 2**30),
        ("1TiB", 2**40),
    ],
)
def test_every_unit(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5GB", 1_500_000_000),
        ("4.35GB", 4_350_000_000),  # exact: no binary floating point on the way
        ("0.5KiB", 512),
        (".5MB", 500_000),
        ("800mb", 800_000_000),
        ("4gib", 4 * 2**30),
        ("4 GiB", 4 * 2**30),
        (" 2Tb ", 2 * 10**12),
        ("1.5B", 1),  # whole bytes
    ],
)
def test_decimals_case_and_spaces(text, expected):
    assert parse_memory(text) == expected


def test_python_ints_are_bytes():
    assert parse_memory(4096) == 4096


def test_a_bare_number_is_refused_naming_the_forms():
    with pytest.raises(InputError) as err:
        parse_memory("4096")
    text = str(err.value)
    assert "'4096'" in text and "bare number" in text
    for form in ("1.5GB", "800MB", "4GiB", "1000^n", "1024^n"):
        assert form in text


@pytest.mark.parametrize("text", ["4G", "512M", "lots", "", "GB", "1.5 gigabytes", "1e3MB"])
def test_unknown_forms_are_refused(text):
    with pytest.raises(InputError, match="1.5GB, 800MB or 4GiB"):
        parse_memory(text)


@pytest.mark.parametrize("value", ["-1GB", "0MB", "0.1B", "-0.5GiB", 0, -5])
def test_zero_and_negative_are_refused(value):
    with pytest.raises(InputError, match="at least 1 byte"):
        parse_memory(value)


@pytest.mark.parametrize("value", [True, 1.5e9, None])
def test_other_python_types_are_refused(value):
    with pytest.raises(InputError):
        parse_memory(value)


def test_format_bytes():
    assert format_bytes(1_500_000_000) == "1.5 GB"
    assert format_bytes(999) == "999 B"
    assert format_bytes(4 * 2**30) == "4.29 GB"
    assert format_bytes(3 * 10**13) == "30 TB"


@pytest.mark.parametrize("n", [4 * 2**30, 2**20, 1_500_000_000, 10**12, 1234, 1, 3 * 2**40])
def test_format_memory_reads_back_exactly(n):
    assert parse_memory(format_memory(n)) == n


def test_format_memory_prefers_the_largest_exact_unit():
    assert format_memory(4 * 2**30) == "4GiB"
    assert format_memory(1_500_000_000) == "1500MB"
    assert format_memory(1234) == "1234B"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("320x180", (320, 180)), (" 16X8 ", (16, 8)), ("1920 x 1080", (1920, 1080)), ((4, 3), (4, 3))],
)
def test_parse_size_is_width_by_height(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["320", "axb", "", "1x2x3", "320x", "-1x5", "3.5x2", "320*180"])
def test_parse_size_refuses_other_forms(text):
    with pytest.raises(InputError, match="WIDTHxHEIGHT such as 320x180"):
        parse_size(text)


@pytest.mark.parametrize("text", ["0x5", "5x0", (0, 3)])
def test_parse_size_refuses_empty_sizes(text):
    with pytest.raises(InputError, match="at least 1 pixel"):
        parse_size(text)
