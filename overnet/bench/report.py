"""Benchmark reports: terminal table, JSON, CSV and markdown (all files written atomically).

JSON schema ``overnet.bench/1`` (checked by :func:`validate_report` and tests/bench):

- ``schema`` (str): "overnet.bench/1"; ``command`` (str): the exact command line;
  ``created`` (ISO 8601 UTC); ``duration_s`` (float).
- ``environment`` (object): ``cpu`` {model, logical_cores, physical_cores, usable_cores,
  flags[]}, ``gpus`` [{name, driver, memory, compute_capability}], ``memory_total_bytes``,
  ``memory_available_bytes``, ``os``, ``python``, ``libraries`` {name: version},
  ``threads_requested``, ``load_average_start`` / ``load_average_end`` [1, 5, 15 min].
- ``config`` (object): models [{label, path, kind, real_weights}], scales[], sizes["WxH"],
  batches[], backends[], warmup, warmup_time, iters, min_time, threads, isolate, baseline,
  seed, memory_fraction, set5.
- ``model`` (object): weights, real_weights, ``per_scale`` [{scale, upscale, parameters,
  macs_per_input_pixel, macs_720p_output, bytes_fp32, bytes_fp16, architecture_only}],
  ``paper`` {name, parameters, set5_psnr_y}, ``set5_measured`` (null or {psnr_y, ssim_y,
  scale, protocol, backend, paper_psnr_y, ...}), ``published_models`` [{name, parameters,
  macs, macs_input, set5_psnr, set5_scale, source, note}].
- ``rows`` (array), one per backend x model x scale x size x batch:
  name, backend, model_label, model_path, scale, width, height, batch, output_width,
  output_height, device, warmup, warmup_time, iters, min_time, threads, seed, upscale;
  ``status`` one of ok | unavailable | refused | oom | killed | error, ``error`` (str|null);
  ``info`` {backend, device, precision, providers, threads, scale, upscale, notes};
  ``session_s``, ``first_run_s``, ``cold_start_s`` (session creation + first run; Python
  imports and the one-time cached ONNX export excluded), ``warmup_runs``;
  ``latency`` {n, min, median, p90, p99, mean, std, max} in seconds (null unless ok),
  ``samples_s`` [every timed run]; ``images_per_s``, ``output_mpix_per_s`` (from the median);
  ``peak_rss_delta_bytes`` (peak host RSS above the level before the session was created),
  ``rss_method``; ``gpu_memory`` {torch_max_allocated, torch_max_reserved, nvml_used,
  nvml_delta} or null; ``isolated`` (ran in a child process); ``load_average`` (1/5/15 min
  when the row started: other work on the machine skews timings); ``speedup_vs_torch``
  (torch eager fp32 median / this median, same size); ``ratio_vs_baseline`` (the same against
  ``config.baseline``); ``agreement`` null, {reference: true} for the reference row, or
  {max_abs, psnr_db (null = identical), agrees, rule | reason} against PyTorch fp32 on the same
  input; ``notes`` [str].
- ``notes`` [str]: suite-level notes (weights used, exports, refusals).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from overnet._atomic import write_text_atomic
from overnet.bench.runner import STATUSES
from overnet.bench.suite import BenchReport

SCHEMA = "overnet.bench/1"


def _clean(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_dict(report: BenchReport) -> dict[str, Any]:
    return _clean(
        {
            "schema": SCHEMA,
            "command": report.command,
            "created": report.created,
            "duration_s": report.duration_s,
            "environment": report.environment,
            "config": report.config,
            "model": report.model,
            "rows": [r.to_dict() for r in report.rows],
            "notes": report.notes,
        }
    )


_TOP = {
    "schema": str,
    "command": str,
    "created": str,
    "duration_s": (int, float),
    "environment": dict,
    "config": dict,
    "model": dict,
    "rows": list,
    "notes": list,
}
_ROW = {
    "name": str,
    "backend": str,
    "model_label": str,
    "scale": (int, float),
    "width": int,
    "height": int,
    "batch": int,
    "output_width": int,
    "output_height": int,
    "status": str,
    "info": dict,
    "samples_s": list,
    "isolated": bool,
    "notes": list,
    "warmup_runs": int,
}
_ROW_OPTIONAL = {
    "error": str,
    "latency": dict,
    "session_s": (int, float),
    "first_run_s": (int, float),
    "cold_start_s": (int, float),
    "images_per_s": (int, float),
    "output_mpix_per_s": (int, float),
    "peak_rss_delta_bytes": int,
    "rss_method": str,
    "gpu_memory": dict,
    "speedup_vs_torch": (int, float),
    "ratio_vs_baseline": (int, float),
    "agreement": dict,
}
_LATENCY = ("n", "min", "median", "p90", "p99", "mean", "std", "max")


def validate_report(data: dict[str, Any]) -> list[str]:
    """Problems with a JSON report against schema overnet.bench/1 ([] when valid)."""
    problems = []

    def check(obj: dict, spec: dict, where: str, optional: bool = False) -> None:
        for key, kind in spec.items():
            if key not in obj:
                problems.append(f"{where}: missing {key!r}")
            elif obj[key] is None and optional:
                continue
            elif not isinstance(obj[key], kind) or isinstance(obj[key], bool) != (kind is bool):
                problems.append(f"{where}.{key}: expected {kind}, got {type(obj[key]).__name__}")

    check(data, _TOP, "report")
    if data.get("schema") != SCHEMA:
        problems.append(f"report.schema: expected {SCHEMA!r}, got {data.get('schema')!r}")
    for key in ("cpu", "libraries", "load_average_start"):
        if key not in data.get("environment", {}):
            problems.append(f"environment: missing {key!r}")
    for key in ("per_scale", "paper", "published_models", "set5_measured"):
        if key not in data.get("model", {}):
            problems.append(f"model: missing {key!r}")
    for i, row in enumerate(data.get("rows", [])):
        where = f"rows[{i}]"
        check(row, _ROW, where)
        check(row, _ROW_OPTIONAL, where, optional=True)
        if row.get("status") not in STATUSES:
            problems.append(f"{where}.status: {row.get('status')!r} not in {STATUSES}")
        if row.get("status") == "ok":
            latency = row.get("latency") or {}
            missing = [k for k in _LATENCY if k not in latency]
            if missing:
                problems.append(f"{where}.latency: missing {missing}")
        elif not row.get("error"):
            problems.append(f"{where}: status {row.get('status')!r} needs an error message")
    return problems


def write_json(report: BenchReport, path: str | Path) -> Path:
    return write_text_atomic(path, json.dumps(to_dict(report), indent=2) + "\n")


CSV_COLUMNS = (
    "name",
    "backend",
    "model_label",
    "precision",
    "device",
    "threads",
    "scale",
    "width",
    "height",
    "batch",
    "output_width",
    "output_height",
    "status",
    "median_s",
    "min_s",
    "p90_s",
    "p99_s",
    "mean_s",
    "std_s",
    "n",
    "images_per_s",
    "output_mpix_per_s",
    "cold_start_s",
    "session_s",
    "first_run_s",
    "peak_rss_delta_bytes",
    "speedup_vs_torch",
    "ratio_vs_baseline",
    "max_abs_vs_torch",
    "psnr_vs_torch_db",
    "agrees",
    "error",
)


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    lat = row.get("latency") or {}
    agr = row.get("agreement") or {}
    info = row.get("info") or {}
    flat = {k: row.get(k) for k in CSV_COLUMNS if k in row}
    flat.update({f"{k}_s": lat.get(k) for k in ("median", "min", "p90", "p99", "mean", "std")})
    flat.update(
        n=lat.get("n"),
        precision=info.get("precision"),
        threads=info.get("threads"),
        max_abs_vs_torch=agr.get("max_abs"),
        psnr_vs_torch_db=agr.get("psnr_db"),
        agrees=agr.get("agrees"),
    )
    return flat


def write_csv(report: BenchReport, path: str | Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in to_dict(report)["rows"]:
        writer.writerow(_csv_row(row))
    return write_text_atomic(path, buf.getvalue())


def _f(value: Any, fmt: str, dash: str = "-") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return dash
    return format(value, fmt)


def _agreement_text(agr: dict[str, Any] | None) -> str:
    if not agr:
        return "-"
    if agr.get("reference"):
        return "reference"
    if agr.get("max_abs") is None:
        return "DISAGREES: " + str(agr.get("reason", ""))
    psnr = agr.get("psnr_db")
    text = f"{agr['max_abs']:.1e}/" + ("identical" if psnr is None else f"{psnr:.1f}dB")
    return text if agr.get("agrees") else f"DISAGREES {text}"


_HEADER = (
    "backend",
    "input",
    "b",
    "prec",
    "median s",
    "p90 s",
    "std s",
    "img/s",
    "out MP/s",
    "cold s",
    "RSS MB",
    "x torch",
    "x base",
    "max abs/PSNR vs torch",
    "load 1m",
)


def _table_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    lines = []
    for row in data["rows"]:
        size = f"{row['width']}x{row['height']} x{row['scale']:g}"
        head = (row["name"], size, str(row["batch"]))
        if row["status"] != "ok":
            lines.append((*head, "", f"{row['status'].upper()}: {row['error']}"))
            continue
        lat = row["latency"]
        rss = row.get("peak_rss_delta_bytes")
        lines.append(
            (
                *head,
                str(row["info"].get("precision") or "-"),
                _f(lat["median"], ".3f"),
                _f(lat["p90"], ".3f"),
                _f(lat["std"], ".3f"),
                _f(row["images_per_s"], ".2f"),
                _f(row["output_mpix_per_s"], ".3f"),
                _f(row["cold_start_s"], ".2f"),
                _f(None if rss is None else rss / 1e6, ".0f"),
                _f(row.get("speedup_vs_torch"), ".2f"),
                _f(row.get("ratio_vs_baseline"), ".2f"),
                _agreement_text(row.get("agreement")),
                _f((row.get("load_average") or [None])[0], ".2f"),
            )
        )
    return lines


def environment_lines(data: dict[str, Any]) -> list[str]:
    env = data["environment"]
    cpu = env["cpu"]
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if k != "overnet")
    gpus = "; ".join(f"{g['name']} (driver {g['driver']}, {g['memory']})" for g in env["gpus"])
    mem = env.get("memory_total_bytes")
    return [
        f"CPU: {cpu['model']}, {cpu['logical_cores']} logical / {cpu['physical_cores']} physical "
        f"cores, flags {' '.join(cpu['flags']) or '-'}; RAM {_f(mem and mem / 2**30, '.1f')} GiB",
        f"GPU: {gpus or 'none'}",
        f"libraries: {libs}",
        f"threads: {env['threads_requested'] or 'runtime default'}; load average at start "
        f"{env['load_average_start']}, at end {env.get('load_average_end')}",
    ]


def model_lines(data: dict[str, Any]) -> list[str]:
    model = data["model"]
    lines = [
        f"weights: {model['weights']}"
        + ("" if model["real_weights"] else " (freshly initialised, untrained)")
    ]
    for f in model["per_scale"]:
        lines.append(
            f"x{f['scale']:g} (upscale {f['upscale']}): {f['parameters']:,} parameters "
            f"(paper {model['paper']['parameters'] / 1e6:.1f}M), "
            f"{f['macs_per_input_pixel']:,.0f} MACs per input pixel, "
            f"{f['macs_720p_output'] / 1e9:.1f} G MACs per 1280x720 output, weights "
            f"{f['bytes_fp32'] / 1e6:.2f} MB fp32 / {f['bytes_fp16'] / 1e6:.2f} MB fp16"
            + (" [architecture of the upstream pairing]" if f["architecture_only"] else "")
        )
    s5 = model.get("set5_measured")
    if s5 and "psnr_y" in s5:
        lines.append(
            f"Set5 x{s5['scale']} PSNR-Y {s5['psnr_y']:.3f} dB measured ({s5['protocol']} "
            f"protocol, {s5['backend']}); paper {s5.get('paper_psnr_y') or '-'}"
        )
    elif s5 and "error" in s5:
        lines.append(f"Set5 PSNR not measured: {s5['error']}")
    for m in model["published_models"]:
        macs = f"{m['macs'] / 1e9:.2f} G ({m['macs_input']})" if m["macs"] else "-"
        psnr = f"Set5 x{m['set5_scale']} {m['set5_psnr']} dB" if m["set5_psnr"] else ""
        lines.append(
            f"published {m['name']}: {m['parameters']:,} parameters, {macs}, {psnr} [{m['source']}]"
        )
    return lines


def format_table(report: BenchReport | dict[str, Any]) -> str:
    """The terminal report: environment, model figures, one line per row, notes."""
    data = to_dict(report) if isinstance(report, BenchReport) else report
    rows = _table_rows(data)
    widths = [len(h) for h in _HEADER]
    for row in rows:
        if len(row) == len(_HEADER):
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]

    def fmt(cells: tuple[str, ...]) -> str:
        if len(cells) != len(_HEADER):  # a failed row: name, size, batch, then the reason
            return (
                "  ".join(c.ljust(w) for c, w in zip(cells[:3], widths, strict=False))
                + "  "
                + cells[-1]
            )
        return "  ".join(
            c.ljust(w) if i in (0, 1, 3, 13) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        )

    base = data["config"].get("baseline")
    base_text = f"against {base}" if base else "no baseline row (give --model FILE to set one)"
    out = ["overnet bench: " + data["command"], *environment_lines(data), *model_lines(data), ""]
    out += [fmt(_HEADER), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    out += [fmt(r) for r in rows]
    out.append("")
    out.append(
        f"x torch = speed-up against PyTorch eager fp32 (NCHW); x base = {base_text}; "
        "latency from the median; RSS = peak host RSS above the level before the session; "
        "sizes are input WIDTHxHEIGHT and scale"
    )
    flagged = [r["name"] for r in data["rows"] if (r.get("agreement") or {}).get("agrees") is False]
    if flagged:
        out.append("WARNING: output disagrees with PyTorch fp32: " + ", ".join(flagged))
    out += [f"note: {n}" for n in data["notes"]]
    out.append(f"total {data['duration_s']:.0f} s")
    return "\n".join(out)


def format_markdown(report: BenchReport) -> str:
    data = to_dict(report)
    rows = _table_rows(data)
    md = [
        "# overnet bench results",
        "",
        f"Command: `{data['command']}`  ",
        f"Recorded: {data['created']} ({data['duration_s']:.0f} s)",
        "",
        "## Environment",
        "",
        *[f"- {line}" for line in environment_lines(data)],
        "",
        "## Model",
        "",
        *[f"- {line}" for line in model_lines(data)],
        "",
        "## Results",
        "",
        "| " + " | ".join(_HEADER) + " |",
        "|" + "---|" * len(_HEADER),
    ]
    for row in rows:
        cells = (
            list(row)
            if len(row) == len(_HEADER)
            else [*row[:3], "", f"**{row[-1]}**", *[""] * (len(_HEADER) - 5)]
        )
        md.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    md += [
        "",
        f"x torch: speed-up against PyTorch eager fp32 (NCHW) at the same size; x base: "
        f"against {data['config'].get('baseline') or '-'}. Latency in seconds per call "
        "(batch); RSS MB = peak host RSS above the level before the session was created. "
        "Input sizes are WIDTHxHEIGHT.",
        "",
    ]
    md += [f"- {n}" for n in data["notes"]]
    return "\n".join(md) + "\n"


def write_markdown(report: BenchReport, path: str | Path) -> Path:
    return write_text_atomic(path, format_markdown(report))
