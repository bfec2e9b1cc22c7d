"""The concat-free graph: the same function as the exact folded graph in PyTorch, exported
and validated against PyTorch like every export, with no Concat left on the feature path
(the Concats that remain build the Resize sizes), marked in the metadata; --overscale
graphs are refused."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

import onnx
import torch

from overnet.errors import InputError
from overnet.export import export_onnx
from overnet.model.concat_free import ConcatFreeGraph
from overnet.model.graph import InferenceGraph
from overnet.weights import load_model


def test_the_rewrite_computes_the_exact_graph(x2_weights):
    graph = InferenceGraph(load_model(x2_weights, 2), 2).eval()
    rewritten = ConcatFreeGraph(graph).eval()
    x = torch.rand(2, 3, 21, 30, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (rewritten(x) - graph(x)).abs().max().item() < 1e-5
    names = [type(m).__name__ for m in rewritten.modules()]
    assert "LocalDenseGroup" not in names  # the groups are replaced, not wrapped


@pytest.mark.slow
def test_the_export_has_no_concat_on_the_feature_path(x2_weights, tmp_path):
    result = export_onnx(x2_weights, tmp_path / "cf.onnx", concat_free=True)
    assert result.validation is not None and result.validation.passed
    assert max(c.max_abs for c in result.validation.comparisons) <= 1e-4
    proto = onnx.load(str(result.path))
    consumers = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    concats = [n for n in proto.graph.node if n.op_type == "Concat"]
    assert all("Conv" not in consumers.get(n.output[0], []) for n in concats)
    assert result.node_counts["Split"] >= 12
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["overnet.graph"] == "concat-free"
    with pytest.raises(InputError, match="--concat-free covers graphs that end in RGB"):
        export_onnx(x2_weights, tmp_path / "o.onnx", concat_free=True, overscale=True)
    assert not (tmp_path / "o.onnx").exists()
