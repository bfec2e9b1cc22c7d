"""Image bytes in, image bytes out, exactly as `overnet upscale` reads and writes files.

A request body is an item of the job core (:mod:`overnet.jobs.images`), decoded and
encoded in memory: the same header checks, tile plan, memory estimate, codecs and
format rules as `overnet upscale`, so a service answer is byte for byte the command's
output for the same model and options. Each step's refusals become the HTTP status the
client can act on; anything unexpected is a 500 naming an internal error. No Ray here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from overnet.errors import InputError, MemoryLimitError, OverNetError, PixelLimitError
from overnet.imaging.files import probe_image
from overnet.jobs.boundary import Step
from overnet.jobs.budget import MemoryBudget
from overnet.jobs.images import (
    ImageOptions,
    check_fits_budget,
    check_output_holds,
    decode_image,
    encode_output,
    plan_header,
    upscale_image,
)
from overnet.runtime.upscaler import Upscaler
from overnet.serve.config import Limits
from overnet.serve.limits import Expired, ServeError, UpscaleParams

CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "tiff": "image/tiff",
}

RunTiles = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Encoded:
    data: bytes
    fmt: str
    width: int
    height: int
    tiles: int = 0  # tiles the input was cut into

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


#: step -> the refusal kind of an InputError met there
_KIND = {
    "plan the output": "bad_request",  # output too large for its format, tile plan
    "read the input": "unsupported_media",  # undecodable, unsupported mode
    "upscale": "unsupported_media",  # a mode the network cannot take
    "write the output": "bad_request",  # a format that cannot hold the result
}


def _refusal(step: Step, exc: Exception) -> ServeError:
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, PixelLimitError):
        return ServeError(
            "too_many_pixels",
            str(exc).replace(
                "raise --max-pixels",
                "send a smaller image, or ask the operator to raise --max-pixels",
            ),
        )
    if isinstance(exc, MemoryLimitError):  # in the client's terms, not the command's
        return ServeError(
            "too_many_pixels",
            f"the image needs about {exc.need / 1e6:.0f} MB to upscale, above this "
            f"service's {exc.budget / 1e6:.0f} MB per request; send a smaller image",
        )
    message = step.failure(exc).replace("--format ", "format=").replace("--scale", "scale=")
    if isinstance(exc, InputError):
        return ServeError(_KIND[step.doing], message)
    if isinstance(exc, OverNetError):
        return ServeError("bad_request", message)
    return ServeError("internal", message)


def process(
    body: bytes,
    params: UpscaleParams,
    limits: Limits,
    upscaler: Upscaler,
    run: RunTiles,
    budget: MemoryBudget | None = None,
    wait_s: float = 0.0,
) -> Encoded:
    """Body -> upscaled image file bytes; every refusal is a ServeError. ``budget``:
    the replica's memory, taken for the request's estimate; a request waits up to
    ``wait_s`` for requests in flight to give it back (503 after that)."""
    options = ImageOptions(params.fmt, params.quality, limits.max_pixels)
    step = Step("the image")
    step("read the input")
    held = 0
    try:
        # 413/415 from the header alone, before anything else
        header = probe_image(body, limits.max_pixels, name="the image")
        step("plan the output")
        planned = plan_header(header, body, upscaler, options, name="the image")
        if budget is not None:
            check_fits_budget(planned, upscaler, budget)
            if not budget.take(planned.estimate, timeout=wait_s):
                raise ServeError(
                    "queue_full",
                    f"this replica's memory ({budget.total / 1e6:.0f} MB) stayed taken by "
                    f"requests in flight for {wait_s:g} s; this image needs "
                    f"{planned.estimate / 1e6:.0f} MB; retry shortly",
                    {"Retry-After": "1"},
                )
            held = planned.estimate
        step("read the input")
        image: Any = decode_image(body, planned, options)
        step("plan the output")
        check_output_holds(image, planned)
        step("upscale")
        output = upscale_image(image, upscaler, run)
        del image
        step("write the output")
        data = encode_output(output, planned, options)
    except Expired:  # the replica's deadline: it answers 504
        raise
    except Exception as exc:
        raise _refusal(step, exc) from None
    finally:
        if budget is not None and held:
            budget.give_back(held)
    return Encoded(data, planned.fmt, planned.out_width, planned.out_height, planned.tiles)
