"""Percentiles and summaries on samples with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from overnet.bench.stats import percentile, summarize


def test_percentiles_interpolate_linearly():
    data = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile(data, 50) == pytest.approx(2.5)
    assert percentile(data, 90) == pytest.approx(3.7)
    assert percentile(data, 99) == pytest.approx(3.97)


def test_percentiles_match_numpy():
    rng = np.random.default_rng(1)
    data = list(rng.exponential(size=37))
    for q in (0, 1, 10, 50, 90, 99, 100):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))


def test_summary_of_known_sample():
    s = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert (s.n, s.min, s.max, s.median, s.mean) == (8, 2, 9, 4.5, 5)
    assert s.std == pytest.approx(math.sqrt(32 / 7))  # sample standard deviation
    assert s.p90 == pytest.approx(7.6)


def test_single_sample_and_empty():
    s = summarize([0.25])
    assert (s.median, s.p99, s.std) == (0.25, 0.25, 0.0)
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_a_nan_sample_poisons_the_percentile_as_in_numpy():
    # a failed timing must not be sorted into some rank and hidden
    assert math.isnan(percentile([float("nan"), 1.0, 3.0], 50))
    assert math.isnan(summarize([0.5, float("nan"), 0.25]).median)


def test_percentile_takes_numpy_arrays():
    assert percentile(np.array([3.0, 1.0, 2.0]), 50) == 2.0
