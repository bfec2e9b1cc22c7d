"""`overnet export --format web`: a static site that upscales in the browser.

The site is the model's ONNX export, ``config.json`` (scale, tiling defaults, where the
onnxruntime-web files come from and their integrity hashes) and the page's own files
(``overnet/export/web/site``: HTML, a module script, a Web Worker and the tiling and pixel
modules it imports). :func:`overnet.export.web.serve.SiteServer` serves it locally.
"""

from overnet.export.web.exporter import WebExportResult, export_web
from overnet.export.web.ort import ORT_VERSION

__all__ = ["ORT_VERSION", "WebExportResult", "export_web"]
