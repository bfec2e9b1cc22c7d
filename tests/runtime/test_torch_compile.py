"""The torch-compile variant (the peer a PyTorch user would try in `overnet bench`): inductor
over the channels_last module, bf16 where the CPU has it natively. Opening compiles nothing
(torch.compile is lazy: the first run of a shape compiles, which the bench counts as cold
start), so this checks the choice without paying for a compile."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from overnet.runtime import open_session
from overnet.runtime.precision import native_bf16
from overnet.runtime.registry import VARIANTS


def test_torch_compile_opens_inductor_channels_last_in_the_native_precision(x2_weights):
    assert VARIANTS["torch-compile"][0] == "torch"
    with open_session(x2_weights, "torch-compile", scale=2) as session:
        assert session.info.backend == "torch-compile"
        assert session.info.precision == ("bf16" if native_bf16() else "fp32")
        assert any("inductor" in note for note in session.info.notes)
        assert any("channels_last" in note for note in session.info.notes)
        assert type(session._module).__name__ == "OptimizedModule"
