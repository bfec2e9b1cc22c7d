"""The gate's statistic: per-image PSNR-Y drops, their mean, worst image and a bootstrap
confidence interval of the mean (scipy.stats.bootstrap, BCa). The gate passes only when
the interval's upper bound is within the allowed drop, so a small validation set has to
show a clear margin rather than a lucky mean."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from overnet.errors import InputError

#: below this many validation images the gate warns how uncertain its figure is
MIN_CONFIDENT_IMAGES = 10
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class DropStats:
    """PSNR-Y drop (fp32 minus INT8, dB; positive = INT8 worse) over a set of images."""

    drops: dict[str, float]  # image name -> drop
    mean: float
    low: float  # confidence interval of the mean
    high: float
    confidence: float

    @property
    def worst(self) -> tuple[str, float]:
        name = max(self.drops, key=lambda k: self.drops[k])
        return name, self.drops[name]

    def warning(self) -> str | None:
        """Says how uncertain the figure is when the set is small (None otherwise)."""
        n = len(self.drops)
        if n >= MIN_CONFIDENT_IMAGES:
            return None
        return (
            f"only {n} validation images: the mean drop's {self.confidence:.0%} interval is "
            f"{self.high - self.low:.3f} dB wide and a new image may differ by more (worst "
            f"here {self.worst[1]:.3f} dB); give --validation with {MIN_CONFIDENT_IMAGES} or "
            "more images for a firmer gate"
        )

    def format(self) -> str:
        name, worst = self.worst
        return (
            f"mean drop {self.mean:.3f} dB, {self.confidence:.0%} interval "
            f"[{self.low:.3f}, {self.high:.3f}] dB, worst {name} {worst:.3f} dB "
            f"({len(self.drops)} images)"
        )


def drop_stats(
    fp32: dict[str, float],
    int8: dict[str, float],
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = 9999,
    seed: int = 0,
) -> DropStats:
    """Per-image drops of ``int8`` against ``fp32`` (PSNR-Y dB by image name) with a
    bootstrap interval of their mean (BCa; percentile where BCa is undefined, e.g. all
    drops equal). InputError when the names differ or fewer than two images remain."""
    if set(fp32) != set(int8):
        raise InputError(
            f"the fp32 and INT8 scores cover different images: {sorted(set(fp32) ^ set(int8))}"
        )
    names = sorted(fp32)
    values = np.array([fp32[k] - int8[k] for k in names], dtype=np.float64)
    if len(values) < 2 or not np.isfinite(values).all():
        raise InputError(
            f"the gate needs finite PSNR-Y on at least 2 validation images, got {len(values)}"
            + ("" if np.isfinite(values).all() else " (some infinite: identical outputs)")
        )
    from scipy import stats

    low = high = math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate-sample warning: handled below
            ci = stats.bootstrap(
                (values,),
                np.mean,
                confidence_level=confidence,
                n_resamples=resamples,
                method=method,
                rng=np.random.default_rng(seed),
            ).confidence_interval
        low, high = float(ci.low), float(ci.high)
        if math.isfinite(low) and math.isfinite(high):
            break
    if not (math.isfinite(low) and math.isfinite(high)):  # every drop equal
        low = high = float(values.mean())
    return DropStats(
        dict(zip(names, values.tolist(), strict=True)), float(values.mean()), low, high, confidence
    )
