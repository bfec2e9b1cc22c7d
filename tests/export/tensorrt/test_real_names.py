"""overnet's TensorRT calls, and the tensorrt double, against the REAL bindings' names.

``names/tensorrt-10.txt`` and ``names/tensorrt-11.txt`` list the names in the Python bindings
of the newest TensorRT 10.x and 11.x, read out of their wheels by ``names/extract_names.py``
(its docstring says how, and what a line means: ``Class.member`` is a name registered while
binding ``Class``; a bare name is a string the binding holds). These tests read only the
lists: no network, no TensorRT, no GPU.

overnet's uses are found three ways:

1. recorded: overnet's build and runtime code runs against each flavour of the double
   behind a proxy that notes every attribute read, written or called on the ``tensorrt``
   module and on each object that came from it, under the real class name
   (``IBuilderConfig.set_flag``), plus the methods overnet's subclasses override
   (``IProgressMonitor.phase_start``); each flavour's uses are checked against its list;
2. static: the ``trt.X`` / ``trt.X.Y`` chains in the source (``trt``, ``self._trt``,
   ``loaded.trt``) and the ``getattr(trt.X, member)`` look-ups, checked against both lists;
3. coverage: each method or property of the double that the source names must be among the
   recorded uses, so a new call cannot hide from (1) in a path the scenario does not take.

Names that only some versions have are listed below with how overnet deals with them.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from overnet.export.tensorrt import BuildOptions, EngineBuildError, Profile, build_engine
from overnet.export.tensorrt.engine_export import build_with_sidecar
from overnet.export.tensorrt.options import HARDWARE_COMPAT
from overnet.runtime.tensorrt_backend import TensorRTSession
from tests.fakes import fake_tensorrt
from tests.fakes.fake_tensorrt import INSPECTION, REMOVED_IN_11, VERSIONS
from tests.fakes.fixtures import install, write_tiny_onnx

ROOT = Path(__file__).resolve().parents[3]
NAMES = Path(__file__).resolve().parent / "names"
MAJORS = (10, 11)
#: where overnet talks to the tensorrt module (ort_tensorrt.py and trt_lint.py only name
#: ONNX Runtime provider options and ONNX ops; they are scanned in case that changes)
SOURCES = (
    "overnet/export/tensorrt/*.py",
    "overnet/runtime/tensorrt_backend.py",
    "overnet/runtime/tensorrt_loader.py",
    "overnet/runtime/tensorrt_torch.py",
    "overnet/trt_logger.py",
    "overnet/runtime/ort_tensorrt.py",
    "overnet/export/trt_lint.py",
    "benchmarks/tensorrt_gpu.py",
)

#: weak typing, implicit batch and the old memory size: in 10.x (deprecated), gone in 11.x.
#: overnet builds strongly typed networks on both and must never touch them (the double's
#: 10.x flavour records a touch, its 11.x flavour raises)
GONE_IN_11 = (
    "BuilderFlag.FP16",
    "BuilderFlag.BF16",
    "BuilderFlag.INT8",
    "BuilderFlag.OBEY_PRECISION_CONSTRAINTS",
    "BuilderFlag.PREFER_PRECISION_CONSTRAINTS",
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH",
    *REMOVED_IN_11,  # Builder.platform_has_fast_fp16, ICudaEngine.device_memory_size
)
#: names overnet reaches only through a guard, because a TensorRT it supports (the tensorrt
#: extra allows >=10.1) may lack them; with the first 10.x whose bindings have them (read
#: from older 10.x wheels with extract_names.py; not committed)
GUARDED = {
    # build.configure: getattr(trt.HardwareCompatibilityLevel, member, None), then an
    # InputError naming the member (tests/export/tensorrt/test_build.py::test_same_cc_...)
    "HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY": "10.9",
}
#: names overnet uses without a guard that are newer than the oldest TensorRT the extra
#: allows: tensorrt_backend.py reads ICudaEngine.device_memory_size_v2 (the memory report and
#: the out-of-memory message); TensorRT 10.0.x has only device_memory_size
NEWER_THAN_FLOOR = {"ICudaEngine.device_memory_size_v2": "10.1"}
#: the values ``getattr(trt.<enum>, <variable>)`` can take in overnet's source
DYNAMIC_LOOKUPS = {"HardwareCompatibilityLevel": tuple(HARDWARE_COMPAT.values())}
#: what the double's module holds that the real one does not: the handle tests inspect
DOUBLE_ONLY = {"fake"}


@cache
def real_names(major: int) -> frozenset[str]:
    lines = (NAMES / f"tensorrt-{major}.txt").read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def missing(names: Iterable[str], major: int) -> list[str]:
    """The names (``Class.member`` or bare) that the real ``major``.x bindings lack."""
    return sorted(n for n in names if n not in real_names(major))


# -- the lists -----------------------------------------------------------------------------


@pytest.mark.parametrize("major", MAJORS)
def test_lists_name_their_wheel_and_hold_identifiers(major):
    path = NAMES / f"tensorrt-{major}.txt"
    header, *names = path.read_text().splitlines()
    cuda = {10: 12, 11: 13}[major]
    assert re.fullmatch(
        rf"# tensorrt_cu{cuda}_bindings-({major}\.[0-9.]+)-cp\d+-\S+\.whl: TensorRT \1, .*"
        rf"regenerate with: python tests/export/tensorrt/names/extract_names.py --version \1",
        header,
    ), header
    assert names == sorted(set(names)), "sorted, one name a line"
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    assert all(all(ident.fullmatch(part) for part in n.split(".")) for n in names)
    assert len(names) > 1000 and path.stat().st_size < 400_000
    # enough of the module to trust the method: classes, members, enums, __init__.py names
    assert {
        "Builder",
        "IExecutionContext.execute_async_v3",
        "ICudaEngine.device_memory_size_v2",
        "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
        "ILogger.Severity",
        "Logger.WARNING",
        "__version__",
        "nptype",
    } <= real_names(major)


def test_the_lists_show_what_11_removed():
    ten, eleven = real_names(10), real_names(11)
    assert set(GONE_IN_11) <= ten
    assert not set(GONE_IN_11) & eleven
    # a bare member name can be ambiguous across enums: "HALF" is DataType's in both, while
    # "FP16" was only ever BuilderFlag's, so the string itself is gone from 11.x
    assert {"FP16", "EXPLICIT_BATCH", "platform_has_fast_fp16"} <= ten
    assert not {"FP16", "EXPLICIT_BATCH", "platform_has_fast_fp16"} & eleven
    assert {"HALF", "DataType.HALF", "STRONGLY_TYPED"} <= ten & eleven
    assert "kSTRONGLY_TYPED" not in ten | eleven  # C++ spellings are not Python names


def test_names_stored_inside_longer_strings_are_found():
    """The linker keeps a name that is the tail of a longer string only inside it
    (``num_errors`` in ``get_num_errors``, ``serialize`` in ``plugins_to_serialize``), so
    an exact match of ``strings`` output misses them; extract_names.py reads the strings the
    code loads (a load may point into a longer string), so they are listed, while a removed
    name is still absent."""
    for major in MAJORS:
        assert {"num_errors", "serialize", "OnnxParser.num_errors"} <= real_names(major)
        assert "ITimingCache.serialize" in real_names(major)
    assert "BuilderFlag.FP16" in real_names(10)
    assert "BuilderFlag.FP16" not in real_names(11)
    assert missing({"BuilderFlag.FP16", "num_errors"}, 11) == ["BuilderFlag.FP16"]


def _list_version(major: int) -> str:
    header = (NAMES / f"tensorrt-{major}.txt").read_text().splitlines()[0]
    found = re.search(r": TensorRT ([0-9.]+),", header)
    assert found, header
    return found.group(1)


@pytest.mark.parametrize("major", MAJORS)
def test_each_double_claims_the_release_of_its_list(monkeypatch, major):
    """The double offers a release's names (checked below against its list), so it claims
    that release: ``trt.__version__`` is the wheel version in the list's header."""
    assert VERSIONS[major] == _list_version(major)
    assert install(monkeypatch, major).trt.module.__version__ == _list_version(major)


