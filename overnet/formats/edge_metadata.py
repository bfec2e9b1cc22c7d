"""What an edge file (LiteRT, ExecuTorch, Core ML) carries about itself.

The ``overnet.*`` keys of the ONNX export (``ModelMetadata``) plus the fixed tile the
file was converted at (phones and XNNPACK want fixed shapes; the runtime tiles any image
with it) and the overlap its tiles were planned with. Each format stores the same string
map inside the file: a JSON object in the LiteRT flatbuffer's metadata named
``overnet``, a constant method of the ExecuTorch program, Core ML user-defined metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from overnet.errors import ModelLoadError
from overnet.formats.onnx_metadata import ModelMetadata

#: the tile the file takes: input 1 x 3 x tile_height x tile_width
TILE_HEIGHT, TILE_WIDTH = "overnet.tile_height", "overnet.tile_width"
#: input pixels neighbouring tiles share (what the file's users should blend with)
OVERLAP = "overnet.overlap"
#: "litert", "executorch" or "coreml"
FORMAT = "overnet.format"
#: the name under which LiteRT and ExecuTorch files store the JSON map
METADATA_NAME = "overnet"


@dataclass(frozen=True)
class EdgeMetadata:
    """An edge file's metadata: the model's facts, its fixed tile and overlap."""

    model: ModelMetadata
    tile: tuple[int, int]  # (height, width), input pixels
    overlap: int
    format: str
    props: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(self.props, sort_keys=True)


def edge_props(
    model: ModelMetadata, tile: tuple[int, int], overlap: int, fmt: str
) -> dict[str, str]:
    """The string map written into an edge file."""
    return {
        **model.to_props(),
        TILE_HEIGHT: str(tile[0]),
        TILE_WIDTH: str(tile[1]),
        OVERLAP: str(overlap),
        FORMAT: fmt,
    }


def parse_edge_props(props: dict[str, str], source: str | Path) -> EdgeMetadata:
    """EdgeMetadata from the map an edge file holds; ModelLoadError naming ``source``
    when it was not written by `overnet export`."""
    model = ModelMetadata.from_props(props)
    try:
        if model is None:
            raise KeyError("overnet.scale")
        tile = (int(props[TILE_HEIGHT]), int(props[TILE_WIDTH]))
        return EdgeMetadata(model, tile, int(props[OVERLAP]), props[FORMAT], dict(props))
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(
            f"{source} has no readable overnet metadata ({exc}); overnet runs the LiteRT, "
            "ExecuTorch and Core ML files `overnet export --format litert|executorch|coreml` "
            "writes"
        ) from None


def parse_edge_json(data: bytes | str, source: str | Path) -> EdgeMetadata:
    """``parse_edge_props`` of the JSON text stored in the file."""
    try:
        props = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{source}: its overnet metadata is not JSON ({exc})") from None
    if not isinstance(props, dict):
        raise ModelLoadError(f"{source}: its overnet metadata is not a JSON object")
    return parse_edge_props({str(k): str(v) for k, v in props.items()}, source)
