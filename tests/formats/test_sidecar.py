"""Engine sidecar: write/read, compatibility refusals with the rebuild command, damaged files."""

from __future__ import annotations

import hashlib
import json

import pytest

from overnet.errors import InputError
from overnet.formats.sidecar import (
    EngineMismatchError,
    EngineSidecar,
    check_compatible,
    check_engine_file,
    compatibility_problems,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

REBUILD = "overnet export --format tensorrt --weights /w/x2.pth --scales 2 -o /out --overwrite"


def make_sidecar(data: bytes = b"engine-bytes", **options) -> EngineSidecar:
    build = {"version_compatible": False, "hardware_compat": "none"}
    build.update(options)
    return EngineSidecar(
        tensorrt_version="11.1.0.6",
        gpu_name="NVIDIA A10",
        compute_capability="8.6",
        precision="fp16",
        scale=2.0,
        upscale=3,
        profile={"min": [1, 3, 32, 32], "opt": [1, 3, 360, 640], "max": [1, 3, 1080, 1920]},
        input_name="lr",
        output_name="sr",
        onnx_sha256="0" * 64,
        engine_bytes=len(data),
        engine_sha256=hashlib.sha256(data).hexdigest(),
        build_options=build,
        build_seconds=12.5,
        rebuild_command=REBUILD,
    )


def test_write_read_round_trip(tmp_path):
    engine = tmp_path / "overnet_x2_fp16_b1-1-1_32x32-360x640-1080x1920.engine"
    engine.write_bytes(b"engine-bytes")
    path = write_sidecar(engine, make_sidecar())
    assert path == sidecar_path(engine) == tmp_path / (engine.name + ".json")
    data = json.loads(path.read_text())
    for key in (
        "tensorrt_version",
        "gpu_name",
        "compute_capability",
        "precision",
        "profile",
        "scale",
        "upscale",
        "onnx_sha256",
        "build_options",
        "build_seconds",
    ):
        assert key in data
    assert read_sidecar(engine) == make_sidecar()
    assert not list(tmp_path.glob("*.part"))  # atomic write leaves nothing behind
    assert engine.read_bytes() == b"engine-bytes"  # the engine stays a plain plan


def test_missing_and_invalid_sidecar(tmp_path):
    engine = tmp_path / "a.engine"
    engine.write_bytes(b"x")
    with pytest.raises(InputError, match=r"no sidecar a\.engine\.json.*verify=False"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(InputError, match="not a valid overnet engine sidecar"):
        read_sidecar(engine)


def test_same_version_and_gpu_is_accepted():
    assert compatibility_problems(make_sidecar(), "11.1.0.6", "NVIDIA A10", "8.6") == []


@pytest.mark.parametrize(
    ("version", "gpu", "cc", "message"),
    [
        ("11.2.0.1", "NVIDIA A10", "8.6", "built with TensorRT 11.1.0.6, this is TensorRT 11.2"),
        ("11.1.0.6", "NVIDIA A40", "8.6", "built on NVIDIA A10 .compute capability 8.6."),
        ("11.1.0.6", "NVIDIA H100", "9.0", "this GPU is NVIDIA H100 .9.0."),
    ],
)
def test_mismatch_is_refused_with_rebuild_command(version, gpu, cc, message):
    with pytest.raises(EngineMismatchError, match=message) as info:
        check_compatible("x2.engine", make_sidecar(), version, gpu, cc)
    assert REBUILD in str(info.value)
    assert str(info.value).startswith("x2.engine cannot run here")


def test_version_compatible_engine_runs_on_newer_tensorrt_only():
    sidecar = make_sidecar(version_compatible=True)
    assert compatibility_problems(sidecar, "11.3.0.2", "NVIDIA A10", "8.6") == []
    assert compatibility_problems(sidecar, "11.1.0.6", "NVIDIA A10", "8.6") == []
    problems = compatibility_problems(sidecar, "11.0.1.0", "NVIDIA A10", "8.6")
    assert "needs TensorRT 11.1.0.6 or a newer 11.x" in problems[0]


@pytest.mark.parametrize(
    ("built", "running", "ok"),
    [
        ("10.13.2.6", "10.13.2.6", True),
        ("10.13.2.6", "10.14.1.0", True),  # same major, newer minor
        ("10.13.2.6", "10.12.0.1", False),  # older minor
        ("10.13.2.6", "11.1.0.6", True),  # documented: 10 -> 11
        ("8.6.1", "10.0.1.6", True),  # documented: 8 -> 10
        ("8.6.1", "9.3.0.1", False),  # 8 -> 9 is not in the support matrix's pairs
        ("8.6.1", "11.1.0.6", False),  # documented as unsupported
        ("8.5.3", "10.0.1.6", False),  # version compatibility starts with 8.6
        ("11.1.0.6", "12.0.0.1", False),  # any newer major is not enough
        ("11.1.0.6", "10.13.2.6", False),  # never older
    ],
)
def test_version_compatibility_across_versions(built, running, ok):
    sidecar = make_sidecar(version_compatible=True)
    sidecar.tensorrt_version = built
    problems = compatibility_problems(sidecar, running, "NVIDIA A10", "8.6")
    assert (problems == []) is ok, problems


def test_hardware_compat_levels():
    ampere = make_sidecar(hardware_compat="ampere+")
    assert compatibility_problems(ampere, "11.1.0.6", "NVIDIA H100", "9.0") == []
    assert "Ampere or newer" in compatibility_problems(ampere, "11.1.0.6", "Tesla T4", "7.5")[0]
    same = make_sidecar(hardware_compat="same-cc")
    assert compatibility_problems(same, "11.1.0.6", "NVIDIA RTX A6000", "8.6") == []
    assert "compute capability 8.6" in compatibility_problems(same, "11.1.0.6", "L4", "8.9")[0]


def test_truncated_and_replaced_engine(tmp_path):
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"engine-bytes")
    sidecar = make_sidecar()
    assert check_engine_file(engine, sidecar) == b"engine-bytes"
    engine.write_bytes(b"engine-by")
    with pytest.raises(InputError, match=r"9 bytes but was written as 12 bytes.*truncated"):
        check_engine_file(engine, sidecar)
    engine.write_bytes(b"engine-BYTES")
    with pytest.raises(InputError, match="does not match the sha256") as info:
        check_engine_file(engine, sidecar)
    assert REBUILD in str(info.value)


def _write_raw(tmp_path, **changes):
    engine = tmp_path / "x2.engine"
    engine.write_bytes(b"engine-bytes")
    data = json.loads(make_sidecar().to_json())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    sidecar_path(engine).write_text(json.dumps(data))
    return engine


def test_sidecar_from_a_newer_overnet_is_refused_with_what_to_do(tmp_path):
    from overnet.formats.sidecar import SIDECAR_FORMAT

    newer = SIDECAR_FORMAT + 1
    # a newer layout may rename fields: the format is checked before the fields are
    engine = _write_raw(tmp_path, format=newer, gpu_name=None, gpu={"name": "NVIDIA A10"})
    with pytest.raises(InputError) as info:
        read_sidecar(engine)
    message = str(info.value)
    assert f"format {newer}" in message and "newer overnet" in message
    assert f"up to {SIDECAR_FORMAT}" in message
    assert "upgrade overnet" in message and REBUILD in message


def test_known_formats_are_read_and_a_missing_format_means_format_1(tmp_path):
    assert read_sidecar(_write_raw(tmp_path, format=1)).format == 1
    assert read_sidecar(_write_raw(tmp_path, format=None)).format == 1  # field left out


@pytest.mark.parametrize("bad", [0, -1, "1", 1.5, True])
def test_a_format_that_is_not_a_known_number_is_invalid(tmp_path, bad):
    with pytest.raises(InputError, match="not a valid overnet engine sidecar.*format"):
        read_sidecar(_write_raw(tmp_path, format=bad))
