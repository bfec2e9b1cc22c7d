"""The metadata map every edge file carries."""

from __future__ import annotations

import json

import pytest

from overnet.errors import ModelLoadError
from overnet.formats.edge_metadata import edge_props, parse_edge_json, parse_edge_props
from overnet.formats.onnx_metadata import ModelMetadata


def test_the_map_round_trips_through_json():
    model = ModelMetadata(scale=2.0, upscale=3, precision="fp16", opset=0, min_size=40)
    props = edge_props(model, (40, 48), 16, "litert")
    meta = parse_edge_json(json.dumps(props), "x.tflite")
    assert meta.model == model and meta.tile == (40, 48) and meta.overlap == 16
    assert meta.format == "litert" and json.loads(meta.to_json()) == props


@pytest.mark.parametrize("missing", ["overnet.scale", "overnet.tile_width", "overnet.overlap"])
def test_a_file_without_overnets_keys_is_named_with_what_wrote_it(missing):
    model = ModelMetadata(scale=2.0, upscale=3, precision="fp32", opset=0)
    props = edge_props(model, (64, 64), 16, "executorch")
    del props[missing]
    with pytest.raises(ModelLoadError, match=r"x\.pte has no readable overnet metadata.*"):
        parse_edge_props(props, "x.pte")


@pytest.mark.parametrize("text", [b"\xff", b"[1, 2]", b"null"])
def test_metadata_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(ModelLoadError, match="x.tflite"):
        parse_edge_json(text, "x.tflite")
