"""Losses and metrics: Mel loss, MSE_y, MR-STFT, MSE_q (book chapter "Audio loss vs parameter
loss", ``book/11_audio_vs_parameters``).

Audio metrics take ``y_hat`` and ``y`` of shape ``(batch, channels, samples)``. The channels are
averaged to mono first (the authors' audio is mono), then each example has its DC removed and is
divided by its RMS (:func:`beafx.functional.levels.rms_normalize`; silence stays silence). With
``reduction="none"`` they return one value per example, ``(batch,)``; ``"mean"`` is the mean of
those values (a 0-d tensor).

* :func:`mel_loss`: auraloss ``MelSTFTLoss`` with the authors' settings (44.1 kHz, FFT 4096, hop
  1024, Hann window 4096, 128 Slaney mels, log-magnitude L1 only): the mean over mels x frames of
  ``|log M(y_hat) - log M(y)|``, where ``M`` is the mel filterbank applied to the magnitude
  ``sqrt(max(|X|^2, 1e-8))`` (so every magnitude is at least 1e-4 and the log is finite).
* :func:`mse_y`: the mean squared error of the normalised waveforms.
* :func:`mrstft`: auraloss ``MultiResolutionSTFTLoss`` (FFT 256/1024/4096, hops 64/256/1024,
  windows = FFT sizes, spectral convergence + log magnitude), the authors' test-only metric.
  Computed per example (auraloss's spectral convergence is one ratio over the whole batch).
* :func:`mse_q`, :func:`params_loss` (= 10 x MSE_q, the authors' training loss),
  :func:`identifiable_mask` and :func:`per_param_errors` for the parameters.

Guards: an all-zero estimate (or target) gives a finite loss and finite gradients: the RMS
division is skipped for silence and auraloss floors every STFT power at 1e-8 before the square
root and the log, which also keeps the spectral convergence's denominator above zero.
"""
from __future__ import annotations

import contextlib
import functools
import io
import warnings
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .functional.checks import check_signal
from .functional.levels import rms_normalize

__all__ = [
    "LOSSES", "MEL", "MIN_SAMPLES", "MRSTFT", "UNIDENTIFIABLE", "identifiable_mask", "mel_loss", "mrstft",
    "mse_q", "mse_y", "params_loss", "per_param_errors", "training_loss",
]

#: The training losses :func:`training_loss` accepts.
LOSSES = ("mel", "params")

#: The authors' auraloss ``MelSTFTLoss`` settings (AUTHORS_CODE.md section 6).
MEL = dict(sample_rate=44100, fft_size=4096, hop_size=1024, win_length=4096, n_mels=128,
           w_sc=0.0, w_log_mag=1.0, w_lin_mag=0.0, w_phs=0.0, eps=1e-8)

#: The authors' auraloss ``MultiResolutionSTFTLoss`` settings (test-only metric).
MRSTFT = dict(fft_sizes=[256, 1024, 4096], hop_sizes=[64, 256, 1024], win_lengths=[256, 1024, 4096],
              w_sc=1.0, w_log_mag=1.0, w_lin_mag=0.0, w_phs=0.0)

#: The STFT's centred reflect padding (FFT 4096 -> 2048 samples) must be shorter than the signal.
MIN_SAMPLES = 4096 // 2 + 1

#: Last name components of parameters the level-normalised loss cannot see: the compressors'
#: make-up gain and the Chebyshev clipper's DC term (the only ``g0`` in ``beafx.params.TABLE``;
#: Taylor starts at ``g1``).
UNIDENTIFIABLE = ("makeup_db", "g0")

_REDUCTIONS = ("mean", "none")


