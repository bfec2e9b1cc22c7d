"""`overnet serve`: upscaling over HTTP on Ray Serve (Triton model repositories are an
export: ``overnet.export.triton``).

Every request image is cut into fixed-size tiles with overlap (the Upscaler's tiling),
tiles of concurrent requests share inference batches, and each request's tiles are
blended back, so any mix of image sizes fills a batch. ``app`` (the Ray Serve
application) imports Ray; nothing else here does. ``Client``/``AsyncClient`` talk to a
running service with the standard library alone (importing them loads no numpy).
"""

from typing import Any

from overnet.serve.client import AsyncClient, Client, ServiceError, Upscaled

__all__ = ["AsyncClient", "Client", "Limits", "ServiceConfig", "ServiceError", "Upscaled"]


def __getattr__(name: str) -> Any:  # the config pulls in the runtime (numpy) on first use
    if name in ("Limits", "ServiceConfig"):
        from overnet.serve import config

        return getattr(config, name)
    raise AttributeError(f"module 'overnet.serve' has no attribute {name!r}")
