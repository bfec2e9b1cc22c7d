"""libx264 on AVX-512 CPUs: the same frames must give the same bytes.

The libx264 in PyAV's wheels, left to pick its own code on a CPU with AVX-512, wrote
different bytes for the same frames from run to run in one process (12 distinct files
in 12 runs, decoded PSNR 36.62-36.91 dB), and agreed with itself when glibc refilled
freed memory with one value (MALLOC_PERTURB_): most likely its AVX-512 code reads memory
it never wrote. Limited to its code up to AVX2 (``x264-params asm=...``) it wrote the
same file every time, as did libx265, SVT-AV1, VP9 and FFV1, at no measurable cost
(1080p: 1.97 s against 1.98 s, medians of 9). All from
``benchmarks/encoder_repeatability.py`` (``benchmarks/results/encoder-repeatability.txt``).
Repeatable bytes let a rerun, a Ray actor and the local command agree on a sha256.

A user's ``x264-params`` (``--encoder-option x264-params=...``) merges with this entry
by entry; their own ``asm=`` replaces it (``asm=auto`` restores x264's choice).
"""

from __future__ import annotations

from overnet.cpu import cpu_flags

#: x264's names for its instruction sets up to AVX2, each with its /proc/cpuinfo flag
_UP_TO_AVX2 = (
    ("MMX2", "sse"),
    ("SSE", "sse"),
    ("SSE2", "sse2"),
    ("SSE2Fast", "sse2"),
    ("SSE3", "pni"),
    ("SSSE3", "ssse3"),
    ("SSE4.1", "sse4_1"),
    ("SSE4.2", "sse4_2"),
    ("LZCNT", "abm"),
    ("AVX", "avx"),
    ("FMA3", "fma"),
    ("BMI1", "bmi1"),
    ("BMI2", "bmi2"),
    ("AVX2", "avx2"),
)
#: the flags x264 needs before it runs its AVX-512 code
_X264_AVX512 = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")


def asm_up_to_avx2() -> str:
    """x264's ``asm`` value naming the sets up to AVX2 that this CPU has (never one it
    lacks: x264 would run instructions the CPU cannot)."""
    flags = cpu_flags()
    return ",".join(name for name, flag in _UP_TO_AVX2 if flag in flags)


def repeatable_x264_options() -> dict[str, str]:
    """``{"x264-params": "asm=..."}`` on CPUs where x264 would run AVX-512 code; {} where
    it would not, or where the CPU's flags are unknown (x264 then picks its own)."""
    flags = cpu_flags()
    if not all(flag in flags for flag in _X264_AVX512) or "avx2" not in flags:
        return {}
    return {"x264-params": f"asm={asm_up_to_avx2()}"}


def brief_x264_params(key: str, value: str) -> str:
    """An option's value for reports, with overnet's long ``asm=`` list said briefly
    (a user's own ``asm=`` is shown as given)."""
    ours = repeatable_x264_options().get("x264-params")
    if key != "x264-params" or not ours:
        return value
    entries = value.split(":")
    return ":".join("asm up to AVX2" if entry == ours else entry for entry in entries)
