"""Bearer-token check of the upscale service, in constant time.

Replicas hold only the SHA-256 of the token (``token_digest``): the token itself is not
in the deployment's arguments that Ray stores. A request's token is hashed the same way
and the two digests are compared with ``hmac.compare_digest``, so the time taken does
not depend on how much of the token was right.
"""

from __future__ import annotations

import hashlib
import hmac

from overnet.serve.webpage import PATHS as PAGE_PATHS

#: environment variable `overnet serve` reads the token from when --token is not given
TOKEN_ENV = "OVERNET_SERVE_TOKEN"
#: paths answered without a token: load balancers' health checks carry none, and the web
#: page (static files, no secret) asks for the token itself
OPEN_PATHS = ("/healthz", *PAGE_PATHS)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authorized(header: str | None, digest: str | None) -> bool:
    """True when no token is configured, or ``Authorization: Bearer <token>`` matches."""
    if digest is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    candidate = token_digest(given.strip()) if scheme.lower() == "bearer" else ""
    # compare digests of equal length: the time never depends on the given token
    return hmac.compare_digest(candidate.encode() or b"-" * 64, digest.encode())