def test_a_made_up_name_is_reported_missing(monkeypatch):
    assert missing({"IExecutionContext.execute_async_v9", "execute_async_v9"}, 11) == [
        "IExecutionContext.execute_async_v9",
        "execute_async_v9",
    ]
    assert missing({"IExecutionContext.execute_async_v3"}, 11) == []
    # and one reached through the recording proxy, as a typo in overnet's code would be
    used: set[str] = set()
    trt = recording_module(install(monkeypatch, 11).trt.module, used)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    with pytest.raises(AttributeError):
        runtime.deserialize_cuda_engine_v9(b"")
    assert missing(used, 11) == ["Runtime.deserialize_cuda_engine_v9"]


# -- recording overnet's uses ----------------------------------------------------------------


def _real_class(value: Any) -> str | None:
    """The real binding's class name for an object of the double (None: not one)."""
    if isinstance(value, fake_tensorrt.FakeEnum):
        return value._name
    if isinstance(value, (int, bytes)):  # enum members, IHostMemory: used as int / bytes
        return None
    cls = value if isinstance(value, type) else type(value)
    if cls.__module__ != fake_tensorrt.__name__ or cls.__name__.startswith("Fake"):
        return None
    return cls.__name__


class _Recording:
    """Stands for an object of the double; notes ``Class.attr`` for each attribute used."""

    #: its own attributes; every other one (``__init__`` included) is the target's
    _OWN = frozenset({"_target", "_name", "_used", "_seen", "__mro_entries__"})

    def __init__(self, target: Any, name: str | None, used: set[str], seen: dict) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_used", used)
        object.__setattr__(self, "_seen", seen)
        if name is not None and not isinstance(target, type):
            seen.setdefault(name, target)

    def _note(self, attr: str) -> None:
        name = object.__getattribute__(self, "_name")
        # Python's own look-ups (__class__, __dict__) are not overnet's; __init__ is
        if name is not None and (not attr.startswith("__") or attr == "__init__"):
            object.__getattribute__(self, "_used").add(f"{name}.{attr}")

    def __getattribute__(self, attr: str) -> Any:
        if attr in _Recording._OWN:
            return object.__getattribute__(self, attr)
        _Recording._note(self, attr)
        target = object.__getattribute__(self, "_target")
        return _wrap(getattr(target, attr), self._used, self._seen)

    def __setattr__(self, attr: str, value: Any) -> None:
        _Recording._note(self, attr)
        setattr(self._target, attr, _unwrap(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return _wrap(self._target(*args, **kwargs), self._used, self._seen)

    def __mro_entries__(self, bases: tuple) -> tuple:  # class Monitor(trt.IProgressMonitor)
        return (self._target,)


def _wrap(value: Any, used: set[str], seen: dict) -> Any:
    name = _real_class(value)
    if name is not None:
        return _Recording(value, name, used, seen)
    if callable(value) and not isinstance(value, type):  # a method: wrap what it returns
        return _Recording(value, None, used, seen)
    return value


def _unwrap(value: Any) -> Any:
    return object.__getattribute__(value, "_target") if type(value) is _Recording else value


def recording_module(
    fake: types.ModuleType, used: set[str], seen: dict | None = None
) -> types.ModuleType:
    """A ``tensorrt`` module that hands out the double's objects behind ``_Recording``."""
    module = types.ModuleType("tensorrt")
    module.__spec__ = fake.__spec__

    def __getattr__(attr: str) -> Any:  # PEP 562: every attribute, as none is set here
        used.add(attr)
        return _wrap(getattr(fake, attr), used, {} if seen is None else seen)

    module.__getattr__ = __getattr__
    return module


@dataclass
class Recorded:
    used: set[str] = field(default_factory=set)
    #: real class name -> one instance of the double's class overnet was handed
    seen: dict[str, Any] = field(default_factory=dict)
    fake: types.ModuleType | None = None


def _unnamed_bad_node_onnx(path: Path) -> Path:
    """An ONNX whose unsupported node has no name (the parser error then gives its index)."""
    import onnx
    from onnx import TensorProto, helper

    lr = helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])
    sr = helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h", "w"])
    node = helper.make_node("FancyOp", ["lr"], ["sr"], domain="custom")
    graph = helper.make_graph([node], "bad", [lr], [sr])
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("custom", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def _exercise(major: int, monkeypatch: pytest.MonkeyPatch, tmp: Path) -> Recorded:
    """overnet's TensorRT paths against the ``major`` double, behind the recorder."""
    pytest.importorskip("onnx")
    env = install(monkeypatch, major)
    recorded = Recorded(fake=env.trt.module)
    module = recording_module(env.trt.module, recorded.used, recorded.seen)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    quiet = lambda _: None  # noqa: E731
    profile = Profile.parse("1x3x8x8", "1x3x16x16", "2x3x32x40")
    onnx = write_tiny_onnx(tmp / "overnet_x2_fp16.onnx")
    # every build option, the timing cache created and then reused, progress reported
    options = BuildOptions(
        workspace=1 << 30,
        opt_level=4,
        timing_cache=tmp / "t.cache",
        version_compatible=True,
        hardware_compat="same-cc",
    )
    engine = tmp / "vc.engine"
    for _ in range(2):
        build_with_sidecar(onnx, engine, profile, options, rebuild="overnet x", echo=quiet)
    # parser errors: a named and an unnamed unsupported node
    for bad in (
        write_tiny_onnx(tmp / "bad.onnx", bad_node=True),
        _unnamed_bad_node_onnx(tmp / "unnamed.onnx"),
    ):
        with pytest.raises(EngineBuildError, match="No importer"):
            build_engine(bad, tmp / "bad.engine", profile, echo=quiet)
    # running: with its sidecar (host code allowed), and without one (scale probed)
    x = np.zeros((1, 3, 16, 16), np.float32)
    with TensorRTSession.open(engine) as session:
        session.run(x)
        session.memory_report()
    with TensorRTSession.open(engine, verify=False, trust_host_code=True) as session:
        session.run(x)
    # methods overnet's own subclasses override are names TensorRT calls back
    for name, cls in vars(env.trt.module).items():
        if isinstance(cls, type):
            for sub in cls.__subclasses__():
                recorded.used.update(
                    f"{name}.{m}" for m, v in vars(sub).items() if callable(v) and m[0] != "_"
                )
    assert not env.trt.deprecated_used  # nothing gone in 11 was touched (10.x flavour)
    return recorded


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[int, Recorded]:
    """What overnet's code used of each flavour of the double (run once for the module)."""
    runs = {}
    for major in MAJORS:
        with pytest.MonkeyPatch.context() as monkeypatch:
            runs[major] = _exercise(major, monkeypatch, tmp_path_factory.mktemp(f"trt{major}"))
    return runs


# -- finding overnet's uses in the source ----------------------------------------------------


def _source_files() -> list[Path]:
    files = sorted({p for pattern in SOURCES for p in ROOT.glob(pattern)})
    names = {str(p.relative_to(ROOT)) for p in files}
    assert {"overnet/export/tensorrt/build.py", "overnet/runtime/tensorrt_backend.py"} <= names
    return files


def _is_trt(node: ast.expr) -> bool:
    """``trt``, ``tensorrt``, ``self._trt``, ``loaded.trt``: the tensorrt module."""
    if isinstance(node, ast.Name):
        return node.id in ("trt", "tensorrt")
    return isinstance(node, ast.Attribute) and node.attr in ("trt", "_trt")


def _static_uses(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(``X`` or ``X.Y``, line) for the tensorrt chains and getattr look-ups in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_trt(node.value):
            yield node.attr, node.lineno
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and _is_trt(node.value.value)
        ):
            yield f"{node.value.attr}.{node.attr}", node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
        ):
            owner, member = node.args[0], node.args[1]
            if isinstance(owner, ast.Attribute) and _is_trt(owner.value):
                if isinstance(member, ast.Constant):
                    yield f"{owner.attr}.{member.value}", node.lineno
                else:  # a variable: DYNAMIC_LOOKUPS says which values it takes
                    values = DYNAMIC_LOOKUPS.get(owner.attr)
                    assert values, (
                        f"line {node.lineno}: getattr(trt.{owner.attr}, {ast.unparse(member)}) "
                        "looks up members this test does not know: add them to DYNAMIC_LOOKUPS"
                    )
                    for value in values:
                        yield f"{owner.attr}.{value}", node.lineno
            elif _is_trt(owner) and isinstance(member, ast.Constant):
                yield str(member.value), node.lineno


