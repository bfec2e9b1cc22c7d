"""Which layers of an INT8 model stay float: the convolutions a ``keep_float`` choice names
(found by the module names torch's ONNX exporter records), the image path that is never
quantised, NNCF's IgnoredScope of both, and what a quantised model left in float."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overnet._optional import require
from overnet.errors import InputError

#: convolutions never quantised: "ends" = the entry and exit convolutions, "fusion" = those
#: and the body's dense fusion (modules net.reduction1-3 and net.reduction: 1x1 convolutions
#: over concatenations of the entry features and the groups' outputs), "reconstruction" =
#: the ends and the overscale reconstruction's grouped convolution. The image path is
#: never quantised, whatever this says (``image_path``).
KEEP_FLOAT = ("none", "ends", "fusion", "reconstruction")
#: the modules "fusion" keeps in float, as the ONNX export's name scopes spell them
FUSION_MODULES = ("net.reduction1", "net.reduction2", "net.reduction3", "net.reduction")
#: ONNX node metadata (torch's exporter) listing the modules a node was called in
_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_CONVS = ("Convolution", "GroupConvolution")


def module_scopes(onnx_path: Path) -> dict[str, tuple[str, ...]]:
    """ONNX node name -> the modules it was called in (``net.GDG1``, ``net.GDG1.RB1`` ...),
    from the node metadata torch's exporter writes; empty when the file has none."""
    import ast

    onnx = require("onnx", "ONNX export")
    proto = onnx.load(str(onnx_path), load_external_data=False)
    scopes = {}
    for node in proto.graph.node:
        for prop in node.metadata_props:
            if prop.key == _SCOPES_KEY:
                scopes[node.name] = tuple(ast.literal_eval(prop.value))
    return scopes


def keep_float_names(
    model: Any, keep: str, scopes: dict[str, tuple[str, ...]] | None = None
) -> list[str]:
    """Friendly names of the convolutions ``keep`` (one of KEEP_FLOAT) leaves in float.
    "fusion" needs ``scopes`` (``module_scopes`` of the ONNX file the model came from)."""
    if keep not in KEEP_FLOAT:
        raise InputError(f"keep_float must be one of {', '.join(KEEP_FLOAT)}, got {keep!r}")
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() in _CONVS]
    if keep == "none" or not convs:
        return []
    names = [convs[0].get_friendly_name(), convs[-1].get_friendly_name()]
    if keep == "reconstruction":
        names += [op.get_friendly_name() for op in convs if op.get_type_name() == _CONVS[1]]
    if keep == "fusion":
        fusion = [
            op.get_friendly_name()
            for op in convs
            if set(FUSION_MODULES)
            & set((scopes or {}).get(op.get_friendly_name().removesuffix("/WithoutBiases"), ()))
        ]
        if len(fusion) != len(FUSION_MODULES):
            raise InputError(
                f"keep_float 'fusion' found {len(fusion)} of the {len(FUSION_MODULES)} fusion "
                "convolutions: it needs the module names torch's ONNX exporter records "
                f"({_SCOPES_KEY}); use keep_float 'ends' for another file"
            )
        names += fusion
    return sorted(set(names))


def image_path(model: Any) -> list[str]:
    """Friendly names of the ops that carry the picture itself: the subtraction that reads
    the input and the op that produces the output (the residual Add). With the bicubic
    resizes (ignored by type) they are never quantised: an INT8 quantiser there rounds
    the image to 8 bits over a calibrated range and clips what lies outside it."""
    names = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "Subtract" and any(
            v.get_node().get_type_name() == "Parameter" for v in op.input_values()
        ):
            names.append(op.get_friendly_name())
        elif kind == "Result":
            names.append(op.input_value(0).get_node().get_friendly_name())
    return names


def ignored_scope(model: Any, keep: list[str]) -> Any:
    """NNCF's IgnoredScope: the convolutions ``keep`` and the image path."""
    nncf = require("nncf", "INT8 quantisation", extra="int8")
    return nncf.IgnoredScope(
        names=sorted({*keep, *image_path(model)}), types=["Interpolate"], validate=False
    )


def int8_weights(op: Any) -> bool:
    """True when the weights of convolution ``op`` are INT8: a FakeQuantize on them (as
    NNCF leaves the model) or an 8-bit constant behind Convert (as a saved IR holds it)."""
    node = op.input_value(1).get_node()
    for _ in range(4):
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            return node.get_element_type().get_type_name() in ("i8", "u8", "i4", "u4")
        if node.get_input_size() == 0:
            return False
        node = node.input_value(0).get_node()
    return False


def float_layers(model: Any) -> tuple[int, list[str]]:
    """(FakeQuantize count, names of the convolutions left in float). NNCF never quantises
    the squeeze-excitation convolutions (1x1 maps after a global pool): they are listed."""
    ops = model.get_ordered_ops()
    quantizers = sum(op.get_type_name() == "FakeQuantize" for op in ops)
    kept = [
        op.get_friendly_name().removesuffix("/WithoutBiases")
        for op in ops
        if op.get_type_name() in _CONVS and not int8_weights(op)
    ]
    return quantizers, kept
