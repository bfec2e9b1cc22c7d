"""`overnet export --format triton`: repository layout, configs parsed by Triton's own
ModelConfig protobuf (tritonclient's model_config_pb2), the ONNX in the repository run
in onnxruntime, and a TensorRT variant built with the test doubles. No Triton server
runs here (none can on these machines)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from overnet.cli import main
from overnet.errors import InputError, MissingDependencyError
from overnet.export.triton import TritonConfig, model_config_pb2, parse_config, summary

pytest.importorskip("tritonclient")


def _dims(tensor) -> list[int]:
    return list(tensor.dims)


def test_config_text_parses_as_triton_model_config():
    text = TritonConfig("overnet_x2", "onnxruntime", 8, "KIND_GPU", 2, 500, (1, 48, 40)).text()
    config = parse_config(text)
    pb2 = model_config_pb2()
    assert isinstance(config, pb2.ModelConfig)
    assert (config.name, config.backend, config.max_batch_size) == ("overnet_x2", "onnxruntime", 8)
    (lr,), (sr,) = config.input, config.output
    assert (lr.name, sr.name) == ("lr", "sr")
    assert lr.data_type == sr.data_type == pb2.TYPE_FP32
    assert _dims(lr) == _dims(sr) == [3, -1, -1]
    (group,) = config.instance_group
    assert group.kind == pb2.ModelInstanceGroup.KIND_GPU and group.count == 2
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 1 and list(warmup.inputs["lr"].dims) == [3, 48, 40]
    assert warmup.inputs["lr"].zero_data


def test_a_config_triton_would_refuse_is_an_input_error():
    with pytest.raises(InputError, match="not a Triton model config"):
        parse_config('name: "x"\nmax_batch_size: "eight"\n')
    with pytest.raises(InputError):
        parse_config('name: "x"\nno_such_field: 1\n')


def test_without_tritonclient_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tritonclient.grpc.model_config_pb2", None)
    with pytest.raises(MissingDependencyError, match=r"overnet\[triton\]"):
        model_config_pb2()


@pytest.fixture(scope="module")
def repository(tmp_path_factory, x2_weights):
    """x2 and x3 from the x2 checkpoint (upscale 3), in one command."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    repo = tmp_path_factory.mktemp("triton") / "models"
    args = ["export", "--format", "triton", "--weights", str(x2_weights), "-o", str(repo)]
    result = CliRunner().invoke(main, [*args, "--scales", "2,3", "--no-validate"])
    assert result.exit_code == 0, result.output
    return repo, result.output


def test_one_command_writes_x2_and_x3(repository):
    repo, output = repository
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert files == [
        "overnet_x2/1/model.onnx",
        "overnet_x2/config.pbtxt",
        "overnet_x3/1/model.onnx",
        "overnet_x3/config.pbtxt",
    ]
    for name in ("overnet_x2", "overnet_x3"):
        config = parse_config((repo / name / "config.pbtxt").read_text())
        assert (config.name, config.backend) == (name, "onnxruntime")
        assert config.instance_group[0].kind == model_config_pb2().ModelInstanceGroup.KIND_CPU
    assert output.count("parses as Triton's ModelConfig") == 2
    assert f"tritonserver --model-repository {repo.resolve()}" in output


def test_the_repository_onnx_runs_in_onnxruntime_like_the_session(repository, x2_onnx):
    pytest.importorskip("onnxruntime")
    from overnet.runtime import open_session

    repo, _ = repository
    lr = np.random.default_rng(0).random((2, 3, 20, 28), dtype=np.float32)
    with open_session(x2_onnx, "onnxruntime", threads=1) as reference:
        expected = reference.run(lr)
    with open_session(repo / "overnet_x2/1/model.onnx", "onnxruntime", threads=1) as session:
        assert np.array_equal(session.run(lr), expected)  # batch 2: Triton's batch axis
    with open_session(repo / "overnet_x3/1/model.onnx", "onnxruntime", threads=1) as session:
        assert session.info.scale == 3 and session.run(lr).shape == (2, 3, 60, 84)


def test_an_existing_model_is_not_replaced_without_overwrite(repository, x2_weights):
    repo, _ = repository
    args = ["export", "--format", "triton", "--weights", str(x2_weights), "-o", str(repo)]
    result = CliRunner().invoke(main, [*args, "--scale", "2", "--no-validate"])
    assert result.exit_code == 2 and "pass --overwrite" in result.output


def test_summary_says_when_configs_were_not_checked(repository, monkeypatch):
    from overnet.export.triton import RepositoryModel

    repo, _ = repository
    folder = repo / "overnet_x2"
    model = RepositoryModel(2.0, folder, folder / "1/model.onnx", TritonConfig("x", "y", 1))
    monkeypatch.setitem(sys.modules, "tritonclient.grpc.model_config_pb2", None)
    assert "was not checked against Triton's schema" in summary([model], repo)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "triton", "--opset", "17"], "--format triton exports its own ONNX"),
        (["--format", "triton", "--opt", "1x3x64x64"], "--triton-backend tensorrt only"),
        (["--format", "triton", "--triton-backend", "tensorrt", "--max-batch", "4"],
         "max_batch_size from the --max batch"),
        (["--max-batch", "4"], "they apply to --format triton only"),
        (["--format", "tensorrt", "--instance", "gpu"], "they apply to --format triton only"),
        (["--format", "triton", "--scale", "2", "--scales", "2,3"], "not both"),
    ],
)  # fmt: skip
def test_options_another_format_would_ignore_are_refused(tmp_path, extra, message):
    args = ["export", "--weights", "w.pth", "-o", str(tmp_path / "out"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_tensorrt_variant_with_the_doubles(monkeypatch, tmp_path, x2_weights):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from overnet.runtime import open_session
    from tests.fakes.fixtures import install

    install(monkeypatch, 11)
    repo = tmp_path / "models"
    args = ["export", "--format", "triton", "--triton-backend", "tensorrt", "--weights"]
    profile = ["--min", "1x3x8x8", "--opt", "2x3x16x16", "--max", "4x3x32x32", "--no-validate"]
    result = CliRunner().invoke(main, [*args, str(x2_weights), "-o", str(repo), *profile])
    assert result.exit_code == 0, result.output
    plan = repo / "overnet_x2/1/model.plan"
    assert plan.is_file() and plan.with_name("model.plan.json").is_file()
    config = parse_config((repo / "overnet_x2/config.pbtxt").read_text())
    assert (config.backend, config.max_batch_size) == ("tensorrt", 4)
    assert config.instance_group[0].kind == model_config_pb2().ModelInstanceGroup.KIND_GPU
    warmup = config.model_warmup[0]
    assert warmup.batch_size == 2 and list(warmup.inputs["lr"].dims) == [3, 16, 16]
    assert "1x3x8x8 / 2x3x16x16 / 4x3x32x32" in (repo / "overnet_x2/config.pbtxt").read_text()
    with open_session(plan, "tensorrt", device="cuda") as session:  # the sidecar checks out
        assert session.run(np.zeros((2, 3, 10, 12), np.float32)).shape == (2, 3, 20, 24)
