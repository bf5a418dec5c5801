"""What the CPU is and which of its vector units matter here: every benchmark records it, because
figures from two machines (an Intel Xeon with AMX, an AMD EPYC with AVX2 only) do not compare."""

from __future__ import annotations

import os
import platform

#: The /proc/cpuinfo flags that change this project's speed: float32 width and native bfloat16.
FEATURE_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor's ``key: value`` fields of a /proc/cpuinfo text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def describe_cpu(cpuinfo_text: str | None = None) -> dict:
    """``{"model", "family", "model_number", "cores", "features"}``: the CPU's name, its family and
    model numbers (an ``AMD EPYC`` of family 25 is Zen 3 / Zen 4), the logical cores this process
    may use and which of :data:`FEATURE_FLAGS` it has. Reads /proc/cpuinfo (Linux); elsewhere the
    platform's processor name and no features."""
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo_text = handle.read()
        except OSError:
            cpuinfo_text = ""
    fields = _cpuinfo_fields(cpuinfo_text)
    flags = set(fields.get("flags", "").split())
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count()
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "cores": cores,
        "features": [flag for flag in FEATURE_FLAGS if flag in flags],
    }


def has_native_bfloat16(cpu: dict | None = None) -> bool:
    """Whether the CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX)."""
    features = (cpu or describe_cpu())["features"]
    return "avx512_bf16" in features or "amx_bf16" in features