@cache
def static_uses() -> dict[str, str]:
    """Each tensorrt name the source spells out -> ``file:line`` of its first use."""
    uses: dict[str, str] = {}
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, line in sorted(_static_uses(tree), key=lambda u: u[1]):
            uses.setdefault(name, f"{path.relative_to(ROOT)}:{line}")
    return uses


def test_the_source_scan_finds_the_known_uses():
    uses = static_uses()
    assert {
        "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
        "BuilderFlag.VERSION_COMPATIBLE",
        "MemoryPoolType.WORKSPACE",
        "HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY",
        "Logger.WARNING",
        "TensorIOMode.INPUT",
        "IProgressMonitor",
        "nptype",
        "__version__",
    } <= set(uses)
    assert uses["Logger.WARNING"].startswith("overnet/")


# -- overnet against the real names --------------------------------------------------------


@pytest.mark.parametrize("major", MAJORS)
def test_what_overnet_uses_exists_in_the_real_bindings(recorded, major):
    used = recorded[major].used
    assert {
        "Builder.build_serialized_network",
        "IBuilderConfig.progress_monitor",
        "IExecutionContext.execute_async_v3",
        "ICudaEngine.device_memory_size_v2",
        "Runtime.engine_host_code_allowed",
        "ParserError.node",
        "IProgressMonitor.phase_start",
    } <= used, "the scenario no longer reaches these: the recorder or the code changed"
    gaps = missing(used, major)
    assert not gaps, f"overnet used these on the {major}.x double; real {major}.x lacks them"
    static = static_uses()
    gaps = [f"{n} ({static[n]})" for n in missing(static, major)]
    assert not gaps, f"overnet's source names these; the real {major}.x bindings lack them"


