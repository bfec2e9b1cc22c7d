#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU, TensorRT 10/11 and cuda-python:
#   benchmarks/tensorrt_gpu.sh [--shared ../shared] [--runs 30]
# Runs the CPU test-double tests, the real-GPU tests (-m tensorrt) and the benchmark, which
# writes benchmarks/results/tensorrt-gpu-<gpu>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c "import tensorrt, cuda.bindings.runtime" 2>/dev/null; then
    echo "TensorRT or cuda-python is missing. Install them with:" >&2
    echo "  $PY -m pip install -e '.[export,tensorrt]' --extra-index-url https://pypi.nvidia.com" >&2
    exit 1
fi
"$PY" -m pytest tests/export/tensorrt tests/runtime/test_tensorrt_backend.py -q
"$PY" -m pytest -m tensorrt tests/runtime/test_tensorrt_gpu.py -q -s -rs
"$PY" benchmarks/tensorrt_gpu.py "$@"
