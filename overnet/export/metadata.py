"""ONNX ``metadata_props`` written by the exporter and read by the runtimes (onnx only)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass

INPUT_NAME = "lr"
OUTPUT_NAME = "sr"


@dataclass(frozen=True)
class ModelMetadata:
    """What a runtime needs to know about an exported OverNet file."""

    scale: float
    upscale: int
    precision: str  # "fp32" or "fp16" (weights/activations; I/O is always float32)
    opset: int
    source_sha256: str = ""
    overnet_version: str = ""
    channels: int = 64
    color_order: str = "RGB"
    value_range: str = "0,1"
    layout: str = "NCHW"
    min_size: int = 1

    def to_props(self) -> dict[str, str]:
        return {f"overnet.{k}": str(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata | None:
        """Parse ``overnet.*`` keys; None when the file was not exported by overnet."""
        values = {k[len("overnet.") :]: v for k, v in props.items() if k.startswith("overnet.")}
        if "scale" not in values:
            return None
        ints = {"upscale", "opset", "channels", "min_size"}
        parsed = {}
        for key, field in cls.__dataclass_fields__.items():
            if key in values:
                raw = values[key]
                parsed[key] = int(raw) if key in ints else float(raw) if key == "scale" else raw
            elif field.default is MISSING:  # a required key is absent
                return None
        return cls(**parsed)
