"""Equalizers: the 5-band parametric EQ and the 10-band graphic EQ (book chapter 04,
"Equalizers", ``book/03_equalizers``).

Both are cascades of RBJ-cookbook biquads (:func:`beafx.functional.biquad`, Q form for the
shelves too, as the authors wrote them):

- :class:`ParametricEQ` (15 parameters): low shelf, three peaks, high shelf; per band ``f0``
  (Hz, log-mapped), ``gain_db`` and ``quality`` (the filter Q), ranges in
  :data:`beafx.params.TABLE`.
- :class:`GraphicEQ` (10 parameters): one ``gain_db`` per band; low shelf at 31.25 Hz, peaks
  at 62.5 Hz ... 8 kHz (octaves), high shelf at 16 kHz, each two octaves wide
  (:func:`beafx.functional.graphic_eq_quality`: Q 0.667 ... 0.508 for the peaks, 0.127 for
  the 16 kHz shelf at 44.1 kHz).

Two signal paths, chosen by the constructor's ``synthesis`` flag:

- ``synthesis=False`` (default, differentiable): the product of the band responses, evaluated
  analytically on the FFT grid, applied with one FFT pair per signal
  (:func:`beafx.functional.fft_filter`); max|y - y_exact| / max|y_exact| <= 1e-3.
- ``synthesis=True`` (exact, no gradients): scipy ``sosfilt`` in float64
  (:func:`beafx.functional.iir_filter`), for making training targets. It raises if asked for
  gradients.

The authors normalised (DC removal + peak) between bands; applying the product of the bands
instead gives the same signal after RMS normalisation when only peak normalisation sits
between bands (to 1e-9), and a nearly equal one with their DC removal, which adds a small
filtered step at the onset (about 1e-4 RMS; ``tests/test_eq.py`` measures both).
For plots and widgets: :meth:`~_BiquadEQ.magnitude_response` (total, dB) and
:meth:`~_BiquadEQ.band_magnitude_responses` (one curve per band, dB).
"""
from __future__ import annotations

from typing import ClassVar, Sequence, Union

import torch
from torch import Tensor

from ..functional.filters import biquad, cascade_response, fft_filter, graphic_eq_quality, iir_filter
from ..functional.levels import amplitude_to_db
from ..params import GEQ_BAND_NAMES, TABLE, ParamSpec
from .base import Effect

FreqsLike = Union[Tensor, Sequence[float]]


