"""Helpers for training tests: small structured images and a tiny-model config."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from overnet.train import TrainConfig


def structured_image(size: tuple[int, int], seed: int) -> np.ndarray:
    """HWC uint8: gratings, sharp-edged rectangles and a gradient (SR has edges to learn)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.05, 0.25)
        img[..., c] = 0.35 + 0.2 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        img[..., c] += 0.15 * (xx / w) * rng.uniform(-1, 1)
    for _ in range(8):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        y1, x1 = y0 + rng.integers(4, h // 2), x0 + rng.integers(4, w // 2)
        img[y0:y1, x0:x1] = rng.uniform(0, 1, size=3)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(structured_image(size, seed + i)).save(folder / f"img{i:02d}.png")
    return folder


def tiny_config(tmp_path: Path, data: Path, **overrides) -> TrainConfig:
    """16-channel network, 16-pixel LR patches, batch 4: a step takes milliseconds."""
    settings = dict(
        data=[data],
        scales=[2],
        channels=16,
        patch=16,
        batch=4,
        steps=6,
        lr=1e-3,
        decay=1000,
        out=tmp_path / "run",
        save_every=3,
        val_every=1000,
        log_every=2,
        seed=1,
        deterministic=True,
        progress=False,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """Writes past ``nbytes`` fail (RLIMIT_FSIZE, EFBIG) in this process while inside:
    the writers (torch.save, safetensors) then fail as they do on a full disk, through
    the same code path, so tests see the exception types they really raise."""
    resource = pytest.importorskip("resource")
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.fixture(scope="module")
def train_images(tmp_path_factory) -> Path:
    """Six 96x96 structured HR images (LR made on the fly)."""
    return write_images(tmp_path_factory.mktemp("hr"), 6, (96, 96))


@pytest.fixture(scope="module")
def val_images(tmp_path_factory) -> Path:
    """Two 96x96 held-out images of the same kind."""
    return write_images(tmp_path_factory.mktemp("val"), 2, (96, 96), seed=100)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on one thread: on a shared 2-core machine, two OpenMP threads that
    wait for each other made a step 10x slower (1.2 s vs 0.08 s, measured). Module
    scope: module fixtures (reference runs) must see the same thread count as the
    tests, since bit-exact comparisons need the same float reduction order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
