"""Backends are declared once: everything that lists, chooses, opens or sizes them reads
the declarations, so a new backend is one module plus one line in DECLARED."""

from __future__ import annotations

from typing import Any

import pytest

from overnet.errors import InputError, MissingDependencyError
from overnet.runtime import registry
from overnet.runtime.memory import SAFETY, bytes_per_input_pixel
from overnet.runtime.model_source import ModelSource
from overnet.runtime.spec import COMMON_OPTIONS, BackendSpec, Variant
from tests.runtime.doubles import NearestSession


def test_declarations_are_consistent():
    names = [spec.name for spec in registry.DECLARED]
    variants = registry.variant_names()
    assert len(set(names)) == len(names) and len(set(variants)) == len(variants)
    for spec in registry.DECLARED:
        assert spec.name in [v.name for v in spec.variants]  # its own name is a variant
        assert not spec.options & COMMON_OPTIONS
        assert spec.memory[0] > 0 and spec.memory[1] >= 0
        for variant in spec.variants:
            # a variant may only preset options its backend accepts
            assert set(variant.options) <= spec.accepted_options, variant.name
            assert variant.summary
    assert tuple(names) == registry.BACKENDS
    assert list(registry.VARIANTS) == variants


def test_memory_table_reads_the_declarations():
    torch_spec = registry.get_backend("torch")
    base, per = torch_spec.memory
    assert bytes_per_input_pixel("torch", 3) == int((base + per * 9) * SAFETY)
    cl = dict((v.name, v) for v in torch_spec.variants)["torch-cl"].memory
    assert bytes_per_input_pixel("torch-cl", 3) == int((cl[0] + cl[1] * 9) * SAFETY)
    assert bytes_per_input_pixel("torch-cl", 3) < bytes_per_input_pixel("torch", 3)


def test_unknown_names_and_options_are_refused(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07")
    with pytest.raises(InputError, match="unknown backend 'tensorflow'.*openvino-bf16"):
        registry.open_session(onnx, "tensorflow")
    with pytest.raises(InputError, match="openvino backend does not take providers"):
        registry.open_session(onnx, "openvino", providers=["cpu"])


class EchoSession(NearestSession):
    def __init__(self, factor: int) -> None:
        super().__init__(2)
        self.info.backend = "echo"
        self.factor = factor


def _open_echo(source: ModelSource, options: dict[str, Any]) -> EchoSession:
    session = EchoSession(options.get("factor", 1))
    session.info.device = options["device"]
    return session


ECHO = BackendSpec(
    name="echo",
    module="json",  # any importable module: "installed"
    extra="echo",
    loads=("onnx",),
    options=frozenset({"factor"}),
    factory=_open_echo,
    rank={"cpu": -1},
    memory=(1_000, 10),
    variants=(Variant("echo", summary="test"), Variant("echo-3", {"factor": 3}, summary="x")),
)
MISSING = BackendSpec(
    name="missing",
    module="overnet_no_such_module",
    extra="missing",
    loads=("engine",),
    factory=_open_echo,
    rank={"cpu": -1},
    memory=(1, 1),
    variants=(Variant("missing", summary="never installed"),),
)


@pytest.fixture
def with_echo(monkeypatch):
    monkeypatch.setattr(registry, "DECLARED", (*registry.DECLARED, ECHO, MISSING))


def test_a_new_declaration_is_all_it_takes(with_echo, tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07")
    source = registry.detect_source(onnx)
    assert registry.choose_backend(source, "cpu") == "echo"  # ranked first on CPU
    with registry.open_session(onnx) as session:
        assert isinstance(session, EchoSession) and session.factor == 1
    with registry.open_session(onnx, "echo-3", factor=None) as session:
        assert session.factor == 3
    assert bytes_per_input_pixel("echo", 2) == int((1_000 + 10 * 4) * SAFETY)
    status = {s.name: s for s in registry.backend_status()}
    assert status["echo"].available
    assert not status["missing"].available
    assert "pip install 'overnet[missing]'" in status["missing"].reason
    assert "echo-3" in registry.variant_names()
    from overnet.bench.suite import check_backends

    check_backends(["echo-3"])  # overnet bench knows it too


def test_unavailable_backend_names_the_install(with_echo, tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(MissingDependencyError, match="backend 'missing' is not available"):
        registry.open_session(engine, "missing")


def test_backend_refuses_a_model_kind_it_cannot_load(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(InputError, match="is a TensorRT engine, which the openvino backend"):
        registry.open_session(engine, "openvino")


def test_readme_names_every_backend_name():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [name for name in registry.variant_names() if f"`{name}`" not in readme]
    assert missing == []
