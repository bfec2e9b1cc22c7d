"""Image bytes in, image bytes out, exactly as `overnet upscale` reads and writes files.

A request body is an item of the job core (:mod:`overnet.jobs.images`), decoded and
encoded in memory: the same header checks, tile plan, memory estimate, codecs and
format rules as `overnet upscale`, so a service answer is byte for byte the command's
output for the same model and options. Each step's refusals become the HTTP status the
client can act on; anything unexpected is a 500 naming an internal error. No Ray here.
"""

from __future__ import annotations

import threading
import time
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
from overnet.serve.limits import Cancelled, Expired, ServeError, UpscaleParams

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


#: step -> the refusal kind of an InputError met there (415 only for the media type:
#: a body that is no image of an accepted format and mode)
_KIND = {
    "plan the output": "bad_request",  # output too large for its format, tile plan
    "read the input": "unsupported_media",  # undecodable, unsupported format or mode
    "upscale": "unsupported_media",  # a mode the network cannot take (CMYK...); what
    # the model itself refuses (an engine's profile) is a 422 from the replica's run
    "write the output": "bad_request",  # a format that cannot hold the result
}
#: seconds between checks for cancellation while a request waits for memory
_POLL_S = 0.1


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
    cancelled: threading.Event | None = None,
    prepaid: int = 0,
) -> Encoded:
    """Body -> upscaled image file bytes; every refusal is a ServeError. ``budget``:
    the replica's memory, taken for the request's estimate (``prepaid`` bytes of it, the
    body, already held by the caller); a request waits up to ``wait_s`` for requests in
    flight to give it back (503 after that). ``cancelled``: set when the request is
    given up; the wait and ``run`` (at each tile group) stop with Cancelled."""
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
            rest = max(0, planned.estimate - prepaid)
            if not _wait_for_memory(budget, rest, wait_s, cancelled):
                raise ServeError(
                    "busy",
                    f"this replica's memory ({budget.total / 1e6:.0f} MB) stayed taken by "
                    f"requests in flight for {wait_s:g} s; this image needs "
                    f"{planned.estimate / 1e6:.0f} MB; retry shortly",
                    {"Retry-After": "1"},
                )
            held = rest
        step("read the input")
        image: Any = decode_image(body, planned, options)
        step("plan the output")
        check_output_holds(image, planned)
        step("upscale")
        output = upscale_image(image, upscaler, run)
        del image
        step("write the output")
        data = encode_output(output, planned, options)
    except (Expired, Cancelled):  # the replica answers 504, or nobody is waiting
        raise
    except Exception as exc:
        raise _refusal(step, exc) from None
    finally:
        if budget is not None and held:
            budget.give_back(held)
    return Encoded(data, planned.fmt, planned.out_width, planned.out_height, planned.tiles)


def _wait_for_memory(
    budget: MemoryBudget, need: int, wait_s: float, cancelled: threading.Event | None
) -> bool:
    """Take ``need`` bytes of ``budget`` within ``wait_s`` seconds; Cancelled when the
    request is given up meanwhile."""
    if need == 0:
        return True
    deadline = time.monotonic() + wait_s
    while True:
        if cancelled is not None and cancelled.is_set():
            raise Cancelled
        left = deadline - time.monotonic()
        if budget.take(need, timeout=max(0.0, min(_POLL_S, left))):
            return True
        if left <= 0 or budget.closed:
            return False
