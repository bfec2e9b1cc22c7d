"""A test double of the ``tensorrt`` Python module, in a 11.x and a 10.x flavour.

11.x has only the names TensorRT 11 has: no ``BuilderFlag.FP16``/``BF16``/``INT8``/
``OBEY_PRECISION_CONSTRAINTS``, no ``platform_has_fast_fp16``, no
``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``, no ``ICudaEngine.device_memory_size``:
touching one raises AttributeError. 10.x has them (deprecated); touching one is recorded in
``FakeTensorRT.deprecated_used`` and the fixture fails the test. ``STRONGLY_TYPED`` has a
different value in each flavour, so a literal bit fails one of them.

Each flavour claims the release its name list was read from (``VERSIONS``, the header of
``tests/export/tensorrt/names/tensorrt-<major>.txt``), so the names it offers are that
release's.

The ONNX parser reads the real file with ``onnx``; the "engine" is JSON that carries the
profile, scale and output channels (the ONNX output's, e.g. 64 for an ``--overscale``
graph), and its kernel upsamples by nearest neighbour through the fake GPU memory of
``fake_cudart`` (output channel k repeats input channel k mod 3). As the real TensorRT:
``set_tensor_address`` returns False for an address that is not 256-byte aligned (and
keeps the old one), ``execute_async_v3`` returns False when an address is missing, a
model newer than the parser's opsets fails with an error tied to no node (``node()`` -1),
and ``FakeTensorRT`` switches on an engine whose enqueue cannot be captured into a CUDA
graph (``fail_in_capture``: it invalidates the capture and returns False) or whose output
shape is data-dependent (``-1`` dims).

Every public name the double offers (module attribute, class attribute, enum member, and
instance attribute outside ``INSPECTION``) is one the real bindings have, under the same
class name: ``tests/export/tensorrt/test_real_names.py`` checks them against the name lists
taken from the real 10.x and 11.x wheels.
"""

from __future__ import annotations

import json
import math
import types
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.fakes.fake_cudart import ALIGNMENT, FakeGpu, cudaError_t

ENGINE_MAGIC = b"FAKETRT1"
#: the releases whose bindings tests/export/tensorrt/names/tensorrt-<major>.txt lists
VERSIONS = {11: "11.4.0.106", 10: "10.16.1.11"}
#: what the 10.x double claims without HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
#: (``same_cc=False``): a release before 10.9, which added it
BEFORE_SAME_CC = "10.8.0.43"
#: the newest ONNX opset the parser double imports
MAX_OPSET = 23

#: the double's own state for tests to inspect, per class: the real objects have none of it
INSPECTION: dict[str, frozenset[str]] = {
    "INetworkDefinition": frozenset({"inputs", "outputs", "metadata", "initializer_types"}),
    "ITimingCache": frozenset({"entries", "loaded", "made_for"}),
    "IOptimizationProfile": frozenset({"shapes"}),
    "IBuilderConfig": frozenset(
        {"flags_set", "pool_limits", "profiles", "timing_cache", "ignore_mismatch"}
    ),
    "IExecutionContext": frozenset({"addresses", "executions"}),
    "ICudaEngine": frozenset({"header", "input", "output", "scale", "profile", "contexts"}),
}
#: attributes only the 10.x flavour has (deprecated in 10, gone in 11); reading one is
#: recorded in ``FakeTensorRT.deprecated_used`` (the weak-typing BuilderFlags live in the enum)
REMOVED_IN_11 = ("Builder.platform_has_fast_fp16", "ICudaEngine.device_memory_size")


@dataclass
class FakeTensorRT:
    """What the double saw: state the tests assert on."""

    version: str
    module: types.ModuleType
    deprecated_used: list[str] = field(default_factory=list)
    networks: list[Any] = field(default_factory=list)
    configs: list[Any] = field(default_factory=list)
    builds: int = 0
    fail_build: bool = False
    runtimes: list[Any] = field(default_factory=list)
    #: create_timing_cache returns None (as TensorRT may for unreadable data)
    timing_cache_none: bool = False
    #: get_timing_cache returns None
    no_timing_cache_out: bool = False
    #: every trt.Logger made (TensorRT wants one per process)
    loggers: list[Any] = field(default_factory=list)
    #: execute_async_v3 on a capturing stream invalidates the capture and returns False
    fail_in_capture: bool = False
    #: contexts report -1 for the output's H and W (a data-dependent output shape)
    data_dependent_output: bool = False
    #: what TensorRT would have logged (refused addresses, failed enqueues)
    errors: list[str] = field(default_factory=list)


