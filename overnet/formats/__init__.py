"""File formats that both the exporters (``overnet.export``) and the runtimes
(``overnet.runtime``) read: ONNX metadata keys, the engine sidecar, the TensorRT
optimisation profile and file digests. numpy-free and torch-free."""
