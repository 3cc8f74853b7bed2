"""Input validation shared by every function and effect: one place, one wording.

- :func:`check_signal`: a ``(batch, channels, samples)`` float tensor.
- :func:`check_sample_rate`: a positive, finite number of Hz.
- :func:`as_batch_param` / :func:`common_batch`: parameters given as "a float or a ``(batch,)``
  tensor", turned into one ``(batch,)`` tensor of a chosen dtype and device, with optional
  bounds. The functions differ only in the arguments they pass (the clippers work in the
  signal's dtype, the compressors too, the biquads always in float64).
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

#: What a per-example parameter may be: a real number or a 0-d / ``(batch,)`` tensor (numpy
#: arrays and sequences of numbers are accepted too).
ParamLike = Union[float, int, Tensor, np.ndarray, Sequence[float]]


def _prefix(owner: Optional[str]) -> str:
    return f"{owner}: " if owner else ""


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


def check_sample_rate(sample_rate: float, *, owner: Optional[str] = None, whole: bool = False) -> float:
    """``sample_rate`` (Hz) as a float; ``ValueError`` unless it is a positive, finite real
    number (``bool`` is not a number here). ``whole``: also require a whole number of Hz (effects
    store it as an ``int``). ``owner`` starts the message (e.g. ``"biquad"``, ``"Compressor"``)."""
    ok = isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, (bool, np.bool_))
    if not ok or not math.isfinite(sample_rate) or not sample_rate > 0:
        raise ValueError(f"{_prefix(owner)}sample_rate must be a positive, finite number of Hz, got {sample_rate!r}")
    if whole and float(sample_rate) != math.floor(sample_rate):
        raise ValueError(f"{_prefix(owner)}sample_rate must be a whole number of Hz, got {sample_rate!r}")
    return float(sample_rate)


def _to_tensor(value: ParamLike, *, name: str, owner: Optional[str], batch_text: str) -> Tensor:
    """``value`` as a real tensor (a tensor is returned as it is, autograd kept)."""
    prefix = _prefix(owner)
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise ValueError(f"{prefix}{name} must be a float or a {batch_text} tensor, got {type(value).__name__}")
    elif isinstance(value, (numbers.Real, np.ndarray, list, tuple)):
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{prefix}{name} must be a float or a {batch_text} tensor: {err}") from err
        if arr.dtype.kind not in "iuf":  # bool, complex, strings, ragged lists
            raise ValueError(f"{prefix}{name} must be real numbers, got an array of {arr.dtype}")
        t = torch.as_tensor(arr.astype(np.float64))
    else:
        raise ValueError(f"{prefix}{name} must be a float or a {batch_text} tensor, got {type(value).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{prefix}{name} must be real numbers, got a {t.dtype} tensor")
    if t.dim() > 1:
        raise ValueError(f"{prefix}{name} must be a float or a {batch_text} tensor, got shape {tuple(t.shape)}")
    return t


def common_batch(*, owner: Optional[str] = None, **values: ParamLike) -> int:
    """The batch size shared by parameters that are floats or ``(batch,)`` tensors: 1 when all
    are floats (or hold one value); ``ValueError`` when two tensors disagree."""
    sizes = {}
    for name, value in values.items():
        t = _to_tensor(value, name=name, owner=owner, batch_text="(batch,)")
        if t.dim() == 1 and t.shape[0] != 1:
            sizes[name] = t.shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{_prefix(owner)}parameters must share one batch size, got {sizes}")
    return next(iter(sizes.values()), 1)


def _bounds_text(minimum: Optional[float], maximum: Optional[float], open_min: bool, open_max: bool) -> str:
    if minimum is not None and maximum is not None:
        return f"lie in {'(' if open_min else '['}{minimum:g}, {maximum:g}{')' if open_max else ']'}"
    if minimum is not None:
        return f"be {'>' if open_min else '>='} {minimum:g}"
    return f"be {'<' if open_max else '<='} {maximum:g}"


def as_batch_param(
    value: ParamLike,
    *,
    name: str,
    batch: int,
    dtype: Optional[torch.dtype] = None,
    device: Union[torch.device, str, None] = None,
    minimum: Optional[float] = None,
    maximum: Optional[float] = None,
    open_min: bool = False,
    open_max: bool = False,
    finite: bool = True,
    ndim: int = 1,
    owner: Optional[str] = None,
    unit: str = "",
    note: str = "",
) -> Tensor:
    """A per-example parameter ("a float or a ``(batch,)`` tensor") as one tensor.

    Args:
        value: a real number, a 0-d tensor, or a ``(batch,)`` tensor (a ``(1,)`` tensor counts
            as one value); numpy arrays and lists are converted. Tensors keep their autograd
            graph (the result is a differentiable view or copy).
        name: the parameter's name, used in error messages. batch: the batch size.
        dtype: the result's dtype (default: a floating tensor's own, else torch's default
            dtype).
        device: the result's device (default: a tensor's own, else the CPU).
        minimum, maximum: bounds (closed unless ``open_min`` / ``open_max``). ``finite``:
            reject NaN and Inf. ``unit`` (e.g. ``"Hz"``) and ``note`` (a hint in parentheses)
            go into the bounds message; ``owner`` starts every message.
        ndim: the result's shape is ``(batch,) + (1,) * (ndim - 1)``, which broadcasts along
            the first axis of a tensor with ``ndim`` dimensions; ``ndim=0`` gives a 0-d tensor
            (``batch`` must then be 1).
    Returns:
        float tensor of shape ``(batch,) + (1,) * (ndim - 1)``.
    Raises:
        ValueError: a wrong type or shape, NaN/Inf, or a value out of bounds; the message names
            the parameter (and ``owner``).
    """
    prefix = _prefix(owner)
    t = _to_tensor(value, name=name, owner=owner, batch_text=f"({batch},)")
    if t.dim() == 1 and t.shape[0] not in (1, batch):
        raise ValueError(f"{prefix}{name} must be a float or a ({batch},) tensor, got shape {tuple(t.shape)}")
    if dtype is None:
        dtype = t.dtype if isinstance(value, Tensor) and t.is_floating_point() else torch.get_default_dtype()
    t = t.to(dtype=dtype, device=t.device if device is None and isinstance(value, Tensor) else device or "cpu")
    tests = [~torch.isfinite(t)] if finite else []
    if minimum is not None:
        tests.append((t <= minimum) if open_min else (t < minimum))
    if maximum is not None:
        tests.append((t >= maximum) if open_max else (t > maximum))
    if tests:
        bad = tests[0]
        for more in tests[1:]:
            bad = bad | more
        if bool(bad.any()):  # one device sync per parameter; the details only on failure
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{prefix}{name} contains NaN or Inf")
            rule = _bounds_text(minimum, maximum, open_min, open_max) + (f" {unit}" if unit else "")
            rule += f" ({note})" if note else ""
            lo, hi = float(t.min()), float(t.max())
            got = f"got {lo:.6g}" if lo == hi else f"got values in [{lo:.6g}, {hi:.6g}]"
            raise ValueError(f"{prefix}{name} must {rule}, {got}")
    t = t.reshape(-1).expand(batch) if t.dim() == 0 or t.shape[0] != batch else t
    if ndim == 0:
        if batch != 1:
            raise ValueError(f"{prefix}ndim=0 needs batch 1, got batch {batch}")
        return t.reshape(())
    return t.reshape((batch,) + (1,) * (ndim - 1))
