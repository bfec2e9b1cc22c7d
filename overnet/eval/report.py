"""Tables, JSON and CSV for evaluation results, and the comparison with the paper."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from overnet import paper
from overnet.eval.evaluate import DatasetResult


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_table(result: DatasetResult, compare_paper: bool = True) -> str:
    """Per-image rows, the mean, and the paper's figure with the difference."""
    head = (
        f"{'image':<20} {'PSNR-Y':>8} {'SSIM-Y':>8} {'PSNR-RGB':>9} "
        f"{'bicubic':>8} {'bic SSIM':>8} {'time s':>7}"
    )
    lines = [
        f"{result.name} x{result.scale} ({result.layout} layout, {result.protocol} protocol)",
        head,
        "-" * len(head),
    ]
    for r in result.images:
        if r.error:
            lines.append(f"{r.name:<20} FAILED: {r.error}")
            continue
        lines.append(
            f"{r.name:<20} {_fmt(r.psnr_y, 3):>8} {_fmt(r.ssim_y, 4):>8} {_fmt(r.psnr_rgb, 3):>9} "
            f"{_fmt(r.bicubic_psnr_y, 3):>8} {_fmt(r.bicubic_ssim_y, 4):>8} {_fmt(r.seconds, 2):>7}"
            + (f"  ({'; '.join(r.notes)})" if r.notes else "")
        )
    m = result.mean
    lines.append("-" * len(head))
    lines.append(
        f"{'mean (' + str(len(result.ok)) + ' images)':<20} {_fmt(m('psnr_y'), 3):>8} "
        f"{_fmt(m('ssim_y'), 4):>8} {_fmt(m('psnr_rgb'), 3):>9} {_fmt(m('bicubic_psnr_y'), 3):>8} "
        f"{_fmt(m('bicubic_ssim_y'), 4):>8} {_fmt(m('seconds'), 2):>7}"
    )
    published = paper.BENCHMARK.get((result.name, result.scale))
    if compare_paper and published:
        p_psnr, p_ssim = published
        lines.append(
            f"{'paper':<20} {p_psnr:>8.2f} {p_ssim:>8.4f}   difference: "
            f"PSNR {m('psnr_y') - p_psnr:+.3f} dB, SSIM {m('ssim_y') - p_ssim:+.4f}"
        )
    elif compare_paper:
        lines.append(f"(no published figure recorded for {result.name} x{result.scale})")
    lines += [f"note: {n}" for n in result.notes]
    if result.failed:
        lines.append(f"{len(result.failed)} image(s) failed")
    return "\n".join(lines)


def write_json(results: list[DatasetResult], path: Path) -> None:
    path.write_text(json.dumps([r.to_dict() for r in results], indent=2, allow_nan=True))


def write_csv(results: list[DatasetResult], path: Path) -> None:
    fields = [
        "dataset",
        "scale",
        "protocol",
        "name",
        "psnr_y",
        "ssim_y",
        "psnr_rgb",
        "bicubic_psnr_y",
        "bicubic_ssim_y",
        "seconds",
        "error",
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for res in results:
        for r in res.images:
            writer.writerow(
                {
                    "dataset": res.name,
                    "scale": res.scale,
                    "protocol": res.protocol,
                    "name": r.name,
                    "psnr_y": r.psnr_y,
                    "ssim_y": r.ssim_y,
                    "psnr_rgb": r.psnr_rgb,
                    "bicubic_psnr_y": r.bicubic_psnr_y,
                    "bicubic_ssim_y": r.bicubic_ssim_y,
                    "seconds": r.seconds,
                    "error": r.error or "",
                }
            )
    path.write_text(buf.getvalue())
