"""OverNet super-resolution toolkit.

Subpackages are imported on demand so that ``import overnet`` stays light:
``overnet.model`` and ``overnet.weights`` need PyTorch, ``overnet.runtime``,
``overnet.imaging`` and ``overnet.metrics`` need only numpy and Pillow.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
