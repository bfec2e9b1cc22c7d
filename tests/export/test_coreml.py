"""`overnet export --format coreml`: the package converts here and its spec holds what
an iOS app needs (input, output, shapes, metadata). Core ML predicts on macOS only, so
nothing here runs the model."""

from __future__ import annotations

import platform

import pytest

from overnet.errors import ExportError
from overnet.export.coreml import check_spec
from tests.edge_files import TILE, x2_mlpackage  # noqa: F401  (a session fixture)

#: each file is converted once per session (20-60 s of CPU on 2 cores)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spec(x2_mlpackage):  # noqa: F811
    import coremltools as ct

    path, _ = x2_mlpackage
    return ct.utils.load_spec(str(path))


def test_the_package_converts_with_the_spec_an_app_expects(x2_mlpackage, spec):  # noqa: F811
    _, output = x2_mlpackage
    assert f"(coreml, fp16, x2, tile {TILE[1]}x{TILE[0]} (WxH)" in output
    if platform.system() != "Darwin":
        assert "not run: Core ML predicts on macOS only" in output
    meta = check_spec(spec)
    assert meta.tile == TILE and meta.model.scale == 2 and meta.model.precision == "fp16"
    assert meta.format == "coreml" and meta.overlap == 16
    (inp,), (out,) = spec.description.input, spec.description.output
    assert (inp.name, list(inp.type.multiArrayType.shape)) == ("lr", [1, 3, 40, 48])
    assert (out.name, list(out.type.multiArrayType.shape)) == ("sr", [1, 3, 80, 96])
    assert spec.WhichOneof("Type") == "mlProgram"


def test_a_spec_that_differs_from_the_request_is_refused(spec):
    import copy

    wrong = copy.deepcopy(spec)
    wrong.description.output[0].type.multiArrayType.shape[2] = 81
    with pytest.raises(ExportError, match=r"output shape \[1, 3, 81, 96\], expected"):
        check_spec(wrong)
    unlabelled = copy.deepcopy(spec)
    del unlabelled.description.metadata.userDefined["overnet.scale"]
    with pytest.raises(Exception, match="no readable overnet metadata"):
        check_spec(unlabelled)
