"""`overnet bench`: latency, throughput, memory and agreement per backend, beside the paper.

Submodules: stats (percentiles), environment (CPU/GPU/libraries), memory (per-row peak RSS,
GPU peak, estimates), model_figures (parameters, MACs, published models, Set5 PSNR),
runner (one row), suite (the matrix and comparisons), report (table/JSON/CSV/markdown),
plot (PNG). Importing this package imports neither torch nor any runtime.
"""

from overnet.bench.stats import LatencyStats, percentile, summarize

__all__ = ["LatencyStats", "percentile", "summarize"]
