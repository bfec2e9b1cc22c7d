"""``precision="auto"``: the fastest precision the hardware runs natively whose output
agrees with fp32 within AUTO_BOUND_DB, else fp32.

bf16 on CPUs with AVX512_BF16 or AMX (OpenVINO, torch), fp16 on CUDA (torch autocast, an
fp16 ONNX export for onnxruntime); ONNX files and TensorRT engines run in the precision
they hold. The bound is checked by tests on Set5 (bf16 and fp16 each >= 45 dB PSNR
against fp32 there; measured 50.9 dB for torch bf16).
"""

from __future__ import annotations

from overnet.cpu import cpu_flags
from overnet.runtime.model_source import ModelSource
from overnet.runtime.spec import BackendSpec

#: auto never picks a precision whose output is further than this from fp32 (PSNR, dB)
AUTO_BOUND_DB = 45.0
#: the CPU flags under which bf16 is native (else it is emulated and slower than fp32)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16() -> str | None:
    """The flag that makes bf16 native on this CPU, or None."""
    return next((flag for flag in BF16_FLAGS if flag in cpu_flags()), None)


def auto_candidates(
    spec: BackendSpec, device: str, source: ModelSource
) -> list[tuple[str | None, str]]:
    """(precision, why) pairs to try in order; None means "the file's own precision"."""
    kind = device.split(":")[0]
    if source.kind == "engine" or (source.kind == "onnx" and spec.name == "onnxruntime"):
        return [(None, f"a{'n engine' if source.kind == 'engine' else 'n ONNX file'} runs in "
                 "the precision it holds")]  # fmt: skip
    candidates: list[tuple[str | None, str]] = []
    for precision in spec.fast_precisions.get(kind, ()):
        if precision == "bf16" and kind == "cpu":
            flag = native_bf16()
            if flag:
                candidates.append((precision, f"this CPU has {flag}"))
        else:
            candidates.append((precision, f"native on {kind}"))
    why = "no faster native precision here" if not candidates else "the faster precision failed"
    candidates.append(("fp32", why))
    return candidates
