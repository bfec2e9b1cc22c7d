"""Read an ONNX file's ``metadata_props`` without the onnx package (protobuf wire format).

OpenVINO does not expose ONNX metadata, and the runtime must not need ``onnx`` installed.
ModelProto field 14 is ``repeated StringStringEntryProto metadata_props`` (key=1, value=2).
"""

from __future__ import annotations

from pathlib import Path

from overnet.errors import InputError

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
        raise InputError(
            f"{path} is not a readable ONNX model ({exc}); expected a file written by "
            "`overnet export` or another ONNX exporter"
        ) from None