class _BiquadEQ(Effect):
    """A cascade of biquad bands. Subclasses set ``band_names`` and ``band_kinds`` and implement
    :meth:`band_settings` (physical parameters -> per-band ``f0``, ``gain_db``, ``quality``)."""

    band_names: ClassVar[tuple[str, ...]] = ()
    band_kinds: ClassVar[tuple[str, ...]] = ()
    #: Highest centre frequency any ``q`` can ask for (must stay below Nyquist).
    max_f0_hz: ClassVar[float] = 0.0

    def __init__(self, sample_rate: int = 44100, *, synthesis: bool = False) -> None:
        super().__init__(sample_rate=sample_rate)
        if self.sample_rate / 2 <= self.max_f0_hz:
            raise ValueError(
                f"{type(self).__name__}: sample_rate={self.sample_rate} puts Nyquist at or below its highest "
                f"band frequency ({self.max_f0_hz:g} Hz); use a sample rate above {2 * self.max_f0_hz:g} Hz"
            )
        self.synthesis = bool(synthesis)

    def band_settings(self, params: dict[str, Tensor]) -> list[dict[str, Union[Tensor, float]]]:
        """Per band ``{"f0", "gain_db", "quality"}`` (floats or ``(batch,)`` tensors)."""
        raise NotImplementedError

    def coefficients_from_physical(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Physical parameters -> ``(b, a)``, each ``(batch, bands, 3)`` float64, ``a0 = 1``."""
        pairs = [
            biquad(kind=kind, sample_rate=self.sample_rate, **setting)
            for kind, setting in zip(self.band_kinds, self.band_settings(params))
        ]
        batch = max(b.shape[0] for b, _ in pairs)
        b = torch.stack([b.expand(batch, 3) for b, _ in pairs], dim=1)
        a = torch.stack([a.expand(batch, 3) for _, a in pairs], dim=1)
        return b, a

    def coefficients(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """``q`` ``(batch, num_params)`` in [0, 1] -> ``(b, a)``, each ``(batch, bands, 3)`` float64."""
        return self.coefficients_from_physical(self.physical(q))

    def process(self, x: Tensor, **params: Tensor) -> Tensor:
        """``x`` ``(batch, channels, samples)``; ``params`` name -> ``(batch,)`` physical values."""
        b, a = self.coefficients_from_physical(params)
        if not self.synthesis:
            return fft_filter(x, b, a)
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params.values())):
            raise ValueError(
                f"{type(self).__name__}(synthesis=True) is the exact scipy path and has no gradients; "
                "use synthesis=False to differentiate, or run under torch.no_grad()"
            )
        return iir_filter(x, b, a)

    # ------------------------------------------------------------------ responses for plots

    def _omega(self, freqs_hz: FreqsLike) -> Tensor:
        freqs = torch.as_tensor(freqs_hz, dtype=torch.float64)
        if freqs.dim() != 1 or freqs.numel() == 0:
            raise ValueError(f"freqs_hz must be a non-empty 1-D sequence of frequencies, got shape {tuple(freqs.shape)}")
        nyquist = self.sample_rate / 2
        if not bool(torch.isfinite(freqs).all()) or bool(((freqs < 0) | (freqs > nyquist)).any()):
            raise ValueError(f"freqs_hz must be finite and lie in [0, {nyquist:g}] Hz (Nyquist)")
        return 2 * torch.pi * freqs / self.sample_rate

    def frequency_response(self, q: Tensor, freqs_hz: FreqsLike) -> Tensor:
        """Complex response of the whole EQ: ``q`` ``(batch, num_params)``, ``freqs_hz``
        ``(n,)`` in Hz -> complex128 ``(batch, n)``; differentiable in ``q``."""
        b, a = self.coefficients(q)
        return cascade_response(b, a, omega=self._omega(freqs_hz).to(b.device), dtype=torch.float64)

    def magnitude_response(self, q: Tensor, freqs_hz: FreqsLike) -> Tensor:
        """Gain of the whole EQ in dB (floored at -120 dB): ``(batch, n)`` float64."""
        return amplitude_to_db(self.frequency_response(q, freqs_hz).abs())

    def band_magnitude_responses(self, q: Tensor, freqs_hz: FreqsLike) -> Tensor:
        """Gain of each band in dB: ``(batch, bands, n)`` float64 (bands in ``band_names``
        order; they add up to :meth:`magnitude_response`)."""
        b, a = self.coefficients(q)
        omega = self._omega(freqs_hz).to(b.device)
        response = cascade_response(b[..., None, :], a[..., None, :], omega=omega, dtype=torch.float64)
        return amplitude_to_db(response.abs())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, synthesis={self.synthesis}"


class ParametricEQ(_BiquadEQ):
    """Five-band parametric EQ: low shelf, three peaks, high shelf (15 parameters, per band
    ``f0`` Hz, ``gain_db`` dB, ``quality`` = filter Q; order and ranges as
    ``TABLE["ParametricEQ"]``). ``ParametricEQ(sample_rate=44100, synthesis=False)``."""

    param_specs: ClassVar[tuple[ParamSpec, ...]] = TABLE["ParametricEQ"]
    band_names = ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")
    band_kinds = ("lowshelf", "peak", "peak", "peak", "highshelf")
    max_f0_hz = max(s.maximum for s in TABLE["ParametricEQ"] if s.name.endswith(".f0"))

    def band_settings(self, params: dict[str, Tensor]) -> list[dict[str, Union[Tensor, float]]]:
        return [
            {key: params[f"{band}.{key}"] for key in ("f0", "gain_db", "quality")} for band in self.band_names
        ]


class GraphicEQ(_BiquadEQ):
    """Ten-band graphic EQ: low shelf 31.25 Hz, peaks 62.5 Hz ... 8 kHz, high shelf 16 kHz,
    two octaves wide (fixed Q from :func:`~beafx.functional.graphic_eq_quality`); one
    ``gain_db`` per band (``TABLE["GraphicEQ"]``). ``GraphicEQ(sample_rate=44100, synthesis=False)``.

    ``centers_hz`` and ``qualities`` hold the fixed band frequencies and Qs."""

    param_specs: ClassVar[tuple[ParamSpec, ...]] = TABLE["GraphicEQ"]
    band_names = GEQ_BAND_NAMES
    band_kinds = ("lowshelf",) + ("peak",) * 8 + ("highshelf",)
    centers_hz: tuple[float, ...] = tuple(31.25 * 2.0**k for k in range(10))
    octaves: ClassVar[float] = 2.0
    max_f0_hz = 16000.0

    def __init__(self, sample_rate: int = 44100, *, synthesis: bool = False) -> None:
        super().__init__(sample_rate=sample_rate, synthesis=synthesis)
        q = graphic_eq_quality(torch.tensor(self.centers_hz), sample_rate=self.sample_rate, octaves=self.octaves)
        self.qualities: tuple[float, ...] = tuple(q.tolist())

    def band_settings(self, params: dict[str, Tensor]) -> list[dict[str, Union[Tensor, float]]]:
        return [
            {"f0": f0, "gain_db": params[f"{band}.gain_db"], "quality": quality}
            for band, f0, quality in zip(self.band_names, self.centers_hz, self.qualities)
        ]


__all__ = ["ParametricEQ", "GraphicEQ"]
