"""Engine build logic against the tensorrt double (11.x and 10.x flavours)."""

from __future__ import annotations

import json
import sys

import pytest

from overnet.cuda.cudart import NoGpuError
from overnet.errors import InputError, MissingDependencyError
from overnet.export.tensorrt import BuildOptions, EngineBuildError, Profile, build_engine
from overnet.export.tensorrt.build import network_flags
from overnet.export.tensorrt.engine_export import build_with_sidecar, rebuild_command
from overnet.formats.digest import sha256_file
from overnet.formats.sidecar import read_sidecar
from tests.fakes.fixtures import fake_env, install, write_tiny_onnx

PROFILE = Profile.parse("1x3x16x16", "1x3x32x48", "2x3x64x96")


@pytest.fixture(params=[11, 10], ids=["trt11", "trt10"])
def trt_env(request, monkeypatch):
    """The TensorRT 11.x double, then the 10.x one."""
    yield from fake_env(request.param, monkeypatch)


@pytest.fixture
def tiny_onnx(tmp_path):
    return write_tiny_onnx(tmp_path / "overnet_x2_fp16.onnx")


def test_network_is_strongly_typed_from_the_enum(trt_env, tiny_onnx, tmp_path):
    build_engine(tiny_onnx, tmp_path / "e.engine", PROFILE, echo=lambda _: None)
    network = trt_env.trt.networks[-1]
    enum_bit = int(trt_env.trt.module.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert network.flags == 1 << enum_bit == network_flags(trt_env.trt.module)
    # the two flavours differ, so a literal would have failed one of them
    assert network.flags == (2 if trt_env.version.startswith("10.") else 1)


def test_build_sets_profile_options_and_no_weak_typing(trt_env, tiny_onnx, tmp_path):
    options = BuildOptions(
        workspace=2 << 30, opt_level=4, version_compatible=True, hardware_compat="ampere+"
    )
    engine = tmp_path / "sub" / "e.engine"
    result = build_engine(tiny_onnx, engine, PROFILE, options, echo=lambda _: None)
    config = trt_env.trt.configs[-1]
    assert config.profiles[0].shapes == {"lr": (PROFILE.min, PROFILE.opt, PROFILE.max)}
    assert config.pool_limits == {"WORKSPACE": 2 << 30}
    assert config.builder_optimization_level == 4
    assert [f.name for f in config.flags_set] == ["VERSION_COMPATIBLE"]
    assert config.hardware_compatibility_level.name == "AMPERE_PLUS"
    assert engine.read_bytes().startswith(b"FAKETRT1")  # plain plan, no header of ours
    assert result.engine_bytes == engine.stat().st_size
    assert not list(engine.parent.glob("*.part"))
    # trt_env's teardown fails the test if any deprecated (removed-in-11) name was touched


def test_defaults_leave_tensorrt_defaults_alone(trt_env, tiny_onnx, tmp_path):
    build_engine(tiny_onnx, tmp_path / "e.engine", PROFILE, echo=lambda _: None)
    config = trt_env.trt.configs[-1]
    assert config.pool_limits == {} and config.flags_set == []
    assert config.builder_optimization_level == 3
    assert config.hardware_compatibility_level.name == "NONE"


def test_timing_cache_created_reused_and_saved(trt_env, tiny_onnx, tmp_path):
    cache = tmp_path / "t.cache"
    options = BuildOptions(timing_cache=cache)
    lines: list[str] = []
    made_for = f"{trt_env.version}/NVIDIA H100 80GB HBM3".encode()
    first = build_engine(tiny_onnx, tmp_path / "a.engine", PROFILE, options, echo=lines.append)
    assert not first.timing_cache_reused and first.timing_cache_saved
    assert cache.read_bytes() == b"TCACHE:5@" + made_for
    assert any("creating timing cache" in line for line in lines)
    second = build_engine(tiny_onnx, tmp_path / "b.engine", PROFILE, options, echo=lines.append)
    assert second.timing_cache_reused and cache.read_bytes() == b"TCACHE:10@" + made_for
    assert trt_env.trt.configs[-1].timing_cache.loaded
    assert trt_env.trt.configs[-1].ignore_mismatch is False
    assert any("reusing timing cache" in line for line in lines)
    assert not any("warning" in line for line in lines)


def test_timing_cache_from_another_gpu_is_replaced_not_reused(trt_env, tiny_onnx, tmp_path):
    """set_timing_cache returns False for a foreign cache: warn, start fresh, reused=False."""
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"TCACHE:40@9.9.9/NVIDIA A10")
    lines: list[str] = []
    options = BuildOptions(timing_cache=cache)
    result = build_engine(tiny_onnx, tmp_path / "a.engine", PROFILE, options, echo=lines.append)
    assert not result.timing_cache_reused
    assert any("warning: timing cache" in line and "not accepted" in line for line in lines)
    assert any("creating timing cache" in line for line in lines)
    config = trt_env.trt.configs[-1]
    assert config.timing_cache is not None and not config.timing_cache.loaded  # a fresh one
    assert cache.read_bytes().startswith(b"TCACHE:5@" + trt_env.version.encode())


