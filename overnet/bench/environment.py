"""The environment header of a benchmark: CPU, GPU and driver, library versions, load."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from overnet.bench.memory import available_bytes, total_bytes

#: distributions whose versions matter for the figures (read from metadata, never imported)
LIBRARIES = (
    "overnet",
    "numpy",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "tensorrt",
    "cuda-python",
    "ai-edge-litert",
    "executorch",
    "matplotlib",
)

#: CPU flags that decide which kernels and precisions the runtimes can use
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def cpu_info() -> dict[str, Any]:
    """Model name, logical/physical cores and the relevant ISA flags (Linux /proc/cpuinfo)."""
    model, flags, cores = platform.processor() or platform.machine(), set(), set()
    try:
        physical = "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                model = value
            elif key == "flags" and not flags:
                flags = set(value.split())
            elif key == "physical id":
                physical = value
            elif key == "core id":
                cores.add((physical, value))
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": len(cores) or None,
        "usable_cores": affinity,
        "flags": [f for f in CPU_FLAGS if f in flags],
    }


def gpu_info() -> list[dict[str, str]]:
    """GPUs from nvidia-smi (name, driver, memory, compute capability); [] without one."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = "name,driver_version,memory.total,compute_cap"
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append(
                dict(zip(("name", "driver", "memory", "compute_capability"), parts, strict=False))
            )
    return gpus


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def collect(threads: int | None = None) -> dict[str, Any]:
    """Everything the header prints; ``threads`` is the requested count (None: default)."""
    return {
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "memory_total_bytes": total_bytes(),
        "memory_available_bytes": available_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "libraries": library_versions(),
        "threads_requested": threads,
        "load_average_start": load_average(),
    }