@functools.lru_cache(maxsize=None)
def _auraloss(kind: str, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The auraloss module ``kind`` ("mel" or "mrstft"), built once per (device, dtype)."""
    # auraloss prints on a missing librosa and librosa may warn about empty mel filters;
    # neither happens with these settings, but a loss must never write to the console.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import auraloss

        if kind == "mel":
            module: nn.Module = auraloss.freq.MelSTFTLoss(reduction="none", **MEL)
            stfts = [module]
        else:
            module = auraloss.freq.MultiResolutionSTFTLoss(**MRSTFT)
            stfts = list(module.stft_losses)
    module = module.to(device=device, dtype=dtype)  # the mel filterbank is a buffer...
    for stft in stfts:  # ...but the window is a plain float32 attribute: rebuild it in `dtype`
        stft.window = torch.hann_window(stft.win_length, dtype=dtype, device=device)
    return module.eval()


def _reduce(per_example: Tensor, reduction: str) -> Tensor:
    return per_example.mean() if reduction == "mean" else per_example


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _prepare(y_hat: Tensor, y: Tensor, reduction: str, *, min_samples: int = 1) -> tuple[Tensor, Tensor]:
    """Validate a pair of signals; return both as mono, DC-free, RMS-normalised ``(batch, 1, samples)``."""
    _check_reduction(reduction)
    check_signal(y_hat, what="y_hat")
    check_signal(y, what="y")
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat and y must have the same shape; got {tuple(y_hat.shape)} and {tuple(y.shape)}")
    if y_hat.device != y.device:
        raise ValueError(f"y_hat and y must be on the same device; got {y_hat.device} and {y.device}")
    if y.shape[-1] < min_samples:
        raise ValueError(f"signals need at least {min_samples} samples for this metric; got {y.shape[-1]}")
    dtype = torch.promote_types(y_hat.dtype, y.dtype)
    return (rms_normalize(y_hat.to(dtype).mean(dim=1, keepdim=True)),
            rms_normalize(y.to(dtype).mean(dim=1, keepdim=True)))


def mel_loss(y_hat: Tensor, y: Tensor, *, reduction: str = "mean") -> Tensor:
    """The authors' Mel loss (log-mel magnitude L1, natural log), after mono, DC removal and RMS
    normalisation. ``(batch, channels, samples)`` x2 -> scalar or ``(batch,)``; at least
    :data:`MIN_SAMPLES` samples."""
    a, b = _prepare(y_hat, y, reduction, min_samples=MIN_SAMPLES)
    elementwise = _auraloss("mel", a.device, a.dtype)(a, b)  # (batch, mels, frames)
    return _reduce(elementwise.mean(dim=(1, 2)), reduction)


def mse_y(y_hat: Tensor, y: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean squared error of the mono, DC-free, RMS-normalised waveforms. Scalar or ``(batch,)``."""
    a, b = _prepare(y_hat, y, reduction)
    return _reduce((a - b).square().mean(dim=(1, 2)), reduction)


def mrstft(y_hat: Tensor, y: Tensor, *, reduction: str = "mean") -> Tensor:
    """The authors' multi-resolution STFT metric (spectral convergence + log-magnitude L1 at FFT
    256/1024/4096, averaged over resolutions), per example. Scalar or ``(batch,)``; at least
    :data:`MIN_SAMPLES` samples."""
    a, b = _prepare(y_hat, y, reduction, min_samples=MIN_SAMPLES)
    module = _auraloss("mrstft", a.device, a.dtype)
    # one call per example: auraloss's spectral convergence is a single ratio over the batch
    per_example = torch.stack([module(a[i : i + 1], b[i : i + 1]) for i in range(a.shape[0])])
    return _reduce(per_example, reduction)


def _check_q_pair(q_hat: Tensor, q: Tensor) -> None:
    for what, t in (("q_hat", q_hat), ("q", q)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{what} must be a torch.Tensor of shape (batch, num_params), got {type(t).__name__}")
        if t.dim() != 2 or 0 in t.shape:
            raise ValueError(f"{what} must have shape (batch, num_params); got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{what} must be a floating-point tensor, got {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{what} contains NaN or Inf")
    if q_hat.shape != q.shape:
        raise ValueError(f"q_hat and q must have the same shape; got {tuple(q_hat.shape)} and {tuple(q.shape)}")


def mse_q(q_hat: Tensor, q: Tensor, *, reduction: str = "mean", mask: Optional[Tensor] = None) -> Tensor:
    """MSE of normalised parameters ``(batch, num_params)``; ``mask`` ``(num_params,)`` (bool) keeps
    only the parameters where it is True (e.g. :func:`identifiable_mask`). ``"mean"`` averages over
    batch x kept parameters; ``"none"`` gives ``(batch,)``."""
    _check_reduction(reduction)
    _check_q_pair(q_hat, q)
    dtype = torch.promote_types(q_hat.dtype, q.dtype)
    err = (q_hat.to(dtype) - q.to(dtype)).square()
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (q.shape[1],):
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor of shape ({q.shape[1]},); got {shape}")
        if not bool(mask.any()):
            raise ValueError("mask keeps no parameter")
        err = err[:, mask.to(err.device)]
    return _reduce(err.mean(dim=1), reduction)


def params_loss(q_hat: Tensor, q: Tensor, *, reduction: str = "mean") -> Tensor:
    """The authors' parameter loss, ``10 * mse_q(q_hat, q)`` over all parameters."""
    return 10.0 * mse_q(q_hat, q, reduction=reduction)


def identifiable_mask(param_names: Sequence[str]) -> Tensor:
    """Bool ``(num_params,)``: False for the make-up gains (``...makeup_db``) and the Chebyshev
    ``g0`` (names as in ``chain.param_names``, e.g. ``"chebyshev.g0"``, or bare ``"g0"``)."""
    if isinstance(param_names, str) or not all(isinstance(n, str) for n in param_names):
        raise ValueError(f"param_names must be a list of strings, got {param_names!r}")
    return torch.tensor([n.rsplit(".", 1)[-1] not in UNIDENTIFIABLE for n in param_names], dtype=torch.bool)


def per_param_errors(q_hat: Tensor, q: Tensor, chain: nn.Module) -> dict[str, dict]:
    """Per parameter of ``chain`` (an Effect or Chain): ``{"mse_q", "mae", "unit"}``, with the
    mean absolute error in physical units (``chain.param_specs[i].to_physical``); q in [0, 1]."""
    _check_q_pair(q_hat, q)
    specs, names = tuple(chain.param_specs), list(chain.param_names)
    if q.shape[1] != len(specs):
        raise ValueError(f"q has {q.shape[1]} parameters but the chain has {len(specs)}")
    q_hat64, q64 = q_hat.detach().to("cpu", torch.float64), q.detach().to("cpu", torch.float64)
    out: dict[str, dict] = {}
    for i, (name, spec) in enumerate(zip(names, specs)):
        phys_err = spec.to_physical(q_hat64[:, i]) - spec.to_physical(q64[:, i])
        out[name] = {
            "mse_q": float((q_hat64[:, i] - q64[:, i]).square().mean()),
            "mae": float(phys_err.abs().mean()),
            "unit": spec.unit,
        }
    return out


def training_loss(name: str, *, y_hat: Optional[Tensor] = None, y: Optional[Tensor] = None,
                  q_hat: Optional[Tensor] = None, q: Optional[Tensor] = None) -> Tensor:
    """The training loss ``name`` (one of :data:`LOSSES`): ``"mel"`` -> :func:`mel_loss` of
    ``(y_hat, y)``; ``"params"`` -> :func:`params_loss` of ``(q_hat, q)`` (the audio is not needed)."""
    if name == "mel":
        if y_hat is None or y is None:
            raise ValueError("the 'mel' loss needs y_hat and y")
        return mel_loss(y_hat, y)
    if name == "params":
        if q_hat is None or q is None:
            raise ValueError("the 'params' loss needs q_hat and q")
        return params_loss(q_hat, q)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
