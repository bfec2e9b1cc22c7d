"""Fixtures that install the tensorrt / cuda-python doubles into ``sys.modules``.

A test module defines its own fixture over ``fake_env`` (pytest finds fixtures only in
the module or a conftest)::

    @pytest.fixture(params=[11, 10], ids=["trt11", "trt10"])
    def trt_env(request, monkeypatch):
        yield from fake_env(request.param, monkeypatch)
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.fake_cudart import FakeGpu, make_fake_cudart
from tests.fakes.fake_tensorrt import FakeTensorRT, make_fake_tensorrt


@dataclass
class TrtEnv:
    gpu: FakeGpu
    trt: FakeTensorRT
    cudart: types.ModuleType

    @property
    def version(self) -> str:
        return self.trt.version


def install(
    monkeypatch: pytest.MonkeyPatch, major: int = 11, *, same_cc: bool = True, **gpu: object
) -> TrtEnv:
    fake_gpu = FakeGpu(**gpu)
    cudart = make_fake_cudart(fake_gpu)
    trt = make_fake_tensorrt(fake_gpu, major, same_cc=same_cc)
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda.bindings = bindings
    for module in (trt.module, cuda, bindings, cudart):
        # importlib.util.find_spec (used by torch.export, among others) needs a spec
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    monkeypatch.setitem(sys.modules, "tensorrt", trt.module)
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return TrtEnv(fake_gpu, trt, cudart)


def assert_no_deprecated(env: TrtEnv) -> None:
    assert not env.trt.deprecated_used, (
        f"code touched TensorRT APIs removed in 11: {env.trt.deprecated_used}"
    )


def fake_env(major: int, monkeypatch: pytest.MonkeyPatch):
    """Generator body for a ``trt_env`` fixture: install the ``major`` double, yield it,
    then fail the test if it touched a deprecated (removed-in-11) API."""
    env = install(monkeypatch, major)
    yield env
    assert_no_deprecated(env)


def write_tiny_onnx(
    path: Path,
    *,
    scale: float = 2,
    upscale: int = 3,
    bad_node: bool = False,
    input_name: str = "lr",
    precision: str = "fp16",
    opset: int = 18,
) -> Path:
    """A small ONNX with overnet metadata (lr -> sr); ``bad_node`` adds an op the parser
    double rejects, named ``FancyOp_7``; ``precision`` is what its metadata says."""
    import onnx
    from onnx import TensorProto, helper

    lr = helper.make_tensor_value_info(
        input_name, TensorProto.FLOAT, ["batch", 3, "height", "width"]
    )
    sr = helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["batch", 3, "oh", "ow"])
    nodes = [helper.make_node("Identity", [input_name], ["mid"], name="Identity_0")]
    if bad_node:
        nodes.append(
            helper.make_node("FancyOp", ["mid"], ["mid2"], name="FancyOp_7", domain="custom")
        )
        nodes.append(helper.make_node("Identity", ["mid2"], ["sr"], name="Identity_8"))
    else:
        nodes.append(helper.make_node("Identity", ["mid"], ["sr"], name="Identity_1"))
    graph = helper.make_graph(nodes, "tiny", [lr], [sr])
    opsets = [helper.make_opsetid("", opset)]
    if bad_node:
        opsets.append(helper.make_opsetid("custom", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    for key, value in {
        "overnet.scale": str(float(scale)),
        "overnet.upscale": str(upscale),
        "overnet.precision": precision,
        "overnet.opset": str(opset),
        "overnet.source_sha256": "ab" * 32,
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path
