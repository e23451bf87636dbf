"""What this machine computes natively, for ``precision = "auto"``.

bfloat16 training pays only where the hardware has bfloat16 arithmetic: about
1.8x faster than float32 on a CPU with AVX512-BF16 or AMX, no faster (measured:
21.7 against 24.7 GFLOP/s of bare matmuls) on one without. ``auto`` resolves
when a pipeline is read, so the resolved dtype is what stage keys, spec.json
and the report hold: a stage trained in bfloat16 is never reused as float32.
Read from /proc/cpuinfo and nvidia-smi, never by importing TensorFlow.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a bfloat16 instruction set."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag in line.split(":", 1)[-1].split() for flag in BF16_CPU_FLAGS)
    return False


def gpu_has_bfloat16(compute_caps: str) -> bool:
    """Whether nvidia-smi's compute capabilities (one per line) include Ampere (8.0) or newer."""
    caps = [float(c) for c in compute_caps.split() if c.replace(".", "", 1).isdigit()]
    return bool(caps) and min(caps) >= 8.0


@functools.cache
def native_bfloat16() -> bool:
    """This machine's answer; AEPIPE_BFLOAT16=0/1 overrides it (a CPU the probe misreads)."""
    forced = os.environ.get("AEPIPE_BFLOAT16")
    if forced in ("0", "1"):
        return forced == "1"
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout
            return gpu_has_bfloat16(out)
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return cpu_has_bfloat16(f.read())
    except OSError:  # not Linux: float32 is the safe answer
        return False


def resolve_precision(value: str) -> str:
    """``auto`` -> bfloat16 where the hardware has it natively, else float32; others unchanged."""
    if value != "auto":
        return value
    return "bfloat16" if native_bfloat16() else "float32"
