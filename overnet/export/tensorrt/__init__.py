"""FP16 TensorRT engines from overnet's FP16 ONNX export (TensorRT 10.x and 11.x).

Nothing here imports tensorrt at import time; building needs the ``tensorrt`` extra and
a CUDA GPU.
"""

from overnet.export.tensorrt.build import EngineBuildError, build_engine, network_flags
from overnet.export.tensorrt.engine_export import EngineExport, export_tensorrt
from overnet.export.tensorrt.options import BuildOptions
from overnet.export.tensorrt.trtexec import trtexec_command
from overnet.formats.profile import Profile, engine_file_name, parse_shape
from overnet.formats.sidecar import (
    EngineMismatchError,
    EngineSidecar,
    read_sidecar,
    sidecar_path,
)

__all__ = [
    "BuildOptions",
    "EngineBuildError",
    "EngineExport",
    "EngineMismatchError",
    "EngineSidecar",
    "Profile",
    "build_engine",
    "engine_file_name",
    "export_tensorrt",
    "network_flags",
    "parse_shape",
    "read_sidecar",
    "sidecar_path",
    "trtexec_command",
]
