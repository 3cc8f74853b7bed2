"""Clipper effects (book chapter 06, ``book/05_clippers``): thin modules over
:mod:`beafx.functional.clip`.

- :class:`ParametricClipper` (synthesis and analysis): drive, offset, hardness (eq. 1-4).
- :class:`TaylorClipper` (analysis): 24 power-series coefficients on ``x^1..x^24``.
- :class:`ChebyshevClipper` (analysis): 24 coefficients on ``T_0..T_23``; ``g_0`` is a DC
  term, removed by any level normalisation, so it is unidentifiable.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..functional.clip import bounded_input, chebyshev_clipper, parametric_clipper, taylor_clipper
from ..params import TABLE
from .base import Effect


class ParametricClipper(Effect):
    """Tanh / cubic / hard blend with drive (dB), offset and hardness. 3 parameters."""

    param_specs = TABLE["ParametricClipper"]

    def process(self, x: Tensor, **params: Tensor) -> Tensor:
        return parametric_clipper(
            x, drive_db=params["drive_db"], offset=params["offset"], hardness=params["hardness"]
        )


class _PolynomialClipper(Effect):
    """Shared input handling: DC removed and kept within [-1, 1], coefficients stacked."""

    def coefficients(self, params: dict[str, Tensor]) -> Tensor:
        """``(batch, 24)`` coefficients in ``param_specs`` order."""
        return torch.stack([params[s.name] for s in self.param_specs], dim=1)


class TaylorClipper(_PolynomialClipper):
    """``y = sum_{k=1..24} g_k x^k`` on the DC-free input kept within [-1, 1]."""

    param_specs = TABLE["TaylorClipper"]

    def process(self, x: Tensor, **params: Tensor) -> Tensor:
        return taylor_clipper(bounded_input(x), coefficients=self.coefficients(params))


class ChebyshevClipper(_PolynomialClipper):
    """``y = sum_{k=0..23} g_k T_k(x)`` on the DC-free input kept within [-1, 1]."""

    param_specs = TABLE["ChebyshevClipper"]

    def process(self, x: Tensor, **params: Tensor) -> Tensor:
        return chebyshev_clipper(bounded_input(x), coefficients=self.coefficients(params))
