"""Optimisation-profile shapes (``1x3x360x640``), their checks and engine file names."""

from __future__ import annotations

from dataclasses import dataclass

from overnet.errors import InputError

Shape = tuple[int, int, int, int]  # N, C, H, W

DEFAULT_MIN = "1x3x32x32"
DEFAULT_OPT = "1x3x360x640"
DEFAULT_MAX = "1x3x1080x1920"


def parse_shape(text: str | Shape, what: str = "shape") -> Shape:
    """``1x3x360x640`` -> (1, 3, 360, 640): an NCHW shape with 3 channels."""
    if isinstance(text, tuple):
        parts = list(text)
    else:
        try:
            parts = [int(v) for v in str(text).strip().lower().split("x")]
        except ValueError:
            parts = []
    if len(parts) != 4:
        raise InputError(f"{what} must be NxCxHxW such as 1x3x360x640, got {text!r}")
    n, c, h, w = (int(v) for v in parts)
    if c != 3:
        raise InputError(f"{what} {text!r}: OverNet takes 3 (RGB) channels, got C={c}")
    if min(n, h, w) < 1:
        raise InputError(f"{what} {text!r}: every dimension must be at least 1")
    return n, c, h, w


def format_shape(shape: Shape) -> str:
    return "x".join(str(v) for v in shape)


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimisation profile for the input ``lr``: min <= opt <= max per dim."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        names = ("batch", "channels", "height", "width")
        for i, name in enumerate(names):
            lo, mid, hi = self.min[i], self.opt[i], self.max[i]
            if not lo <= mid <= hi:
                raise InputError(
                    f"profile {name} must satisfy min <= opt <= max, got {lo} / {mid} / {hi} "
                    f"(--min {format_shape(self.min)} --opt {format_shape(self.opt)} "
                    f"--max {format_shape(self.max)})"
                )

    @classmethod
    def parse(
        cls,
        min: str | Shape = DEFAULT_MIN,
        opt: str | Shape = DEFAULT_OPT,
        max: str | Shape = DEFAULT_MAX,
    ) -> Profile:
        return cls(parse_shape(min, "--min"), parse_shape(opt, "--opt"), parse_shape(max, "--max"))

    def texts(self) -> tuple[str, str, str]:
        return format_shape(self.min), format_shape(self.opt), format_shape(self.max)

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: dict) -> Profile:
        return cls(*(tuple(int(v) for v in data[k]) for k in ("min", "opt", "max")))

    def tag(self) -> str:
        """``b1-1-1_32x32-360x640-1080x1920``: batch min-opt-max, then min, opt and max
        H x W. Every profile value is in it, so builds that differ only in ``--opt`` (which
        changes the kernels TensorRT picks) get different files."""
        batch = "-".join(str(s[0]) for s in (self.min, self.opt, self.max))
        sizes = "-".join(f"{s[2]}x{s[3]}" for s in (self.min, self.opt, self.max))
        return f"b{batch}_{sizes}"


def scale_tag(scale: float) -> str:
    """``x2``, ``x2.5`` (file-name safe)."""
    return f"x{float(scale):g}"


def engine_file_name(scale: float, profile: Profile, precision: str = "fp16") -> str:
    """``overnet_x2_fp16_b1-1-1_32x32-360x640-1080x1920.engine``: scale, precision and the
    whole profile."""
    return f"overnet_{scale_tag(scale)}_{precision}_{profile.tag()}.engine"


def onnx_file_name(scale: float, precision: str = "fp16") -> str:
    return f"overnet_{scale_tag(scale)}_{precision}.onnx"
