"""PNG plot of a benchmark: latency vs output megapixels (log-log) and a throughput bar chart."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

from overnet._atomic import atomic_target
from overnet._optional import require
from overnet.bench.suite import BenchReport


def write_plot(report: BenchReport, path: str | Path) -> Path:
    """Two panels: median latency per backend against output megapixels (log scales, p90 as
    the error bar), and output megapixels/s per backend at the largest size all ran."""
    matplotlib = require("matplotlib", "overnet bench --plot")
    matplotlib.use("Agg")  # no display needed; must precede pyplot
    from matplotlib import pyplot as plt

    ok = [r for r in report.rows if r.status == "ok" and r.latency]
    series: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in ok:
        oh, ow = r.spec.output_hw
        mpix = r.spec.batch * oh * ow / 1e6
        series[f"{r.spec.name} (b{r.spec.batch})"].append(
            (mpix, float(r.latency["median"]), float(r.latency["p90"]))
        )
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for label, points in sorted(series.items()):
        points.sort()
        xs, med, p90 = zip(*points, strict=False)
        left.errorbar(
            xs,
            med,
            yerr=[[0] * len(med), [p - m for p, m in zip(p90, med, strict=False)]],
            marker="o",
            capsize=3,
            label=label,
        )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("output megapixels per call")
    left.set_ylabel("median latency, s (bar: p90)")
    left.set_title("Latency vs output size")
    left.grid(True, which="both", alpha=0.3)
    if series:
        left.legend(fontsize=7)
    # Throughput at each size: grouped bars (one group per input size).
    sizes = sorted(
        {(r.spec.width, r.spec.height, r.spec.scale) for r in ok}, key=lambda s: s[0] * s[1]
    )
    names = sorted({r.spec.name for r in ok})
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = []
        for w, h, s in sizes:
            match = [
                r
                for r in ok
                if r.spec.name == name and (r.spec.width, r.spec.height, r.spec.scale) == (w, h, s)
            ]
            values.append(max((r.output_mpix_per_s or 0.0) for r in match) if match else 0.0)
        right.bar([j + i * width for j in range(len(sizes))], values, width, label=name)
    right.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(sizes))])
    right.set_xticklabels([f"{w}x{h} x{s:g}" for w, h, s in sizes])
    right.set_ylabel("output megapixels / s (best batch)")
    right.set_title("Throughput")
    right.grid(True, axis="y", alpha=0.3)
    if names:
        right.legend(fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(report.command, 200)), fontsize=7)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_target(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path
