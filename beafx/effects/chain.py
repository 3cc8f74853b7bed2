"""A :class:`Chain` of effects with the paper's normalisation before each effect."""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

from torch import Tensor, nn

from ..functional.levels import normalize_0dbfs
from .base import Effect, check_audio, check_q


class Chain(Effect):
    """Effects in series. Before each effect the signal's DC is removed and it is
    peak-normalised to 0 dBFS (silence is left as silence); ``q`` is split across the
    effects in order. Nothing is normalised after the last effect."""

    def __init__(self, effects: Mapping[str, Effect]) -> None:
        if not effects:
            raise ValueError("a Chain needs at least one effect")
        rates = {e.sample_rate for e in effects.values()}
        if len(rates) != 1:
            raise ValueError(f"all effects of a Chain must share one sample rate, got {sorted(rates)}")
        super().__init__(sample_rate=rates.pop())
        self.effects = nn.ModuleDict(OrderedDict(effects))

    @property
    def param_specs(self):  # type: ignore[override]
        return tuple(s for e in self.effects.values() for s in e.param_specs)

    @property
    def param_names(self) -> list[str]:
        return [f"{key}.{s.name}" for key, e in self.effects.items() for s in e.param_specs]

    def split(self, q: Tensor) -> dict[str, Tensor]:
        """Split ``q`` ``(batch, num_params)`` into one block per effect, in order."""
        out, start = {}, 0
        for key, effect in self.effects.items():
            out[key] = q[:, start : start + effect.num_params]
            start += effect.num_params
        return out

    def physical(self, q: Tensor) -> dict[str, Tensor]:
        if q.dim() != 2 or q.shape[1] != self.num_params:
            raise ValueError(f"Chain: q must have shape (batch, {self.num_params}); got {tuple(q.shape)}")
        return {
            f"{key}.{name}": value
            for key, q_e in self.split(q).items()
            for name, value in self.effects[key].physical(q_e).items()
        }

    def forward(self, x: Tensor, q: Tensor) -> Tensor:
        check_audio(x)
        check_q(q, batch=x.shape[0], num_params=self.num_params, owner="Chain")
        return self.apply_normalized(x, q.to(dtype=x.dtype, device=x.device))

    def apply_normalized(self, x: Tensor, q: Tensor) -> Tensor:
        for key, q_e in self.split(q).items():
            x = self.effects[key].apply_normalized(normalize_0dbfs(x), q_e)
        return x

    def extra_repr(self) -> str:
        return f"{' + '.join(self.effects)}; num_params={self.num_params}"
