"""Run profiles: one switch (``BEAFX_PROFILE`` / ``--profile``) sizes every run.

The profile is never inferred from the presence of a GPU: a GPU only makes the same run
faster. Every profile runs at 44.1 kHz. ``BEAFX_MAX_STEPS`` / ``--max-steps`` caps any profile.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Optional

SAMPLE_RATE = 44100


@dataclass(frozen=True)
class Profile:
    """Sizes of a run. ``max_steps=None`` means epochs decide (the paper's profile)."""

    name: str
    clip_seconds: float
    batch_size: int
    lr: float
    max_steps: Optional[int]
    max_epochs: int
    repeats_per_track: int  # training examples per track per epoch (the paper's 5)
    val_repeats: int
    test_repeats: int
    val_max_tracks: Optional[int]
    test_max_tracks: Optional[int]
    val_every_steps: Optional[int]  # None: validate once per epoch
    plateau_patience: int  # validations without improvement before lr x 0.1
    early_stop_patience: int  # validations without improvement before stopping
    mee_width: float  # fraction of the MEE's channel widths

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * SAMPLE_RATE))


PROFILES: dict[str, Profile] = {
    "paper": Profile("paper", 10.0, 16, 1e-4, None, 400, 5, 5, 10, None, None, None, 30, 150, 1.0),
    "cpu": Profile("cpu", 3.0, 16, 1e-4, 300, 10_000, 5, 5, 10, None, None, 30, 5, 10, 0.25),
    "smoke": Profile("smoke", 2.0, 2, 1e-4, 2, 1, 5, 1, 1, 2, 4, 1, 5, 10, 1.0 / 16),
}


def env_max_steps() -> Optional[int]:
    """``$BEAFX_MAX_STEPS`` as an integer, or None when unset."""
    raw = os.environ.get("BEAFX_MAX_STEPS")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"BEAFX_MAX_STEPS must be a positive integer, got {raw!r}") from None


def get_profile(name: Optional[str] = None, *, max_steps: Optional[int] = None, env: bool = True) -> Profile:
    """The profile ``name`` (default: ``$BEAFX_PROFILE`` or ``cpu``), capped by ``max_steps``
    or (when ``env``) ``$BEAFX_MAX_STEPS``."""
    name = name or os.environ.get("BEAFX_PROFILE", "cpu")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if max_steps is None and env:
        max_steps = env_max_steps()
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps}")
        capped = max_steps if profile.max_steps is None else min(max_steps, profile.max_steps)
        profile = replace(profile, max_steps=capped)
    return profile
