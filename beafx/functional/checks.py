"""Input validation shared by every function and effect: one place, one wording."""
from __future__ import annotations

import torch
from torch import Tensor


def check_signal(x: Tensor, *, what: str = "x", finite: bool = True) -> None:
    """Raise ``ValueError`` unless ``x`` is a non-empty float32/float64
    ``(batch, channels, samples)`` tensor; with ``finite`` also reject NaN/Inf (callers whose
    kernel detects NaN/Inf itself pass ``finite=False`` to save a pass over the data)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of shape (batch, channels, samples), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{what} must have shape (batch, channels, samples); got {x.dim()} dimensions {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{what} must be float32 or float64, got {x.dtype}")
    if 0 in x.shape:
        raise ValueError(f"{what} must not be empty, got shape {tuple(x.shape)}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or Inf")
