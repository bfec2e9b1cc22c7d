"""A small test image made by the project (no licence questions): fine detail that
bicubic blurs and a super-resolution network should keep.

Zone-plate rings (every spatial frequency), a sharp-edged disc and bars, thin lines, a
smooth colour gradient and a soft-edged blob. Deterministic: the same pixels anywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from overnet.imaging.io import write_image_atomic

SAMPLE_SIZE = (192, 128)  # width, height (about 25k input pixels: quick on any CPU)


def sample_image(width: int = SAMPLE_SIZE[0], height: int = SAMPLE_SIZE[1]) -> np.ndarray:
    """HxWx3 uint8 RGB test pattern."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    rgb = np.stack([0.25 + 0.5 * u, 0.3 + 0.4 * v, 0.7 - 0.4 * u], axis=-1)  # gradient
    # zone plate in the left third: rings whose frequency grows with the radius
    cx, cy, radius = width / 6, height / 2, min(width / 6, height / 2) - 2
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    rings = 0.5 + 0.5 * np.cos(np.pi * r2 / (1.6 * radius))
    rgb = np.where((r2 < radius**2)[..., None], rings[..., None], rgb)
    # a hard-edged disc and vertical bars of decreasing width in the middle third
    disc = (x - width / 2) ** 2 + (y - height / 3) ** 2 < (height / 6) ** 2
    rgb[disc] = (0.85, 0.2, 0.15)
    band = (y > height * 0.62) & (y < height * 0.9) & (x > width * 0.36) & (x < width * 0.64)
    period = np.maximum(2, 8 - ((x - width * 0.36) // (width * 0.07)))
    rgb[band & ((x // period) % 2 == 0)] = (0.05, 0.05, 0.1)
    # thin diagonal lines and a soft blob in the right third
    lines = (x > width * 0.7) & ((np.abs((x - y * 0.7) % 9) < 1.0) & (y < height * 0.5))
    rgb[lines] = (1.0, 1.0, 0.95)
    blob = np.exp(-(((x - width * 0.84) / 12) ** 2 + ((y - height * 0.75) / 10) ** 2))
    rgb = rgb * (1 - 0.6 * blob[..., None]) + 0.6 * blob[..., None] * np.array([0.2, 0.7, 0.3])
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_sample(path: str | Path) -> Path:
    """Write the test pattern as a PNG (atomic)."""
    return write_image_atomic(Image.fromarray(sample_image()), path, format="PNG")
