"""`overnet serve`: upscaling over HTTP on Ray Serve (Triton model repositories are an
export: ``overnet.export.triton``).

One service holds several models and answers any scale per request, each request on the
model that covers its scale (``models.py``). Every request image is cut into tiles with
overlap (the Upscaler's tiling), tiles of concurrent requests share inference batches
(per graph: requests at different scales share the overscale features graph), and each
request's tiles are blended back. Replicas admit requests by memory and stop the work of
requests nobody waits for (``replica.py``). ``app`` (the Ray Serve application) and
``deploy`` import Ray; nothing else here does. ``Client``/``AsyncClient`` talk to a
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
