"""A small client of `overnet serve` (standard library only): ``Client`` blocks,
``AsyncClient`` awaits (each call runs the blocking one in a worker thread).

    client = Client("http://127.0.0.1:8000", token="...")
    result = client.upscale("photo.png", format="webp", quality=90)
    Path("photo_x2.webp").write_bytes(result.data)
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import io
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overnet.errors import OverNetError
from overnet.serve.auth import TOKEN_ENV


class ServiceError(OverNetError):
    """The service refused or failed a request: HTTP ``status``, ``kind``, message."""

    def __init__(self, status: int, kind: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Upscaled:
    """An upscaled image file as the service sent it, with its ``X-OverNet-*`` headers."""

    data: bytes
    content_type: str
    headers: dict[str, str]

    @property
    def seconds(self) -> float:
        """Server-side time of the request."""
        return float(self.headers.get("x-overnet-seconds", "nan"))

    def image(self) -> Any:
        """The decoded PIL image (16-bit PNGs decode to 8 bits here: use ``data``)."""
        from PIL import Image

        return Image.open(io.BytesIO(self.data))


def _image_bytes(image: Any) -> bytes:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    if hasattr(image, "save"):  # a PIL image: sent as PNG (lossless)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise TypeError(f"expected image bytes, a path or a PIL image, got {type(image).__name__}")


class Client:
    """Blocking client. ``token``: the service's bearer token (default $OVERNET_SERVE_TOKEN)."""

    def __init__(
        self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 300
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.timeout = timeout

    def upscale(
        self,
        image: Any,
        *,
        format: str | None = None,
        quality: int | None = None,
        scale: float | None = None,
        timeout: float | None = None,
    ) -> Upscaled:
        """POST /v1/upscale: image bytes, a file path or a PIL image -> the upscaled file.
        ``scale``: any above 1 up to the service's ``max_scale`` (default: its default
        scale); ``timeout`` is the server-side deadline (504 past it)."""
        query = {"format": format, "quality": quality, "scale": scale, "timeout": timeout}
        wait = self.timeout if timeout is None else timeout + 30
        _, headers, data = self._request("POST", "/v1/upscale", _image_bytes(image), query, wait)
        return Upscaled(data, headers.get("content-type", ""), headers)

    def info(self) -> dict[str, Any]:
        """GET /v1/models: the models with the scales each covers, ``max_scale``,
        ``default_scale``, tiling, batching and limits."""
        return json.loads(self._request("GET", "/v1/models")[2])

    def models(self) -> list[dict[str, Any]]:
        """The served models (``info()["models"]``)."""
        return self.info()["models"]

    def health(self) -> dict[str, Any]:
        return json.loads(self._request("GET", "/healthz")[2])

    def metrics(self) -> str:
        return self._request("GET", "/metrics")[2].decode("utf-8")

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        query: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        given = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(given) if given else "")
        request = urllib.request.Request(url, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        if self.token:  # never forwarded to where a redirect points
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, headers, response.read()
        except urllib.error.HTTPError as exc:
            raise _service_error(exc) from None


def _service_error(exc: urllib.error.HTTPError) -> ServiceError:
    raw = exc.read()
    try:
        error = json.loads(raw)["error"]
        kind, message = error["kind"], error["message"]
    except (ValueError, KeyError, TypeError):  # not the service's JSON (a proxy's page)
        kind, message = "http", raw.decode("utf-8", "replace")[:500]
    return ServiceError(exc.code, kind, message, retry_after(exc.headers.get("Retry-After")))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date
    (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class AsyncClient:
    """The same calls as ``Client``, awaitable (each in a worker thread)."""

    def __init__(
        self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 300
    ) -> None:
        self.sync = Client(url, token, timeout)

    async def upscale(self, image: Any, **options: Any) -> Upscaled:
        return await asyncio.to_thread(self.sync.upscale, image, **options)

    async def info(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.info)

    async def models(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.models)

    async def health(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.health)

    async def metrics(self) -> str:
        return await asyncio.to_thread(self.sync.metrics)
