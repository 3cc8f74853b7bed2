"""Levels and the normalisations the method depends on (book chapter 02).

All functions take ``(..., samples)`` tensors and normalise along the last axis.
Every division is guarded, so silence stays silence (no 0/0, no NaN gradients).
"""
from __future__ import annotations

import torch
from torch import Tensor

#: Below this peak or RMS a signal counts as silent and is left unscaled.
SILENCE = 1e-8


def remove_dc(x: Tensor) -> Tensor:
    """Subtract the mean of the last axis."""
    return x - x.mean(dim=-1, keepdim=True)


def _safe_divide(x: Tensor, level: Tensor) -> Tensor:
    # torch.where on the divisor keeps the untaken branch finite, so gradients stay finite.
    safe = torch.where(level > SILENCE, level, torch.ones_like(level))
    return x / safe


def peak(x: Tensor, *, dims: int = 1) -> Tensor:
    """Sample peak ``max |x|`` over the last ``dims`` axes, kept for broadcasting."""
    axes = tuple(range(-dims, 0))
    return x.abs().amax(dim=axes, keepdim=True)


def peak_normalize(x: Tensor, *, dims: int = 1) -> Tensor:
    """Scale so that the sample peak over the last ``dims`` axes is 1 (0 dBFS)."""
    return _safe_divide(x, peak(x, dims=dims))


def rms(x: Tensor, *, dims: int = 1) -> Tensor:
    """Root mean square over the last ``dims`` axes, kept for broadcasting."""
    axes = tuple(range(-dims, 0))
    return x.square().mean(dim=axes, keepdim=True).clamp_min(SILENCE**2).sqrt()


def rms_normalize(x: Tensor, *, dims: int = 1) -> Tensor:
    """Remove DC, then divide by the RMS over the last ``dims`` axes (losses and metrics)."""
    x = remove_dc(x)
    return _safe_divide(x, rms(x, dims=dims))


def normalize_0dbfs(x: Tensor) -> Tensor:
    """The chain's rule before every effect: remove DC per channel, then peak-normalise
    each example over all its channels (``x`` is ``(batch, channels, samples)``)."""
    return peak_normalize(remove_dc(x), dims=2)


def db_to_amplitude(db: Tensor) -> Tensor:
    """``10 ** (db / 20)``."""
    return torch.pow(10.0, db / 20.0)


def amplitude_to_db(a: Tensor, *, floor_db: float = -120.0) -> Tensor:
    """``20 log10 |a|`` floored at ``floor_db`` (finite for silence, finite gradient)."""
    floor = 10.0 ** (floor_db / 20.0)
    return 20.0 * torch.log10(a.abs().clamp_min(floor))
