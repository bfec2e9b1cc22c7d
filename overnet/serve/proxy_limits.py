"""The body limit in Ray Serve's HTTP proxy, before a body is buffered.

Ray Serve's proxy reads a request's whole body as soon as the request arrives, while
it waits for a replica, so a limit checked in the replica comes after the proxy has
held the bytes. This ASGI middleware runs in the proxy: Ray Serve 2.60 takes proxy middlewares only
from a callback named by ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` in the proxy's
environment, so it is in place when the process that starts Ray sets
``proxy_environment(...)`` first (`overnet serve` does, for its own local Ray); on a
cluster started otherwise the limit is checked in the replica, after the proxy has
read the body. A ``POST`` under a limited route whose ``Content-Length`` is over the
limit gets 413 without a byte of its body read; a body without a length (chunked) is
counted as it arrives and cut off at the limit. No Ray import: the proxy imports it by
name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: Ray Serve's variable naming the callback that returns the proxy's middlewares
CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
#: JSON {route prefix: max body bytes} the callback reads
LIMITS_ENV = "OVERNET_SERVE_BODY_LIMITS"


def proxy_environment(limits: dict[str, int]) -> dict[str, str]:
    """Variables to set before Ray starts so that its proxies refuse large bodies under
    each route prefix (``{"/": 50_000_000}``)."""
    return {CALLBACK_ENV: f"{__name__}.middlewares", LIMITS_ENV: json.dumps(limits)}


def middlewares() -> list:
    """The proxy callback: the body limit for the routes in ``$OVERNET_SERVE_BODY_LIMITS``."""
    from starlette.middleware import Middleware

    limits = {str(k): int(v) for k, v in json.loads(os.environ.get(LIMITS_ENV) or "{}").items()}
    return [Middleware(BodyLimit, limits=limits)] if limits else []


def _refusal(max_body: int) -> bytes:
    message = f"the body is larger than this service's {max_body / 1e6:g} MB limit"
    error = {"status": 413, "kind": "body_too_large", "message": message}
    return json.dumps({"error": error}).encode()


class BodyLimit:
    """ASGI middleware: 413 for a ``POST`` body over ``limits[prefix]`` bytes under the
    longest matching route prefix."""

    def __init__(self, app: Any, limits: dict[str, int]) -> None:
        self.app = app
        # longest prefix first: "/a" wins over "/" for /a/v1/upscale
        self.limits = sorted(((p.rstrip("/"), n) for p, n in limits.items()), reverse=True)

    def _limit(self, scope: Message) -> int | None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            return None
        path = scope.get("path", "")
        for prefix, limit in self.limits:
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                return limit
        return None

    @staticmethod
    async def _send_413(send: Send, max_body: int) -> None:
        body = _refusal(max_body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        limit = self._limit(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            await self._send_413(send, limit)  # the body is never read
            return
        seen, refused = 0, False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await self._send_413(send, limit)
                    # the proxy sees the client go: it stops the request and reads no more
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:  # after our 413, nothing else goes out on this request
                await send(message)

        await self.app(scope, counted, guarded)
