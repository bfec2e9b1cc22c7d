"""The network's last step after its overscaled features, as data a runtime can apply.

OverNet resizes its 64-channel overscaled features (upscale x) to the target size and only
then projects them to RGB (``exit1``, a 3x3 convolution) and adds the resized input. A
graph that stops at the features (``overnet export --overscale``) serves every target
scale of its model; the runtime finishes it (``overnet.runtime.overscale``) with the
weights kept here. They travel as one metadata value: ONNX ``metadata_props`` key
``overnet.head``, the IR's rt_info, the engine sidecar's ``head`` field.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import numpy as np

from overnet.errors import ModelLoadError

#: the metadata key (ONNX, IR) that holds ``OverscaleHead.to_text()``
HEAD_KEY = "overnet.head"
#: what ``overnet.output`` says in a features graph's metadata
OVERSCALE_OUTPUT = "overscaled-features"


def _pack(array: np.ndarray) -> dict:
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape), "f32le": base64.b64encode(data.tobytes()).decode()}


def _unpack(entry: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(entry["f32le"]), dtype="<f4")
    return raw.reshape(entry["shape"]).astype(np.float32)


@dataclass(frozen=True)
class OverscaleHead:
    """exit1 and the mean shifts of one model, numpy float32.

    ``upscale``: the features' factor (3 for the x2 checkpoint); ``scale``: the model's
    default target scale; ``weight`` 3 x F x 3 x 3 and ``bias`` (3,) of exit1;
    ``input_shift`` (3,) added to the input (minus the RGB mean); ``output_shift`` (3,)
    added at the end (plus the mean).
    """

    upscale: int
    scale: float
    weight: np.ndarray
    bias: np.ndarray
    input_shift: np.ndarray
    output_shift: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.weight.shape[1])

    def to_text(self) -> str:
        return json.dumps(
            {
                "upscale": self.upscale,
                "scale": self.scale,
                **{k: _pack(getattr(self, k)) for k in _ARRAYS},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_text(cls, text: str, where: str = "the model") -> OverscaleHead:
        try:
            raw = json.loads(text)
            head = cls(
                int(raw["upscale"]), float(raw["scale"]), *(_unpack(raw[k]) for k in _ARRAYS)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"{where} has a damaged {HEAD_KEY} entry ({type(exc).__name__}: {exc}); "
                "re-export it with `overnet export --overscale`"
            ) from exc
        if head.weight.shape[0] != 3 or head.weight.shape[2:] != (3, 3) or head.bias.shape != (3,):
            raise ModelLoadError(
                f"{where}: {HEAD_KEY} holds a {head.weight.shape} exit1, not 3xFx3x3"
            )
        return head


_ARRAYS = ("weight", "bias", "input_shift", "output_shift")


def head_of(metadata: dict[str, str], where: str = "the model") -> OverscaleHead | None:
    """The head recorded in ``metadata`` (None for a graph that ends in RGB)."""
    text = metadata.get(HEAD_KEY)
    return OverscaleHead.from_text(text, where) if text else None
