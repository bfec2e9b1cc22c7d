"""Scale-out batch upscaling on a Ray cluster with Ray Data (``overnet upscale --ray``).

``upscale_on_ray(inputs, out, model, ...)`` runs the local command's batch on Ray: the
same options and the same output bytes, inputs and outputs as local paths or
``pyarrow.fs`` URIs, exactly once and resumable through a JSON-lines manifest. Needs
``pip install 'overnet[ray]'``; importing this package imports neither Ray, pyarrow nor
torch (they are imported when a run starts).
"""

from __future__ import annotations

from overnet.scaleout.job import Cluster, upscale_on_ray
from overnet.scaleout.manifest import Record, read_manifest
from overnet.scaleout.report import ScaleoutReport

__all__ = ["Cluster", "Record", "ScaleoutReport", "read_manifest", "upscale_on_ray"]
