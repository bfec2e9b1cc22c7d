"""Request checks of the upscale service: each refusal is a status code, a kind (the
label it is counted under in the metrics) and a message, sent as a JSON body.

No Ray or HTTP framework here: the checks take bytes, header values and query mappings.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overnet.errors import OverNetError
from overnet.serve.config import Limits

#: kind of refusal -> HTTP status
STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "body_too_large": 413,
    "too_many_pixels": 413,
    "unsupported_media": 415,
    "unprocessable": 422,
    "internal": 500,
    "queue_full": 503,
    "busy": 503,
    "not_ready": 503,
    "timeout": 504,
}
#: query parameters of POST /v1/upscale
PARAMETERS = ("scale", "model", "format", "quality", "timeout")


class ServeError(OverNetError):
    """A request the service refuses: ``status``, ``kind``, message and extra headers."""

    def __init__(self, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = STATUS[kind]
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "kind": self.kind, "message": self.message}}


class Expired(Exception):
    """The request's deadline passed while its tiles were waiting or running (504)."""


class Cancelled(Exception):
    """The request was given up (its client went away, or the replica is stopping): its
    thread stops at its next tile group."""


@dataclass(frozen=True)
class UpscaleParams:
    fmt: str | None  # None: the input's format (PNG when it cannot be written)
    quality: int
    timeout_s: float
    scale: float | None = None  # None: the service's default scale
    model: str | None = None  # None: the model that covers the scale


def _default_quality() -> int:
    from overnet.imaging.files import save_image

    return inspect.signature(save_image).parameters["quality"].default


def parse_params(query: Mapping[str, str], limits: Limits) -> UpscaleParams:
    """``scale``, ``model``, ``format``, ``quality``, ``timeout`` -> 400s (whether a
    model serves the scale is the replica's to say)."""
    from overnet.imaging.files import OUTPUT_FORMATS

    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise ServeError(
            "bad_request",
            f"unknown query parameter(s) {', '.join(unknown)}; expected {', '.join(PARAMETERS)}",
        )
    scale = _number(query, "scale", float) if "scale" in query else None
    fmt = query.get("format")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise ServeError(
            "bad_request", f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}"
        )
    quality = _number(query, "quality", int) if "quality" in query else _default_quality()
    if not 1 <= quality <= 100:
        raise ServeError("bad_request", f"quality must be in 1..100, got {quality}")
    timeout = _number(query, "timeout", float) if "timeout" in query else limits.timeout_s
    if not 0 < timeout <= limits.timeout_s:
        raise ServeError(
            "bad_request",
            f"timeout must be > 0 and at most the server's {limits.timeout_s:g} s, got "
            f"{query['timeout']}",
        )
    return UpscaleParams(fmt, quality, timeout, scale, query.get("model"))


def _number(query: Mapping[str, str], name: str, kind: type) -> Any:
    text = query[name]
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ServeError("bad_request", f"{name} must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise ServeError("bad_request", f"{name} must be finite, got {text!r}")
    return value


def check_length(header: str | None, limits: Limits) -> None:
    """The Content-Length header against the body limit, before reading the body."""
    if header is None:
        return
    try:
        length = int(header)
    except ValueError:
        raise ServeError(
            "bad_request", f"Content-Length must be an integer, got {header!r}"
        ) from None
    if length > limits.max_body_bytes:
        raise body_too_large(limits)


def body_too_large(limits: Limits) -> ServeError:
    return ServeError(
        "body_too_large",
        f"the body is larger than this service's {limits.max_body_bytes / 1e6:g} MB limit",
    )
