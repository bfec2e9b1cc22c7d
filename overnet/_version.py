"""The overnet version, in a base module that everything may import.

``overnet/__init__.py`` is top-level glue (the highest layer): a module lower down that
needs the version imports it from here, never ``from overnet import __version__``.
"""

__version__ = "0.1.0"
