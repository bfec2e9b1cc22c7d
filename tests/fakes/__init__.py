"""Test doubles of GPU libraries (tensorrt, cuda-python) for CPU-only machines."""
