"""Shared pieces of the serve tests: sample images, a free port, one Ray per module."""

from __future__ import annotations

import contextlib
import io
import os
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A random image (smooth enough for JPEG, varied enough to show any tiling error)."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    array = (rng.random((height, width, channels)) * 255).astype(np.uint8)
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@contextlib.contextmanager
def local_ray(environment: dict[str, str] | None = None) -> Iterator[None]:
    """One local Ray (2 CPUs, no dashboard) started with ``environment`` added to this
    process's (what `overnet serve` sets before it starts Ray); Serve, Ray and the
    environment restored on the way out."""
    ray = pytest.importorskip("ray")
    serve = pytest.importorskip("ray.serve")
    saved = dict(os.environ)
    os.environ.update(environment or {})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """One local Ray for the module (``local_ray``)."""
    with local_ray():
        yield
