"""Where a result came from: the commit of the checkout that produced it."""
from __future__ import annotations

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
