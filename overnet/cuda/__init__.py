"""The CUDA runtime through cuda-python, shared by the TensorRT builder (``overnet.export``)
and the TensorRT backend (``overnet.runtime``); imported only on those code paths."""
