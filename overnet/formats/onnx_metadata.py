"""ONNX ``metadata_props``: the ``overnet.*`` keys the exporter writes, and a reader that
needs neither torch nor the onnx package (protobuf wire format).

OpenVINO does not expose ONNX metadata, and the runtime must not need ``onnx`` installed.
ModelProto field 14 is ``repeated StringStringEntryProto metadata_props`` (key=1, value=2).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass
from pathlib import Path

from overnet.errors import ModelLoadError

#: the opset `overnet export` writes unless told otherwise (part of the export cache key)
DEFAULT_OPSET = 18
INPUT_NAME = "lr"
OUTPUT_NAME = "sr"


@dataclass(frozen=True)
class ModelMetadata:
    """What a runtime needs to know about an exported OverNet file."""

    scale: float
    upscale: int
    precision: str  # "fp32" or "fp16" (weights/activations; I/O is always float32)
    opset: int
    source_sha256: str = ""
    overnet_version: str = ""
    channels: int = 64
    color_order: str = "RGB"
    value_range: str = "0,1"
    layout: str = "NCHW"
    min_size: int = 1
    #: "image" (RGB at ``scale``), or "overscaled-features" (``--overscale``: F channels at
    #: ``scale`` = upscale, finished by the runtime with ``head``)
    output: str = "image"
    head: str = ""  # OverscaleHead.to_text() of a features graph

    @property
    def overscale(self) -> bool:
        return self.output != "image"

    def to_props(self) -> dict[str, str]:
        return {f"overnet.{k}": str(v) for k, v in self.__dict__.items() if v != ""}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata | None:
        """Parse ``overnet.*`` keys; None when the file was not exported by overnet."""
        values = {k[len("overnet.") :]: v for k, v in props.items() if k.startswith("overnet.")}
        if "scale" not in values:
            return None
        ints = {"upscale", "opset", "channels", "min_size"}
        parsed = {}
        for key, field in cls.__dataclass_fields__.items():
            if key in values:
                raw = values[key]
                parsed[key] = int(raw) if key in ints else float(raw) if key == "scale" else raw
            elif field.default is MISSING:  # a required key is absent
                return None
        return cls(**parsed)


_METADATA_FIELD = 14
_GRAPH_FIELD = 7


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes):
    """Yield (field_number, wire_type, payload) for each top-level field."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 1:
            pos += 8
            yield number, wire, None
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            yield number, wire, None
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != len(buf):
        raise ValueError("truncated field")


def parse_onnx_metadata(data: bytes) -> dict[str, str]:
    """``metadata_props`` of a serialized ModelProto; raises ValueError when not ONNX."""
    props: dict[str, str] = {}
    saw_graph = False
    for number, wire, payload in _fields(data):
        if number == _GRAPH_FIELD and wire == 2:
            saw_graph = True
        if number == _METADATA_FIELD and wire == 2:
            entry = {n: p for n, w, p in _fields(payload) if w == 2}
            props[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    if not saw_graph:
        raise ValueError("no graph field: not an ONNX model")
    return props


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of the ONNX file at ``path`` (empty for files without any)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return parse_onnx_metadata(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"{path} is not a readable ONNX model ({exc}); expected a file written by "
            "`overnet export` or another ONNX exporter"
        ) from exc
