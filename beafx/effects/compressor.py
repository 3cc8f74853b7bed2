"""Compressor effects (book chapter "Compressors", ``book/04_compressors``).

- :class:`Compressor`: the paper's DSP compressor (Giannoulis et al.), 6 parameters
  ``threshold_db, attack_ms, release_ms, ratio, knee_db, makeup_db``; exact, compiled, and
  differentiable through a custom backward (:func:`beafx.functional.compressor.compressor`).
- :class:`SimpleCompressor`: the paper's simplified compressor, 5 parameters
  ``threshold_db, time_ms, ratio, knee_db, makeup_db``; one time constant, a linear one-pole
  smoother on the gain reduction in dB, plain differentiable torch.
  ``authors_time_constant_bug=True`` reproduces the authors' code (AUTHORS_CODE.md 2.4): the
  time constant is ``exp(threshold_db)`` ms (1 ms at a 0 dB threshold, below 5e-5 ms for
  thresholds under -10 dB, where ``alpha < 1e-200``: a memoryless waveshaper whose ``time_ms``
  is ignored) and the ratio is mapped linearly on [2, 10].

Channels are linked (one detector per example: ``max_c |x_c|``), so every channel gets the same
gain. Both classes offer ``gain_reduction_db(x, q)`` (gain over time) and
``static_curve(q, levels_db)`` (the static input/output curve) for plots.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..functional.compressor import (
    compressor, gain_computer, gain_reduction_db, simple_compressor, simple_gain_reduction_db,
)
from ..params import TABLE, ParamSpec, check_unit_interval
from .base import Effect, check_audio, check_q


def _check_audio_layout(x: Tensor) -> None:
    """:func:`check_audio` without the NaN/Inf pass: the compiled kernel detects those for free."""
    check_audio(x, finite=False)


class _StaticCurveMixin:
    def static_curve(self, q: Tensor, levels_db: Tensor) -> Tensor:
        """Static output level in dB (gain computer plus make-up) for input levels ``levels_db``
        ``(n,)``, per example of ``q`` ``(batch, num_params)``: returns ``(batch, n)``."""
        p = self.physical(q)  # type: ignore[attr-defined]
        levels = torch.as_tensor(levels_db, dtype=p["threshold_db"].dtype, device=p["threshold_db"].device)
        if levels.dim() != 1:
            raise ValueError(f"levels_db must be a 1-D tensor of levels in dB, got shape {tuple(levels.shape)}")
        grid = levels.expand(q.shape[0], -1)
        y = gain_computer(grid, threshold_db=p["threshold_db"], ratio=p["ratio"], knee_db=p["knee_db"])
        return y + p["makeup_db"][:, None]


class Compressor(_StaticCurveMixin, Effect):
    """The DSP compressor of the paper (Giannoulis et al.), exact and differentiable.

    ``forward(x, q)``: ``x`` ``(batch, channels, samples)``, ``q`` ``(batch, 6)`` in [0, 1]
    (order ``threshold_db, attack_ms, release_ms, ratio, knee_db, makeup_db``); returns the
    shape of ``x``. Runs on CPU with a compiled kernel; CUDA tensors are processed through a
    CPU round trip (see :mod:`beafx.functional.compressor`).
    """

    param_specs = TABLE["Compressor"]

    def forward(self, x: Tensor, q: Tensor) -> Tensor:
        _check_audio_layout(x)
        check_q(q, batch=x.shape[0], num_params=self.num_params, owner=type(self).__name__)
        return self.apply_normalized(x, q.to(dtype=x.dtype, device=x.device))

    def process(self, x: Tensor, *, threshold_db: Tensor, attack_ms: Tensor, release_ms: Tensor, ratio: Tensor,
                knee_db: Tensor, makeup_db: Tensor) -> Tensor:
        return compressor(x, threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms, release_ms=release_ms,
                            knee_db=knee_db, makeup_db=makeup_db, sample_rate=self.sample_rate)

    def gain_reduction_db(self, x: Tensor, q: Tensor) -> Tensor:
        """Smoothed gain reduction ``y_L`` in dB (>= 0), ``(batch, samples)``."""
        _check_audio_layout(x)
        p = self.physical(q.to(dtype=x.dtype, device=x.device))
        return gain_reduction_db(x, threshold_db=p["threshold_db"], ratio=p["ratio"], attack_ms=p["attack_ms"],
                                   release_ms=p["release_ms"], knee_db=p["knee_db"], sample_rate=self.sample_rate)


class SimpleCompressor(_StaticCurveMixin, Effect):
    """The simplified compressor: one time constant for attack and release, plain torch.

    ``forward(x, q)``: ``q`` ``(batch, 5)`` in [0, 1], order ``threshold_db, time_ms, ratio,
    knee_db, makeup_db``. With ``authors_time_constant_bug=True`` the instance's
    ``param_specs`` map the ratio linearly on [2, 10] (the authors' mapping) and the time
    constant becomes ``exp(threshold_db)`` ms, ignoring ``q[:, 1]``, as in their code. The
    detector floor is -80 dBFS as in :class:`Compressor` (the authors' simplified compressor
    used -120 dBFS; within the parameter ranges, levels below -46 dBFS get no gain reduction
    either way, so the outputs are the same).
    """

    param_specs = TABLE["SimpleCompressor"]

    def __init__(self, sample_rate: int = 44100, authors_time_constant_bug: bool = False) -> None:
        super().__init__(sample_rate=sample_rate)
        self.authors_time_constant_bug = bool(authors_time_constant_bug)
        if self.authors_time_constant_bug:
            # instance attribute: the authors mapped the ratio linearly (their yaml: 2..10, lin)
            self.param_specs = tuple(
                ParamSpec("ratio", 2.0, 10.0, "lin", ":1") if s.name == "ratio" else s
                for s in TABLE["SimpleCompressor"]
            )

    def _mapped(self, q: Tensor) -> dict[str, Tensor]:
        p = {s.name: s.map_unchecked(q[:, i]) for i, s in enumerate(self.param_specs)}
        if self.authors_time_constant_bug:
            p["time_ms"] = torch.exp(p["threshold_db"])  # the authors' q -> p bug (AUTHORS_CODE.md 2.4)
        return p

    def physical(self, q: Tensor) -> dict[str, Tensor]:
        """Physical parameters; with the authors' bug, ``time_ms`` is the value actually used."""
        if q.dim() != 2 or q.shape[1] != self.num_params:
            raise ValueError(f"{type(self).__name__}: q must have shape (batch, {self.num_params}); got {tuple(q.shape)}")
        check_unit_interval(q, what=f"{type(self).__name__}: q")
        return self._mapped(q if q.is_floating_point() else q.double())

    def apply_normalized(self, x: Tensor, q: Tensor) -> Tensor:
        return self.process(x, **self._mapped(q))

    def process(self, x: Tensor, *, threshold_db: Tensor, time_ms: Tensor, ratio: Tensor, knee_db: Tensor,
                makeup_db: Tensor) -> Tensor:
        return simple_compressor(x, threshold_db=threshold_db, ratio=ratio, time_ms=time_ms, knee_db=knee_db,
                                   makeup_db=makeup_db, sample_rate=self.sample_rate)

    def gain_reduction_db(self, x: Tensor, q: Tensor) -> Tensor:
        """Smoothed gain reduction in dB (>= 0), ``(batch, samples)``; differentiable."""
        _check_audio_layout(x)
        p = self.physical(q.to(dtype=x.dtype, device=x.device))
        return simple_gain_reduction_db(x, threshold_db=p["threshold_db"], ratio=p["ratio"], time_ms=p["time_ms"],
                                          knee_db=p["knee_db"], sample_rate=self.sample_rate)

    def extra_repr(self) -> str:
        bug = ", authors_time_constant_bug=True" if self.authors_time_constant_bug else ""
        return super().extra_repr() + bug
