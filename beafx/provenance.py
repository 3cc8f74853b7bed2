"""Where a result came from: the commit of the checkout that produced it, and the CPU."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Optional


def git_commit() -> Optional[str]:
    """``git rev-parse HEAD`` of the checkout holding beafx (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def cpu_model() -> str:
    """The CPU as ``/proc/cpuinfo`` names it, with family, model, stepping and the widest SIMD
    set, e.g. ``"Intel(R) Xeon(R) Processor (family 6, model 207, stepping 2, avx512f)"``:
    two CPUs that differ here may round a float32 training run differently (another kernel),
    so a run is only expected to be bit-identical on the same CPU model. Outside Linux:
    ``platform.processor()``."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    first = text.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2", "asimd", "neon") if f in flags), None)
    name = fields.get("model name") or fields.get("Model") or platform.processor() or platform.machine()
    labels = {"cpu family": "family", "model": "model", "stepping": "stepping"}
    details = [f"{label} {fields[key]}" for key, label in labels.items() if fields.get(key)]
    details += [simd] if simd else []
    return f"{name} ({', '.join(details)})" if details else name