class EnumMember(int):
    def __new__(cls, enum_name: str, name: str, value: int) -> EnumMember:
        member = super().__new__(cls, value)
        member.name = name
        member._enum = enum_name
        return member

    def __repr__(self) -> str:
        return f"{self._enum}.{self.name}"


class FakeEnum:
    """Members as attributes; deprecated ones are recorded, absent ones raise."""

    def __init__(
        self, name: str, members: dict[str, int], deprecated: dict[str, int], tracker: list[str]
    ) -> None:
        self._name = name
        self._members = {k: EnumMember(name, k, v) for k, v in members.items()}
        self._deprecated = {k: EnumMember(name, k, v) for k, v in deprecated.items()}
        self._tracker = tracker

    def __getattr__(self, attr: str) -> EnumMember:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr in self._members:
            return self._members[attr]
        if attr in self._deprecated:
            self._tracker.append(f"{self._name}.{attr}")
            return self._deprecated[attr]
        raise AttributeError(f"type object 'tensorrt.{self._name}' has no attribute '{attr}'")

    def __iter__(self):
        return iter(self._members.values())


class IHostMemory(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


def make_fake_tensorrt(gpu: FakeGpu, major: int = 11, *, same_cc: bool = True) -> FakeTensorRT:
    assert same_cc or major == 10, "only a 10.x release lacks SAME_COMPUTE_CAPABILITY"
    version = VERSIONS[major] if same_cc else BEFORE_SAME_CC
    mod = types.ModuleType("tensorrt")
    state = FakeTensorRT(version=version, module=mod)
    used = state.deprecated_used
    mod.__version__ = version
    mod.fake = state

    old = major == 10
    builder_flags = {
        "TF32": 6,
        "REFIT": 7,
        "DEBUG": 8,
        "GPU_FALLBACK": 9,
        "VERSION_COMPATIBLE": 16,
        "EXCLUDE_LEAN_RUNTIME": 17,
        "STRIP_PLAN": 19,
    }
    weak = {
        "FP16": 0,
        "INT8": 1,
        "OBEY_PRECISION_CONSTRAINTS": 10,
        "PREFER_PRECISION_CONSTRAINTS": 11,
        "BF16": 22,
    }
    mod.BuilderFlag = FakeEnum("BuilderFlag", builder_flags, weak if old else {}, used)
    mod.NetworkDefinitionCreationFlag = FakeEnum(
        "NetworkDefinitionCreationFlag",
        {"STRONGLY_TYPED": 1} if old else {"STRONGLY_TYPED": 0},
        {"EXPLICIT_BATCH": 0} if old else {},
        used,
    )
    mod.MemoryPoolType = FakeEnum(
        "MemoryPoolType", {"WORKSPACE": 0, "TACTIC_SHARED_MEMORY": 3}, {}, used
    )
    hw = {"NONE": 0, "AMPERE_PLUS": 1}
    if same_cc:
        hw["SAME_COMPUTE_CAPABILITY"] = 2
    mod.HardwareCompatibilityLevel = FakeEnum("HardwareCompatibilityLevel", hw, {}, used)
    mod.TensorIOMode = FakeEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2}, {}, used)
    mod.DataType = FakeEnum("DataType", {"FLOAT": 0, "HALF": 1, "INT32": 3}, {}, used)

    def nptype(dtype):
        return {0: np.float32, 1: np.float16, 3: np.int32}[int(dtype)]

    mod.nptype = nptype

    class Logger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self, min_severity: int = 2) -> None:
            self.min_severity = min_severity
            state.loggers.append(self)

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    mod.Logger = Logger
    mod.IProgressMonitor = IProgressMonitor

    # -- network and parser --------------------------------------------------------------

    class ITensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
            self.name, self.shape, self.dtype = name, shape, dtype

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[ITensor] = []
            self.outputs: list[ITensor] = []
            self.metadata: dict[str, str] = {}
            self.initializer_types: Counter[str] = Counter()

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

        def get_input(self, i: int) -> ITensor:
            return self.inputs[i]

        def get_output(self, i: int) -> ITensor:
            return self.outputs[i]

    class ParserError:  # what parser.get_error returns (the C++ IParserError)
        def __init__(self, index: int, node: Any, desc: str) -> None:
            self._index, self._node, self._desc = index, node, desc

        def code(self) -> int:
            return 8  # UNSUPPORTED_NODE

        def desc(self) -> str:
            return self._desc

        def node(self) -> int:
            return self._index

        def node_name(self) -> str:
            return self._node.name if self._node is not None else ""

        def node_operator(self) -> str:
            return self._node.op_type if self._node is not None else ""

    # the parser's op list as the project's TensorRT lint knows it (10.x/11.x)
    from overnet.export.trt_lint import TRT_SUPPORTED_OPS as supported

    class OnnxParser:
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            self._network = network
            self._errors: list[ParserError] = []

        @property
        def num_errors(self) -> int:
            return len(self._errors)

        def get_error(self, i: int) -> ParserError:
            return self._errors[i]

        def parse_from_file(self, path: str) -> bool:
            import onnx

            assert isinstance(path, str)
            model = onnx.load(path)
            opset = max((o.version for o in model.opset_import if o.domain == ""), default=0)
            if opset > MAX_OPSET:  # an error about the whole model: tied to no node
                self._errors.append(
                    ParserError(-1, None, f"Unsupported ONNX opset version {opset}")
                )
                return False
            for i, node in enumerate(model.graph.node):
                if node.op_type not in supported:
                    self._errors.append(
                        ParserError(i, node, f"No importer registered for op: {node.op_type}")
                    )
            if self._errors:
                return False
            elem = {1: mod.DataType.FLOAT, 10: mod.DataType.HALF}

            def tensor(value):
                dims = tuple(
                    d.dim_value if d.HasField("dim_value") else -1
                    for d in value.type.tensor_type.shape.dim
                )
                return ITensor(value.name, dims, elem[value.type.tensor_type.elem_type])

            self._network.inputs = [tensor(v) for v in model.graph.input]
            # what a strongly typed build takes its precision from: the weights' types
            self._network.initializer_types = Counter(
                onnx.TensorProto.DataType.Name(t.data_type) for t in model.graph.initializer
            )
            self._network.outputs = [tensor(v) for v in model.graph.output]
            self._network.metadata = {p.key: p.value for p in model.metadata_props}
            return True

    # -- builder ---------------------------------------------------------------------------

    class ITimingCache:
        """Serialized as ``TCACHE:<entries>@<version>/<gpu>``: a cache from another TensorRT
        or GPU is refused by ``set_timing_cache(cache, ignore_mismatch=False)``."""

        def __init__(self, entries: int, loaded: bool, made_for: str = "") -> None:
            self.entries, self.loaded = entries, loaded
            self.made_for = made_for or f"{version}/{gpu.name}"

        def serialize(self) -> IHostMemory:
            return IHostMemory(f"TCACHE:{self.entries}@{self.made_for}".encode())

    class IOptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:
            lo, mid, hi = (tuple(int(v) for v in s) for s in (min, opt, max))
            assert len(lo) == len(mid) == len(hi)
            assert all(a <= b <= c for a, b, c in zip(lo, mid, hi, strict=True)), (
                "min <= opt <= max"
            )
            self.shapes[name] = (lo, mid, hi)

    class IBuilderConfig:
        def __init__(self) -> None:
            self.flags_set: list[Any] = []
            self.pool_limits: dict[Any, int] = {}
            self._opt_level = 3
            self.hardware_compatibility_level = mod.HardwareCompatibilityLevel.NONE
            self.progress_monitor = None
            self.profiles: list[IOptimizationProfile] = []
            self.timing_cache: ITimingCache | None = None
            self.ignore_mismatch: bool | None = None

        @property
        def builder_optimization_level(self) -> int:
            return self._opt_level

        @builder_optimization_level.setter
        def builder_optimization_level(self, level: int) -> None:
            assert isinstance(level, int) and 0 <= level <= 5
            self._opt_level = level

        def set_flag(self, flag: EnumMember) -> None:
            assert flag._enum == "BuilderFlag"
            self.flags_set.append(flag)

        def get_flag(self, flag: EnumMember) -> bool:
            return flag in self.flags_set

        def set_memory_pool_limit(self, pool: EnumMember, size: int) -> None:
            assert pool._enum == "MemoryPoolType" and size > 0
            self.pool_limits[pool.name] = size

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> ITimingCache | None:
            data = bytes(data)
            if state.timing_cache_none:
                return None
            if not data:
                return ITimingCache(0, False)
            assert data.startswith(b"TCACHE:"), "not a timing cache"
            entries, _, made_for = data[7:].decode().partition("@")
            return ITimingCache(int(entries), True, made_for)

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            assert isinstance(ignore_mismatch, bool)
            if cache.made_for != f"{version}/{gpu.name}" and not ignore_mismatch:
                return False  # TensorRT logs the mismatch and keeps no cache
            self.timing_cache, self.ignore_mismatch = cache, ignore_mismatch
            return True

        def get_timing_cache(self) -> ITimingCache | None:
            return None if state.no_timing_cache_out else self.timing_cache

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def __getattr__(self, attr: str) -> Any:
            if old and f"Builder.{attr}" in REMOVED_IN_11:
                used.append("Builder.platform_has_fast_fp16")
                return True
            raise AttributeError(f"'tensorrt.Builder' object has no attribute '{attr}'")

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            network = INetworkDefinition(flags)
            state.networks.append(network)
            return network

        def create_builder_config(self) -> IBuilderConfig:
            config = IBuilderConfig()
            state.configs.append(config)
            return config

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(
            self, network: INetworkDefinition, config: IBuilderConfig
        ) -> IHostMemory | None:
            strongly = 1 << int(mod.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            assert network.flags == strongly, f"network flags {network.flags} != {strongly}"
            assert len(config.profiles) == 1, "one optimisation profile expected"
            shapes = config.profiles[0].shapes
            assert set(shapes) == {t.name for t in network.inputs}, "profile misses an input"
            state.builds += 1
            monitor = config.progress_monitor
            if monitor is not None:
                monitor.phase_start("Building engine", None, 2)
                monitor.phase_start("Tactic selection", "Building engine", 3)
                for step in range(3):
                    monitor.step_complete("Tactic selection", step)
                monitor.phase_finish("Tactic selection")
                monitor.step_complete("Building engine", 0)
                monitor.phase_finish("Building engine")
            if config.timing_cache is not None:
                config.timing_cache.entries += 5
            if state.fail_build:
                return None
            lo, mid, hi = next(iter(shapes.values()))
            channels = network.outputs[0].shape[1] if len(network.outputs[0].shape) == 4 else -1
            header = {
                "version": version,
                "scale": float(network.metadata.get("overnet.scale", 2)),
                "input": network.inputs[0].name,
                "output": network.outputs[0].name,
                "channels": channels if channels > 0 else 3,
                "profile": [lo, mid, hi],
                "version_compatible": config.get_flag(mod.BuilderFlag.VERSION_COMPATIBLE),
            }
            return IHostMemory(ENGINE_MAGIC + json.dumps(header).encode())

    mod.Builder = Builder
    mod.OnnxParser = OnnxParser
    for cls in (ITensor, INetworkDefinition, ParserError, ITimingCache, IOptimizationProfile):
        setattr(mod, cls.__name__, cls)
    mod.IBuilderConfig = IBuilderConfig

    # -- runtime ---------------------------------------------------------------------------

    class IExecutionContext:
        def __init__(self, engine: ICudaEngine) -> None:
            self._engine = engine
            self._shape: tuple[int, ...] | None = None
            self.addresses: dict[str, int] = {}
            self.executions = 0

        def set_input_shape(self, name: str, shape: Any) -> bool:
            assert name == self._engine.input
            shape = tuple(int(v) for v in shape)
            lo, _, hi = self._engine.profile
            if len(shape) != 4 or not all(
                a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)
            ):
                return False
            self._shape = shape
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            assert self._shape is not None, "set_input_shape first"
            if name == self._engine.input:
                return self._shape
            n, _, h, w = self._shape
            c = self._engine.header.get("channels", 3)
            if state.data_dependent_output:
                return (n, c, -1, -1)
            s = self._engine.scale
            return (n, c, math.floor(h * s + 0.5), math.floor(w * s + 0.5))

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            assert isinstance(ptr, int) and ptr, "an int device address"
            assert name in (self._engine.input, self._engine.output)
            if ptr % ALIGNMENT:
                state.errors.append(f"address {ptr:#x} of '{name}' is not {ALIGNMENT}-aligned")
                return False
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            assert isinstance(stream_handle, int)
            eng = self._engine
            assert self._shape is not None
            if set(self.addresses) != {eng.input, eng.output}:
                state.errors.append("execute_async_v3: a tensor address was never set")
                return False
            if state.fail_in_capture and stream_handle in gpu.capturing:
                state.errors.append("execute_async_v3: an operation not permitted in capture")
                gpu.invalidate(stream_handle, cudaError_t.cudaErrorStreamCaptureUnsupported)
                return False
            gpu.kernels_on.append(stream_handle)
            gpu.log.append("execute_async_v3")
            in_shape, out_shape = self._shape, self.get_tensor_shape(eng.output)
            src, dst = self.addresses[eng.input], self.addresses[eng.output]

            def kernel():
                self.executions += 1
                x = gpu.region(src, int(np.prod(in_shape)) * 4, "device").view(np.float32)
                y = gpu.region(dst, int(np.prod(out_shape)) * 4, "device").view(np.float32)
                x = x.reshape(in_shape)[:, np.arange(out_shape[1]) % in_shape[1]]
                rows = np.minimum(
                    (np.arange(out_shape[2]) / eng.scale).astype(int), in_shape[2] - 1
                )
                cols = np.minimum(
                    (np.arange(out_shape[3]) / eng.scale).astype(int), in_shape[3] - 1
                )
                y[:] = x[:, :, rows][:, :, :, cols].ravel()

            gpu.on_stream(stream_handle, kernel)
            return True

    class ICudaEngine:
        def __init__(self, header: dict) -> None:
            self.header = header
            self.input, self.output = header["input"], header["output"]
            self.scale = header["scale"]
            self.profile = [tuple(p) for p in header["profile"]]
            self.contexts: list[IExecutionContext] = []

        def __getattr__(self, attr: str) -> Any:
            if old and f"ICudaEngine.{attr}" in REMOVED_IN_11:
                used.append("ICudaEngine.device_memory_size")
                return 1 << 20
            raise AttributeError(f"'tensorrt.ICudaEngine' object has no attribute '{attr}'")

        @property
        def num_io_tensors(self) -> int:
            return 2

        @property
        def device_memory_size_v2(self) -> int:
            return 64 << 20

        def get_tensor_name(self, i: int) -> str:
            return [self.input, self.output][i]

        def get_tensor_mode(self, name: str) -> EnumMember:
            return mod.TensorIOMode.INPUT if name == self.input else mod.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> EnumMember:
            return mod.DataType.FLOAT

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return (-1, 3 if name == self.input else self.header.get("channels", 3), -1, -1)

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple]:
            assert name == self.input and profile_index == 0
            return list(self.profile)

        def create_execution_context(self) -> IExecutionContext:
            context = IExecutionContext(self)
            self.contexts.append(context)
            return context

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger
            self.engine_host_code_allowed = False
            state.runtimes.append(self)

        def deserialize_cuda_engine(self, data: bytes) -> ICudaEngine | None:
            data = bytes(data)
            if not data.startswith(ENGINE_MAGIC):
                return None
            try:
                header = json.loads(data[len(ENGINE_MAGIC) :])
            except ValueError:
                return None  # truncated: TensorRT logs an error and returns None
            if header["version_compatible"]:
                if not self.engine_host_code_allowed:
                    return None
            elif header["version"] != version:
                return None
            return ICudaEngine(header)

    mod.Runtime = Runtime
    mod.ICudaEngine = ICudaEngine
    mod.IExecutionContext = IExecutionContext
    mod.IHostMemory = IHostMemory
    return state