@pytest.mark.parametrize("major", MAJORS)
def test_overnet_never_touches_what_11_removed(recorded, major):
    uses = recorded[major].used | set(static_uses())
    assert not set(GONE_IN_11) & uses


def test_version_gated_names(recorded):
    uses = set(static_uses()).union(*(r.used for r in recorded.values()))
    for name, since in {**GUARDED, **NEWER_THAN_FLOOR}.items():
        assert name in uses, f"{name} is no longer used: drop it from the table"
        assert all(name in real_names(m) for m in MAJORS), f"{name} (since {since})"
    # looked up so that a TensorRT without them gives a default, not an AttributeError
    guarded = {
        f"{node.args[0].attr}."
        for path in _source_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and (node.func.id, len(node.args)) in (("getattr", 3), ("hasattr", 2))
        and isinstance(node.args[0], ast.Attribute)
        and _is_trt(node.args[0].value)
    }
    assert all(name.startswith(tuple(guarded)) for name in GUARDED), guarded


def test_the_tensorrt_floor_has_every_unguarded_name():
    text = (ROOT / "pyproject.toml").read_text()
    floor = re.search(r'"tensorrt>=([0-9.]+)"', text)
    assert floor, "the tensorrt extra's lower bound is not where this test looks"
    have = tuple(int(p) for p in floor.group(1).split("."))
    for name, since in NEWER_THAN_FLOOR.items():
        assert have >= tuple(int(p) for p in since.split(".")), f"{name} needs {since}"


