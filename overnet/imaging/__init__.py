"""Image I/O and conversions (numpy, Pillow, and pyspng for 16-bit RGB PNGs)."""

from overnet.imaging.io import (
    IMAGE_SUFFIXES,
    float_to_uint8,
    is_image_path,
    open_image,
    read_rgb8,
    rgb8_to_nchw,
    write_image_atomic,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "float_to_uint8",
    "is_image_path",
    "open_image",
    "read_rgb8",
    "rgb8_to_nchw",
    "write_image_atomic",
]
