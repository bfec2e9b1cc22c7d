"""`overnet bench` end to end with the real torch backend on a tiny input."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")


def test_bench_fresh_weights_torch_rows(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from overnet.bench.report import validate_report
    from overnet.cli import main

    monkeypatch.setenv("OVERNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OVERNET_SHARED", raising=False)
    empty = tmp_path / "shared"
    empty.mkdir()
    out = tmp_path / "b.json"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--shared",
            str(empty),
            "--backends",
            "torch,torch-cl",
            "--scales",
            "2",
            "--sizes",
            "16x12",
            "--batch",
            "1,2",
            "--warmup",
            "0",
            "--iters",
            "2",
            "--json",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "FRESHLY INITIALISED" in result.output
    data = json.loads(out.read_text())
    assert validate_report(data) == []
    assert [r["status"] for r in data["rows"]] == ["ok"] * 4
    assert {(r["width"], r["height"], r["batch"]) for r in data["rows"]} == {
        (16, 12, 1),
        (16, 12, 2),
    }
    cl = [r for r in data["rows"] if r["backend"] == "torch-cl"]
    assert all(r["agreement"]["agrees"] for r in cl)
    assert all(r["output_width"] == 32 and r["output_height"] == 24 for r in data["rows"])
    assert data["model"]["real_weights"] is False
