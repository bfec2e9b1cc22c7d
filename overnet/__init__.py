"""OverNet super-resolution toolkit.

Subpackages are imported on demand so that ``import overnet`` stays light:
``overnet.model`` and ``overnet.weights`` need PyTorch, ``overnet.runtime``,
``overnet.imaging`` and ``overnet.metrics`` need only numpy and Pillow.
"""

from overnet._version import __version__

__all__ = ["__version__"]