def test_timing_cache_none_from_tensorrt_is_a_warning(trt_env, tiny_onnx, tmp_path):
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"TCACHE:3@whatever")
    trt_env.trt.timing_cache_none = True  # create_timing_cache returns None
    lines: list[str] = []
    options = BuildOptions(timing_cache=cache)
    result = build_engine(tiny_onnx, tmp_path / "a.engine", PROFILE, options, echo=lines.append)
    assert (tmp_path / "a.engine").is_file()
    assert not result.timing_cache_reused and not result.timing_cache_saved
    assert any("could not create a timing cache" in line for line in lines)
    assert cache.read_bytes() == b"TCACHE:3@whatever"  # left alone
    trt_env.trt.timing_cache_none = False
    trt_env.trt.no_timing_cache_out = True  # get_timing_cache returns None
    lines.clear()
    result = build_engine(tiny_onnx, tmp_path / "b.engine", PROFILE, options, echo=lines.append)
    assert (tmp_path / "b.engine").is_file() and not result.timing_cache_saved
    assert any("returned no timing cache" in line for line in lines)


def test_failed_cache_save_still_writes_the_sidecar(trt_env, tiny_onnx, tmp_path):
    """A cache that cannot be saved must not leave the engine without its sidecar."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    options = BuildOptions(timing_cache=blocker / "t.cache")  # parent is a file: save fails
    engine = tmp_path / "e.engine"
    lines: list[str] = []
    result, sidecar = build_with_sidecar(
        tiny_onnx, engine, PROFILE, options, rebuild="x", echo=lines.append
    )
    assert not result.timing_cache_saved and sidecar.is_file() and engine.is_file()
    assert any("could not save the timing cache" in line for line in lines)


def test_rebuild_command_leaves_out_the_timing_cache(trt_env, tiny_onnx, tmp_path):
    """The rebuild line (and the stored trtexec line) are for another GPU/TensorRT, where
    this machine's timing cache does not apply."""
    options = BuildOptions(timing_cache=tmp_path / "t.cache", opt_level=2)
    rebuild = rebuild_command(tmp_path / "w.pth", [2], PROFILE, options, tmp_path)
    assert "--timing-cache" not in rebuild and "--opt-level 2" in rebuild
    engine = tmp_path / "e.engine"
    build_with_sidecar(tiny_onnx, engine, PROFILE, options, rebuild=rebuild, echo=lambda _: None)
    sidecar = read_sidecar(engine)
    assert "--timing-cache" not in sidecar.rebuild_command
    assert "--timingCacheFile" not in sidecar.trtexec_command
    assert sidecar.build_options["timing_cache"] == str(tmp_path / "t.cache")  # still recorded


def test_progress_phases_are_reported_and_timed(trt_env, tiny_onnx, tmp_path):
    lines: list[str] = []
    result = build_engine(tiny_onnx, tmp_path / "e.engine", PROFILE, echo=lines.append)
    assert any("[tensorrt] Building engine (2 steps)" in line for line in lines)
    assert any("[tensorrt] Building engine done in" in line for line in lines)
    assert not any("Tactic selection" in line for line in lines)  # nested phases stay quiet
    assert set(result.phase_seconds) == {"Building engine"}
    assert result.seconds >= 0 and result.tensorrt_version == trt_env.version


def test_parser_error_names_the_node(trt_env, tmp_path):
    bad = write_tiny_onnx(tmp_path / "bad.onnx", bad_node=True)
    with pytest.raises(EngineBuildError) as info:
        build_engine(bad, tmp_path / "e.engine", PROFILE, echo=lambda _: None)
    message = str(info.value)
    assert "node 'FancyOp_7' (FancyOp): No importer registered for op: FancyOp" in message
    assert "overnet check" in message
    assert not (tmp_path / "e.engine").exists()


def test_parser_error_tied_to_no_node(trt_env, tmp_path):
    """An error about the whole model (node() is -1) says so, not ``node #-1``."""
    newer = write_tiny_onnx(tmp_path / "newer.onnx", opset=99)
    with pytest.raises(EngineBuildError) as info:
        build_engine(newer, tmp_path / "e.engine", PROFILE, echo=lambda _: None)
    message = str(info.value)
    assert "no node: Unsupported ONNX opset version 99" in message
    assert "#-1" not in message


