"""Fixtures of the video tests: clips made on the fly, and a nearest-neighbour upscaler."""

from __future__ import annotations

import pytest

from overnet.runtime.upscaler import Upscaler
from tests.runtime.doubles import NearestSession


@pytest.fixture
def nearest2() -> Upscaler:
    """Exact x2 (nearest neighbour): outputs are known, and it takes no time."""
    return Upscaler(NearestSession(2))
