"""Profile shapes, engine file names, build options and the trtexec command text."""

from __future__ import annotations

from pathlib import Path

import pytest

from overnet.errors import InputError
from overnet.export.tensorrt import BuildOptions, Profile, engine_file_name, parse_shape
from overnet.export.tensorrt.trtexec import trtexec_args, trtexec_command
from overnet.formats.profile import onnx_file_name


def test_parse_shape():
    assert parse_shape("1x3x360x640") == (1, 3, 360, 640)
    assert parse_shape(" 2X3X32X48 ") == (2, 3, 32, 48)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1x3x32", "NxCxHxW"),
        ("axbxcxd", "NxCxHxW"),
        ("1x4x32x32", r"3 \(RGB\) channels, got C=4"),
        ("1x3x0x32", "at least 1"),
    ],
)
def test_bad_shapes(text, message):
    with pytest.raises(InputError, match=message):
        parse_shape(text, "--min")


def test_profile_order_is_checked_per_dimension():
    with pytest.raises(InputError, match=r"height must satisfy min <= opt <= max, got 64 / 32"):
        Profile.parse("1x3x64x64", "1x3x32x64", "1x3x128x128")
    with pytest.raises(InputError, match="batch"):
        Profile.parse("2x3x32x32", "1x3x32x32", "4x3x64x64")


def test_engine_file_name_carries_scale_precision_and_profile():
    profile = Profile.parse()
    assert engine_file_name(2, profile) == "overnet_x2_fp16_b1-1-1_32x32-360x640-1080x1920.engine"
    batched = Profile.parse("1x3x16x24", "2x3x64x64", "4x3x256x512")
    assert engine_file_name(2.5, batched) == "overnet_x2.5_fp16_b1-2-4_16x24-64x64-256x512.engine"
    assert onnx_file_name(3) == "overnet_x3_fp16.onnx"


def test_builds_differing_only_in_opt_get_different_files():
    a = Profile.parse("1x3x32x32", "1x3x360x640", "1x3x1080x1920")
    b = Profile.parse("1x3x32x32", "1x3x720x1280", "1x3x1080x1920")
    c = Profile.parse("1x3x32x32", "2x3x360x640", "4x3x1080x1920")
    d = Profile.parse("1x3x32x32", "4x3x360x640", "4x3x1080x1920")
    names = {engine_file_name(2, p) for p in (a, b, c, d)}
    assert len(names) == 4


def test_profile_round_trip():
    profile = Profile.parse("1x3x16x16", "1x3x64x64", "2x3x128x128")
    assert Profile.from_dict(profile.to_dict()) == profile


def test_bad_options():
    with pytest.raises(InputError, match="0..5"):
        BuildOptions(opt_level=7)
    with pytest.raises(InputError, match="ampere"):
        BuildOptions(hardware_compat="turing+")


def test_trtexec_default_command():
    command = trtexec_command(
        Path("out/overnet_x2_fp16.onnx"), Path("out/e.engine"), Profile.parse(), BuildOptions()
    )
    assert command == (
        "trtexec --onnx=out/overnet_x2_fp16.onnx --saveEngine=out/e.engine --stronglyTyped "
        "--minShapes=lr:1x3x32x32 --optShapes=lr:1x3x360x640 --maxShapes=lr:1x3x1080x1920"
    )
    assert "--fp16" not in command  # strongly typed: precision comes from the ONNX


def test_trtexec_all_options():
    options = BuildOptions(
        workspace=4 << 30,
        opt_level=5,
        timing_cache=Path("cache dir/t.cache"),
        version_compatible=True,
        hardware_compat="ampere+",
    )
    args = trtexec_args(Path("a.onnx"), Path("b.engine"), Profile.parse(), options)
    assert args[-5:] == [
        "--memPoolSize=workspace:4096M",
        "--builderOptimizationLevel=5",
        "--timingCacheFile=cache dir/t.cache",
        "--versionCompatible",
        "--hardwareCompatibilityLevel=ampere+",
    ]
    line = trtexec_command(Path("a.onnx"), Path("b.engine"), Profile.parse(), options)
    assert "'--timingCacheFile=cache dir/t.cache'" in line  # shell-quoted
    same_cc = BuildOptions(hardware_compat="same-cc")
    args = trtexec_args(Path("a.onnx"), Path("b.engine"), Profile.parse(), same_cc)
    assert args[-1] == "--hardwareCompatibilityLevel=sameComputeCapability"
