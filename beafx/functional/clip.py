"""Memoryless clippers: parametric (tanh/cubic/hard), Taylor and Chebyshev (book chapter 06).

Shapes: ``x`` is any tensor (usually ``(batch, channels, samples)``); per-example
parameters are floats or ``(batch,)`` tensors, broadcast over the remaining axes
(:func:`beafx.functional.checks.as_batch_param`: NaN/Inf, or a hardness outside [0, 2], raise
``ValueError``).
Follows the authors' code where the paper has typos (AUTHORS_CODE.md 2.6-2.7, 9).
"""
from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from .checks import as_batch_param
from .levels import db_to_amplitude, peak, remove_dc

Param = Union[float, Tensor]

#: Where the cubic curve x - 4x^3/27 reaches +-1 with zero slope.
CUBIC_KNEE = 1.5

#: The hardness of eq. 1 blends tanh (0), cubic (1) and hard (2) clipping: values in [0, 2].
HARDNESS = dict(minimum=0.0, maximum=2.0)


def _per_example(p: Param, x: Tensor, name: str, **bounds: float) -> Tensor:
    """A float or ``(batch,)`` tensor -> a tensor in ``x``'s dtype and device, broadcastable
    against ``x`` (batch first); NaN/Inf and values outside ``bounds`` are rejected."""
    return as_batch_param(p, name=name, batch=x.shape[0] if x.dim() else 1, dtype=x.dtype, device=x.device,
                          ndim=x.dim(), **bounds)


def hard_clip(x: Tensor) -> Tensor:
    """Eq. 2: ``max(-1, min(1, x))``."""
    return x.clamp(-1.0, 1.0)


def cubic_clip(x: Tensor) -> Tensor:
    """The corrected eq. 3: ``x - 4 x^3 / 27`` for ``|x| < 1.5``, ``sign(x)`` beyond.

    Continuous with a continuous slope (0 at ``|x| = 1.5``), as in the authors' code; the
    paper's ``x + 4x^3/27`` on ``[-2/3, 2/3]`` is a typo.
    """
    inside = x.abs() < CUBIC_KNEE
    xs = torch.where(inside, x, torch.zeros_like(x))  # keep the untaken branch tame
    return torch.where(inside, xs - (4.0 / 27.0) * xs**3, torch.sign(x))


def soft_clip_curve(x: Tensor, hardness: Param) -> Tensor:
    """Eq. 1: blend tanh (h = 0) -> cubic (h = 1) -> hard (h = 2); ``hardness`` in [0, 2]."""
    h = hardness if isinstance(hardness, Tensor) and hardness.dim() == x.dim() else _per_example(
        hardness, x, "hardness", **HARDNESS)
    cubic = cubic_clip(x)
    soft = (1.0 - h) * torch.tanh(x) + h * cubic
    hard = (2.0 - h) * cubic + (h - 1.0) * hard_clip(x)
    return torch.where(h < 1.0, soft, hard)


def parametric_clipper(x: Tensor, *, drive_db: Param, offset: Param, hardness: Param) -> Tensor:
    """Eq. 4: ``y = (f(g x + o, h) - f(o, h)) / g`` with ``g = 10^(drive_db / 20)``.

    ``drive_db`` in dB (the paper's "gain g"), ``offset`` the DC bias before the curve
    (its DC is removed again by ``- f(o, h)``), ``hardness`` in [0, 2].
    """
    g = db_to_amplitude(_per_example(drive_db, x, "drive_db"))
    o = _per_example(offset, x, "offset")
    h = _per_example(hardness, x, "hardness", **HARDNESS)
    o_ref = o + torch.zeros_like(x[..., :1])  # f(o, h) per example, shaped like one sample of x
    return (soft_clip_curve(g * x + o, h) - soft_clip_curve(o_ref, h)) / g


def bounded_input(x: Tensor) -> Tensor:
    """Remove DC, then scale down (never up) so that ``|x| <= 1`` per example.

    The authors only removed DC; after that the peak can exceed 1, where ``x^24`` and
    ``T_23(x)`` explode. Scaling by ``max(1, peak)`` keeps their behaviour whenever the
    DC-free signal is already within [-1, 1].
    """
    x = remove_dc(x)
    dims = x.dim() - 1 if x.dim() > 1 else 1
    return x / peak(x, dims=dims).clamp_min(1.0)


def _coefficients(coefficients: Tensor, x: Tensor, n: int, what: str) -> Tensor:
    c = torch.as_tensor(coefficients, dtype=x.dtype, device=x.device)
    if c.dim() != 2 or c.shape[0] != x.shape[0] or c.shape[1] != n:
        raise ValueError(f"{what} coefficients must have shape (batch, {n}) = ({x.shape[0]}, {n}); got {tuple(c.shape)}")
    return c.reshape(c.shape + (1,) * (x.dim() - 1))


def taylor_clipper(x: Tensor, *, coefficients: Tensor) -> Tensor:
    """``y = sum_{k=1..K} g_k x^k`` (powers 1..K, no constant term), by Horner's rule.

    ``coefficients``: ``(batch, K)`` with ``g_1`` first. Apply to bounded input (see
    :func:`bounded_input`); the effect does.
    """
    c = _coefficients(coefficients, x, coefficients.shape[-1], "Taylor")
    y = torch.zeros_like(x)
    for k in range(c.shape[1] - 1, -1, -1):
        y = (y + c[:, k]) * x
    return y


def chebyshev_polynomials(x: Tensor, order: int) -> list[Tensor]:
    """``[T_0(x), ..., T_{order-1}(x)]`` by the recursion ``T_n = 2x T_{n-1} - T_{n-2}``."""
    terms = [torch.ones_like(x), x]
    while len(terms) < order:
        terms.append(2.0 * x * terms[-1] - terms[-2])
    return terms[:order]


def chebyshev_clipper(x: Tensor, *, coefficients: Tensor) -> Tensor:
    """``y = sum_{k=0..K-1} g_k T_k(x)``; ``x`` must lie in [-1, 1] (see :func:`bounded_input`).

    ``coefficients``: ``(batch, K)`` with ``g_0`` (the DC term) first. Evaluated by the
    Clenshaw recurrence (stable, no list of K full-size polynomials).
    """
    c = _coefficients(coefficients, x, coefficients.shape[-1], "Chebyshev")
    b1 = torch.zeros_like(x)
    b2 = torch.zeros_like(x)
    for k in range(c.shape[1] - 1, 0, -1):
        b1, b2 = c[:, k] + 2.0 * x * b1 - b2, b1
    return c[:, 0] + x * b1 - b2
