"""The :class:`Effect` base class: validation, ``q`` -> physical mapping, ``forward(x, q)``.

Every effect is an ``nn.Module`` built as ``Cls(sample_rate=44100)``. ``forward(x, q)``
validates its input, maps ``q`` to physical units with ``param_specs`` and calls
``process(x, **physical)``, the effect's pure signal path (a thin wrapper over
``beafx.functional``).
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..functional.checks import check_sample_rate, check_signal
from ..params import ParamSpec, check_unit_interval


def check_audio(x: Tensor, *, what: str = "x", finite: bool = True) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite float32/float64 ``(batch, channels, samples)``
    tensor (see :func:`beafx.functional.checks.check_signal`)."""
    check_signal(x, what=what, finite=finite)


def check_q(q: Tensor, *, batch: int, num_params: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``q`` is ``(batch, num_params)``, finite and within [0, 1]."""
    if not isinstance(q, Tensor):
        raise ValueError(f"{owner}: q must be a torch.Tensor of shape (batch, {num_params}), got {type(q).__name__}")
    if q.dim() != 2:
        raise ValueError(f"{owner}: q must have shape (batch, num_params) = ({batch}, {num_params}); got {tuple(q.shape)}")
    if q.shape[1] != num_params:
        raise ValueError(f"{owner}: q has {q.shape[1]} parameters but this effect takes {num_params}")
    if q.shape[0] != batch:
        raise ValueError(f"{owner}: q has batch size {q.shape[0]} but x has batch size {batch}")
    check_unit_interval(q, what=f"{owner}: q")


class Effect(nn.Module):
    """Base class of all effects. Subclasses set ``param_specs`` and implement ``process``."""

    param_specs: ClassVar[tuple[ParamSpec, ...]] = ()

    def __init__(self, sample_rate: int = 44100) -> None:
        super().__init__()
        self.sample_rate = int(check_sample_rate(sample_rate, owner=type(self).__name__, whole=True))

    @classmethod
    def accepted_options(cls) -> set[str]:
        """Keyword options of the constructor besides ``sample_rate``."""
        params = inspect.signature(cls.__init__).parameters
        return {n for n, p in params.items() if n not in ("self", "sample_rate") and p.kind is not p.VAR_KEYWORD}

    @classmethod
    def build(cls, sample_rate: int = 44100, **options: Any) -> "Effect":
        """Construct with the subset of ``options`` this effect accepts (used by ``make``)."""
        return cls(sample_rate=sample_rate, **{k: v for k, v in options.items() if k in cls.accepted_options()})

    @property
    def num_params(self) -> int:
        return len(self.param_specs)

    @property
    def param_names(self) -> list[str]:
        return [s.name for s in self.param_specs]

    def physical(self, q: Tensor) -> dict[str, Tensor]:
        """Physical parameters as ``{name: (batch,) tensor}`` (units in ``param_specs``)."""
        if q.dim() != 2 or q.shape[1] != self.num_params:
            raise ValueError(
                f"{type(self).__name__}: q must have shape (batch, {self.num_params}); got {tuple(q.shape)}"
            )
        check_unit_interval(q, what=f"{type(self).__name__}: q")
        return {s.name: s.to_physical(q[:, i]) for i, s in enumerate(self.param_specs)}

    def forward(self, x: Tensor, q: Tensor) -> Tensor:
        """Apply the effect. ``x``: ``(batch, channels, samples)``; ``q``: ``(batch, num_params)``."""
        check_audio(x)
        check_q(q, batch=x.shape[0], num_params=self.num_params, owner=type(self).__name__)
        return self.apply_normalized(x, q.to(dtype=x.dtype, device=x.device))

    def apply_normalized(self, x: Tensor, q: Tensor) -> Tensor:
        """``forward`` without validation (used by :class:`Chain` after it has validated)."""
        params = {s.name: s.map_unchecked(q[:, i]) for i, s in enumerate(self.param_specs)}
        return self.process(x, **params)

    def process(self, x: Tensor, **params: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, num_params={self.num_params}"