def test_every_double_method_the_source_names_was_exercised(recorded):
    """Coverage for the recorder: a method or property of the double that overnet's source
    calls must show up in the recorded uses, or the scenario misses that path."""
    fake = recorded[11].fake
    methods = {
        name
        for cls in vars(fake).values()
        if isinstance(cls, type) and _real_class(cls) and not issubclass(cls, (int, bytes))
        for name, value in vars(cls).items()
        if name[0] != "_" and (callable(value) or isinstance(value, property))
    }
    in_source = {
        node.attr
        for path in _source_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
    }
    recorded_members = {n.split(".", 1)[1] for r in recorded.values() for n in r.used if "." in n}
    unexercised = sorted(methods & in_source - recorded_members)
    assert not unexercised, "extend _exercise to reach overnet's use of these"


# -- the double against the real names -----------------------------------------------------


def _double_names(fake: types.ModuleType, seen: dict[str, Any]) -> set[str]:
    """Every public name the double's module offers, with its instances' attributes."""
    names: set[str] = {"__version__"}
    for attr, value in vars(fake).items():
        if attr.startswith("_") or attr in DOUBLE_ONLY:
            continue
        names.add(attr)
        if isinstance(value, fake_tensorrt.FakeEnum):
            members = {**value._members, **value._deprecated}
            names.update(f"{attr}.{m}" for m in members)
        elif isinstance(value, type):
            names.update(f"{attr}.{n}" for n in vars(value) if not n.startswith("_"))
    for cls, instance in seen.items():
        own = {n for n in vars(instance) if not n.startswith("_")}
        names.update(f"{cls}.{n}" for n in own - INSPECTION.get(cls, frozenset()))
    return names


@pytest.mark.parametrize("major", MAJORS)
def test_the_double_offers_only_real_names(recorded, major):
    run = recorded[major]
    assert run.fake.__version__.startswith(f"{major}.")
    # instances of every class that has instance attributes were handed to overnet
    classes = {a for a, v in vars(run.fake).items() if isinstance(v, type)}
    assert classes - set(run.seen) <= {"IProgressMonitor", "IHostMemory"}
    offered = _double_names(run.fake, run.seen)
    assert {"BuilderFlag.VERSION_COMPATIBLE", "ITensor.name", "Runtime.logger"} <= offered
    fakes = missing(offered, major)
    assert not fakes, f"the {major}.x double offers names the real bindings lack"
    gone = set(GONE_IN_11) & offered
    assert gone == (set(GONE_IN_11) - set(REMOVED_IN_11) if major == 10 else set())
    for name in INSPECTION:
        assert name in classes


@pytest.mark.parametrize("name", REMOVED_IN_11)
def test_the_double_has_the_removed_attributes_in_10_only(recorded, name):
    cls, attr = name.split(".")
    assert name in real_names(10) and name not in real_names(11)
    ten, eleven = recorded[10].seen[cls], recorded[11].seen[cls]
    with pytest.raises(AttributeError):
        getattr(eleven, attr)
    getattr(ten, attr)  # recorded as deprecated by the 10.x double
    assert recorded[10].fake.fake.deprecated_used[-1] == name
