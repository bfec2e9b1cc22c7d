"""The web page of `overnet serve` at ``/``: static files shipped in ``overnet/serve/page/``.

The page is a client of the public API only (``GET /v1/models``, ``POST /v1/upscale``):
it holds no secret and is served without a token, like ``/healthz``. Every file is
served with a strict Content-Security-Policy (scripts, styles and fetches from the
service itself only; images also from ``blob:`` URLs, which is how the page shows the
picked file and the answer), so nothing outside the service is ever loaded.

No web framework here: ``asset(path)`` gives the bytes, media type and headers, and the
application wraps them in its own response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

#: URL path -> file in overnet/serve/page/ and its media type
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/page/app.css": ("app.css", "text/css; charset=utf-8"),
    "/page/icon.svg": ("icon.svg", "image/svg+xml"),
}
#: the paths of the page (served without a token)
PATHS = tuple(FILES)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


@dataclass(frozen=True)
class Asset:
    """One answer of the page: status, bytes, media type and response headers."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def asset(path: str, url_path: str | None = None) -> Asset | None:
    """The page's file at ``path`` (below the service's route prefix), or None when
    ``path`` is not one of the page's. ``url_path``, the request's whole path: the page
    at a route prefix without its trailing slash ("/sr") is redirected to "/sr/", so that
    the page's relative links ("page/app.js", "v1/upscale") stay under the prefix."""
    if path not in FILES:
        return None
    if path == "/" and url_path and not url_path.endswith("/"):
        headers = {"Location": url_path + "/", "Cache-Control": "no-store"}
        return Asset(b"", "text/plain; charset=utf-8", headers, status=308)
    name, content_type = FILES[path]
    return Asset(_read(name), content_type, dict(HEADERS))


@cache
def _read(name: str) -> bytes:
    return resources.files("overnet.serve").joinpath("page", name).read_bytes()


HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # small files: fetched again on every load, so an upgraded service never runs its new
    # page with an old cached script
    "Cache-Control": "no-store",
}