def test_wrong_input_name_and_failed_build(trt_env, tmp_path):
    other = write_tiny_onnx(tmp_path / "other.onnx", input_name="inputs")
    with pytest.raises(EngineBuildError, match=r"inputs \['inputs'\].*one input 'lr'"):
        build_engine(other, tmp_path / "e.engine", PROFILE, echo=lambda _: None)
    trt_env.trt.fail_build = True
    good = write_tiny_onnx(tmp_path / "good.onnx")
    with pytest.raises(EngineBuildError, match="failed to build an engine.*--max"):
        build_engine(good, tmp_path / "e.engine", PROFILE, echo=lambda _: None)
    assert not (tmp_path / "e.engine").exists()


def test_same_cc_needs_the_enum_member(monkeypatch, tiny_onnx, tmp_path):
    install(monkeypatch, 10, same_cc=False)  # claims 10.8, the release before the member
    with pytest.raises(InputError, match=r"SAME_COMPUTE_CAPABILITY.*TensorRT 10\.8.*ampere"):
        build_engine(
            tiny_onnx,
            tmp_path / "e.engine",
            PROFILE,
            BuildOptions(hardware_compat="same-cc"),
            echo=lambda _: None,
        )


def test_sidecar_written_beside_engine(trt_env, tiny_onnx, tmp_path):
    engine = tmp_path / "overnet_x2_fp16_b1-1-2_16x16-32x48-64x96.engine"
    rebuild = rebuild_command(tmp_path / "w.pth", [2], PROFILE, BuildOptions(), tmp_path)
    _, path = build_with_sidecar(
        tiny_onnx, engine, PROFILE, BuildOptions(), rebuild=rebuild, echo=lambda _: None
    )
    sidecar = read_sidecar(engine)
    assert path.name == engine.name + ".json"
    assert (sidecar.tensorrt_version, sidecar.gpu_name, sidecar.compute_capability) == (
        trt_env.version,
        "NVIDIA H100 80GB HBM3",
        "9.0",
    )
    assert (sidecar.precision, sidecar.scale, sidecar.upscale) == ("fp16", 2.0, 3)
    assert sidecar.profile == PROFILE.to_dict()
    assert sidecar.onnx_sha256 == sha256_file(tiny_onnx)
    assert sidecar.engine_sha256 == sha256_file(engine)
    assert sidecar.rebuild_command.startswith("overnet export --format tensorrt --weights /")
    assert "--min 1x3x16x16 --opt 1x3x32x48 --max 2x3x64x96" in sidecar.rebuild_command
    assert sidecar.trtexec_command.startswith("trtexec --onnx=")
    assert json.loads(path.read_text())["build_options"]["hardware_compat"] == "none"


def test_no_gpu_is_a_clear_error(monkeypatch, tiny_onnx, tmp_path):
    install(monkeypatch, 11, count=0)
    with pytest.raises(NoGpuError, match="no usable CUDA GPU"):
        build_with_sidecar(
            tiny_onnx,
            tmp_path / "e.engine",
            PROFILE,
            BuildOptions(),
            rebuild="x",
            echo=lambda _: None,
        )


def test_missing_tensorrt_names_extra_and_index(monkeypatch, tiny_onnx, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError) as info:
        build_engine(tiny_onnx, tmp_path / "e.engine", PROFILE)
    message = str(info.value)
    assert "pip install 'overnet[tensorrt]'" in message
    assert "--extra-index-url https://pypi.nvidia.com" in message


def test_the_double_rejects_removed_api(monkeypatch):
    """The 11.x double raises on names TensorRT 11 removed; the 10.x one records them."""
    eleven = install(monkeypatch, 11).trt.module
    for enum, name in [
        ("BuilderFlag", "FP16"),
        ("BuilderFlag", "BF16"),
        ("BuilderFlag", "INT8"),
        ("BuilderFlag", "OBEY_PRECISION_CONSTRAINTS"),
        ("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH"),
    ]:
        with pytest.raises(AttributeError):
            getattr(getattr(eleven, enum), name)
    builder = eleven.Builder(eleven.Logger())
    with pytest.raises(AttributeError):
        builder.platform_has_fast_fp16  # noqa: B018
    ten = install(monkeypatch, 10)
    assert hasattr(ten.trt.module.BuilderFlag, "INT8")
    assert ten.trt.deprecated_used == ["BuilderFlag.INT8"]
