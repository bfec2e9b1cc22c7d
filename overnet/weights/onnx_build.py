"""A checkpoint's inference graph as an ONNX ModelProto (torch.onnx, dynamic axes,
overnet metadata, optional fp16), unvalidated.

Below the runtime on purpose: an ONNX backend handed a checkpoint exports it once into
its cache with this (``overnet.runtime.model_source.cached_onnx``); `overnet export`
(``overnet.export.onnx_export``) adds validation against PyTorch, slimming and the
checked write.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

from overnet._optional import require
from overnet._version import __version__
from overnet.errors import ExportError, InputError
from overnet.formats.onnx_metadata import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, ModelMetadata
from overnet.formats.overscale_head import OVERSCALE_OUTPUT

MIN_OPSET = 17


def checkpoint_graph(
    weights,
    *,
    scale: float | None = None,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    static_shape: tuple[int, int] | None = None,
    overscale: bool = False,
    concat_free: bool = False,
):
    """(ModelProto, the torch model, ModelMetadata) of the checkpoint ``weights``:
    input ``lr`` N x 3 x H x W float32 RGB [0, 1], output ``sr`` (or, with
    ``overscale``, the overscaled features and the head that finishes them)."""
    onnx = require("onnx", "ONNX export")
    from overnet.weights.api import load_weights

    max_opset = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= max_opset:
        raise InputError(
            f"opset {opset} is not available: the installed onnx {onnx.__version__} and exporter "
            f"produce opsets {MIN_OPSET}..{max_opset} (default {DEFAULT_OPSET})"
        )
    if overscale and scale is not None:
        raise InputError(
            "an --overscale graph serves every scale of its model: give the scale when "
            "running it (overnet upscale --scale), not when exporting"
        )
    loaded = load_weights(weights, scale)
    model = loaded.build()
    head = ""
    if overscale:
        from overnet.model.overscale import overscale_head

        head = overscale_head(model).to_text()
    metadata = ModelMetadata(
        scale=float(loaded.config.upscale if overscale else loaded.config.scale),
        upscale=loaded.config.upscale,
        precision="fp16" if fp16 else "fp32",
        opset=opset,
        source_sha256=loaded.sha256,
        overnet_version=__version__,
        channels=loaded.config.channels,
        output=OVERSCALE_OUTPUT if overscale else "image",
        head=head,
    )
    proto = build_onnx(
        model,
        metadata,
        dynamic_batch=dynamic_batch,
        static_shape=static_shape,
        concat_free=concat_free,
    )
    return proto, model, metadata


def build_onnx(
    model,
    metadata: ModelMetadata,
    *,
    dynamic_batch: bool = True,
    static_shape: tuple[int, int] | None = None,
    concat_free: bool = False,
):
    """Trace the folded inference graph to an in-memory ONNX ModelProto (``concat_free``:
    its dense concatenations rewritten as split 1x1 products, overnet.model.concat_free)."""
    onnx = require("onnx", "ONNX export")
    torch = require("torch", "ONNX export")
    from overnet.model.graph import InferenceGraph

    if metadata.overscale:
        graph = InferenceGraph(model, overscale=True).eval()
    else:
        graph = InferenceGraph(model, metadata.scale).eval()
    if concat_free:
        from overnet.model.concat_free import ConcatFreeGraph

        graph = ConcatFreeGraph(graph).eval()
    h, w = static_shape or (64, 64)
    example = torch.rand(2 if dynamic_batch else 1, 3, h, w)
    dims: dict[int, object] = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=4096)
    if static_shape is None:
        dims[2] = torch.export.Dim("height", min=1, max=16384)
        dims[3] = torch.export.Dim("width", min=1, max=16384)
    with tempfile.TemporaryDirectory() as tmp, _quiet_exporter():
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                graph,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=metadata.opset,
                dynamo=True,
                dynamic_shapes={"lr": dims} if dims else None,
                external_data=False,
                optimize=True,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; keep its message
            raise ExportError(f"torch.onnx.export failed at opset {metadata.opset}: {exc}") from exc
        proto = onnx.load(str(path))
    actual = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if actual != metadata.opset:
        raise ExportError(
            f"the installed exporter produced opset {actual}, not the requested {metadata.opset}; "
            f"choose --opset {actual} or newer"
        )
    _name_nodes(proto)
    if metadata.precision == "fp16":
        from overnet.weights.onnx_fp16 import convert_to_fp16

        proto = convert_to_fp16(proto)
    del proto.metadata_props[:]
    for key, value in metadata.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "overnet", __version__
    onnx.checker.check_model(proto)
    return proto


def node_counts(proto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _name_nodes(proto) -> None:
    """Give every node a unique name (fp16 block lists and error messages use them)."""
    seen: set[str] = set()
    for i, node in enumerate(proto.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


class _quiet_exporter:
    """Silence the exporter's progress prints and warnings (they are not actionable)."""

    def __enter__(self):
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")
        self._level = logging.getLogger("torch").level
        logging.getLogger("torch").setLevel(logging.ERROR)
        import contextlib
        import io

        self._stdout = contextlib.redirect_stdout(io.StringIO())
        self._stdout.__enter__()
        return self

    def __exit__(self, *exc):
        self._stdout.__exit__(*exc)
        logging.getLogger("torch").setLevel(self._level)
        self._catch.__exit__(*exc)
        return False
