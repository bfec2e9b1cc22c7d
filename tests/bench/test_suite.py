"""The suite with fake sessions (test doubles of overnet.runtime.Session): agreement
flagging, size limits, out-of-memory rows, reports, the plot and the JSON schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from overnet.bench.plot import write_plot
from overnet.bench.report import (
    format_markdown,
    format_table,
    to_dict,
    validate_report,
    write_csv,
    write_json,
)
from overnet.bench.runner import agreement
from overnet.bench.suite import BenchConfig, ModelEntry, check_backends, parse_sizes, run_suite
from overnet.config import OverNetConfig
from overnet.errors import InputError
from overnet.runtime.base import Session, SessionInfo


class FakeSession(Session):
    """Nearest-neighbour x2 upscaling; ``offset`` makes it deliberately wrong."""

    def __init__(self, backend, precision="fp32", offset=0.0, fail=None, **limits):
        self.info = SessionInfo(backend, "CPU", precision, 2.0, 3, **limits)
        self.offset, self.fail = offset, fail

    def _run(self, batch):
        if self.fail is not None:
            raise self.fail
        return batch.repeat(2, axis=2).repeat(2, axis=3) + np.float32(self.offset)


def make_config(tmp_path: Path, backends, sizes=((16, 16),), **kw) -> BenchConfig:
    weights = tmp_path / "fake.pth"
    weights.write_bytes(b"not opened: the fake opener never reads it")
    model = ModelEntry("fake.pth", weights, "checkpoint", False, OverNetConfig.for_scale(2), True)
    return BenchConfig(
        models=[model],
        sizes=list(sizes),
        backends=list(backends),
        warmup=0,
        iters=2,
        command="overnet bench (test)",
        **kw,
    )


def opener_for(sessions):
    return lambda spec: sessions[spec.backend]()


@pytest.fixture()
def report(tmp_path):
    sessions = {
        "torch": lambda: FakeSession("torch"),
        "torch-cl": lambda: FakeSession("torch-cl"),
        "onnxruntime": lambda: FakeSession("onnxruntime", offset=0.05),  # fast but wrong
        "openvino-bf16": lambda: FakeSession("openvino", "bf16", offset=1e-3),
    }
    config = make_config(tmp_path, ["onnxruntime", "torch", "torch-cl", "openvino-bf16"])
    return run_suite(config, opener=opener_for(sessions))


def test_agreement_flags_a_wrong_backend(report):
    rows = {r.spec.name: r for r in report.rows}
    assert [r.status for r in report.rows] == ["ok"] * 4
    assert report.rows[0].spec.name == "torch"  # the reference runs first
    assert rows["torch"].agreement == {"reference": True, "agrees": True}
    assert rows["torch-cl"].agreement["agrees"] is True
    assert rows["torch-cl"].agreement["max_abs"] == 0.0
    wrong = rows["onnxruntime"].agreement
    assert wrong["agrees"] is False
    assert wrong["max_abs"] == pytest.approx(0.05, rel=1e-5)
    assert wrong["psnr_db"] == pytest.approx(26.02, abs=0.01)
    bf16 = rows["openvino-bf16"].agreement  # reduced precision judged by PSNR (60 dB here)
    assert bf16["agrees"] is True and "PSNR" in bf16["rule"]
    table = format_table(report)
    assert "DISAGREES" in table
    assert "WARNING: output disagrees with PyTorch fp32: onnxruntime" in table
    assert rows["torch-cl"].speedup_vs_torch is not None


def test_agreement_shape_mismatch_and_nan():
    ref = np.zeros((1, 3, 4, 4), np.float32)
    assert agreement(np.zeros((1, 3, 4, 5), np.float32), ref, "fp32")["agrees"] is False
    assert agreement(np.full_like(ref, np.nan), ref, "fp32")["agrees"] is False
    same = agreement(ref.copy(), ref, "fp32")
    assert same["agrees"] is True and same["psnr_db"] is None  # identical


def test_json_schema_csv_markdown(report, tmp_path):
    path = write_json(report, tmp_path / "out" / "bench.json")
    data = json.loads(path.read_text())
    assert validate_report(data) == []
    assert data["schema"] == "overnet.bench/1"
    row = data["rows"][0]
    assert set(row["latency"]) == {"n", "min", "median", "p90", "p99", "mean", "std", "max"}
    assert row["latency"]["n"] == 2 and len(row["samples_s"]) == 2
    assert row["output_width"] == 32 and row["cold_start_s"] > 0
    assert data["model"]["per_scale"][0]["parameters"] == 923_358
    broken = dict(data, rows=[{**row, "status": "fine", "latency": None}])
    del broken["environment"]
    problems = validate_report(broken)
    assert any("environment" in p for p in problems)
    assert any("status" in p for p in problems)
    csv_text = write_csv(report, tmp_path / "bench.csv").read_text()
    assert csv_text.splitlines()[0].startswith("name,backend,")
    assert len(csv_text.splitlines()) == 1 + len(report.rows)
    assert "| torch |" in format_markdown(report)
    assert not list(tmp_path.glob("**/*.tmp"))  # atomic writes leave no temporaries


def test_plot_is_a_png(report, tmp_path):
    path = write_plot(report, tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_size_limits_oom_and_memory_refusal(tmp_path):
    sessions = {
        "torch": lambda: FakeSession("torch"),
        "openvino": lambda: FakeSession("openvino", min_hw=(24, 24)),
        "onnxruntime": lambda: FakeSession("onnxruntime", fail=MemoryError()),
        "torch-cl": lambda: FakeSession("torch-cl", fail=RuntimeError("std::bad_alloc")),
        "openvino-bf16": lambda: FakeSession("openvino", fail=ValueError("boom")),
    }
    config = make_config(tmp_path, list(sessions), sizes=[(16, 16), (64, 48), (200_000, 100_000)])
    report = run_suite(config, opener=opener_for(sessions))
    by = {(r.spec.backend, r.spec.width): r for r in report.rows}
    assert by[("openvino", 16)].status == "refused"
    assert "below the model minimum 24x24" in by[("openvino", 16)].error
    assert by[("openvino", 64)].status == "ok"
    assert by[("onnxruntime", 16)].status == "oom"
    assert by[("torch-cl", 16)].status == "oom"
    assert by[("openvino-bf16", 16)].status == "error" and "boom" in by[("openvino-bf16", 16)].error
    huge = by[("torch", 200_000)]
    assert huge.status == "refused" and "GiB" in huge.error and "tile" in huge.error
    assert by[("torch", 64)].status == "ok"  # the suite went on after the failures
    assert validate_report(to_dict(report)) == []
    table = format_table(report)
    assert "OOM" in table and "REFUSED" in table


def test_engine_profile_limit(tmp_path):
    from overnet.bench.runner import RowSpec, run_row

    spec = RowSpec("tensorrt", "tensorrt", "m", "m.engine", 2.0, 64, 48, 1, warmup=0, iters=1)
    result, _ = run_row(spec, lambda s: FakeSession("tensorrt", max_hw=(32, 32)))
    assert result.status == "refused"
    assert "above the tensorrt engine profile maximum 32x32" in result.error
    spec.width, spec.height, spec.batch = 16, 16, 4
    result, _ = run_row(spec, lambda s: FakeSession("tensorrt", max_hw=(32, 32), max_batch=2))
    assert result.status == "refused" and "batch 4" in result.error


def test_unknown_backend_lists_available_and_why():
    with pytest.raises(InputError) as err:
        check_backends(["torch", "warp-drive"])
    text = str(err.value)
    assert "'warp-drive'" in text and "openvino-bf16" in text
    assert "tensorrt: unavailable" in text or "tensorrt: available" in text


def test_parse_sizes_is_width_by_height():
    assert parse_sizes("320x180, 16X8") == [(320, 180), (16, 8)]
    for bad in ("0x5", "320", "axb", ""):
        with pytest.raises(InputError):
            parse_sizes(bad)


def test_cli_bad_input(tmp_path):
    from click.testing import CliRunner

    from overnet.cli import main

    result = CliRunner().invoke(main, ["bench", "--backends", "torch,nope"])
    assert result.exit_code == 2
    assert "unknown backend 'nope'" in result.output and "runtimes here:" in result.output
    result = CliRunner().invoke(main, ["bench", "--sizes", "0x10", "--backends", "torch"])
    assert result.exit_code == 2 and "at least 1 pixel" in result.output


def test_bench_package_does_not_import_torch():
    code = (
        "import sys, overnet.bench, overnet.bench.suite, overnet.bench.report, "
        "overnet.bench.runner, overnet.bench.plot, overnet.bench.environment; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_memory_refusal_points_to_an_api_that_exists(tmp_path, monkeypatch):
    import importlib
    import re

    from overnet.bench import suite
    from overnet.bench.runner import RowSpec

    monkeypatch.setattr(suite, "available_bytes", lambda: 2**30)
    spec = RowSpec("torch", "torch", "m", "m.pth", 2.0, 4000, 3000, 1, upscale=3)
    refusal, _ = suite._memory_check(spec, 0.85)
    (dotted,) = re.findall(r"\((overnet\.[\w.]+)\)", refusal)
    module, _, name = dotted.rpartition(".")
    assert dotted == "overnet.runtime.Upscaler"
    assert getattr(importlib.import_module(module), name).__name__ == "Upscaler"


def test_dead_helpers_are_gone():
    from overnet.bench import suite
    from overnet.train import distributed

    assert not hasattr(suite, "python_command")  # BenchConfig.command is what reports use
    assert not hasattr(distributed, "broadcast_flag")  # training never broadcast a flag
