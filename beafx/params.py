"""Effect parameters: normalised ``q`` in [0, 1] <-> physical values (book chapter 01).

The paper (eq. 8-9) maps every normalised parameter ``q`` to a physical value ``p``
either linearly, ``p = min + q (max - min)``, or logarithmically,
``p = min * exp(q log(max / min))``. :class:`ParamSpec` holds one such mapping and
its exact inverse; :data:`TABLE` is the canonical table of DESIGN.md as data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import Tensor

Number = Union[float, int]
Scale = Literal["lin", "log"]


def _as_tensor(value: Union[Tensor, Number]) -> Tensor:
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else value.double()
    return torch.as_tensor(value, dtype=torch.float64)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, physical range ``[minimum, maximum]``, scale and unit."""

    name: str
    minimum: float
    maximum: float
    scale: Scale = "lin"
    unit: str = ""

    def __post_init__(self) -> None:
        if self.scale not in ("lin", "log"):
            raise ValueError(f"ParamSpec {self.name!r}: scale must be 'lin' or 'log', got {self.scale!r}")
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum)) or self.maximum <= self.minimum:
            raise ValueError(
                f"ParamSpec {self.name!r}: need finite minimum < maximum, got [{self.minimum}, {self.maximum}]"
            )
        if self.scale == "log" and self.minimum <= 0:
            raise ValueError(f"ParamSpec {self.name!r}: a log scale needs minimum > 0, got {self.minimum}")

    def to_physical(self, q: Union[Tensor, Number]) -> Tensor:
        """Map normalised ``q`` (any shape, values in [0, 1]) to physical units (eq. 8-9)."""
        q = _as_tensor(q)
        check_unit_interval(q, what=f"q for {self.name!r}")
        return self.map_unchecked(q)

    def map_unchecked(self, q: Tensor) -> Tensor:
        """:meth:`to_physical` without validation, for callers that validated ``q`` already."""
        if self.scale == "lin":
            return self.minimum + q * (self.maximum - self.minimum)
        return self.minimum * torch.exp(q * math.log(self.maximum / self.minimum))

    def to_normalized(self, p: Union[Tensor, Number]) -> Tensor:
        """Exact inverse of :meth:`to_physical`; ``p`` must lie in ``[minimum, maximum]``."""
        p = _as_tensor(p)
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"{self.name!r}: physical value contains NaN or Inf")
        lo, hi = self.minimum, self.maximum
        # float32 round trips (to_physical of q = 1 on a log scale) land a hair outside
        slack = 1e-6 * (hi - lo)
        if bool(((p < lo - slack) | (p > hi + slack)).any()):
            raise ValueError(
                f"{self.name!r}: physical value outside [{lo}, {hi}] {self.unit}: "
                f"got min {float(p.min()):.6g}, max {float(p.max()):.6g}"
            )
        p = p.clamp(lo, hi)
        if self.scale == "lin":
            q = (p - lo) / (hi - lo)
        else:
            q = torch.log(p / lo) / math.log(hi / lo)
        return q.clamp(0.0, 1.0)


def check_unit_interval(q: Tensor, *, what: str = "q") -> None:
    """Raise ``ValueError`` if ``q`` has NaN/Inf or values outside [0, 1]."""
    if not bool(torch.isfinite(q).all()):
        raise ValueError(f"{what} contains NaN or Inf")
    if q.numel() and bool(((q < 0) | (q > 1)).any()):
        raise ValueError(
            f"{what} must lie in [0, 1] (normalised parameters); got values in "
            f"[{float(q.min()):.6g}, {float(q.max()):.6g}]"
        )


def _peq_specs() -> tuple[ParamSpec, ...]:
    bands = [
        ("low_shelf", 30.0, 160.0),
        ("peak1", 100.0, 2000.0),
        ("peak2", 500.0, 6000.0),
        ("peak3", 2000.0, 16000.0),
        ("high_shelf", 5000.0, 20000.0),
    ]
    specs: list[ParamSpec] = []
    for band, lo, hi in bands:
        specs += [
            ParamSpec(f"{band}.f0", lo, hi, "log", "Hz"),
            ParamSpec(f"{band}.gain_db", -15.0, 15.0, "lin", "dB"),
            ParamSpec(f"{band}.quality", 0.1, 2.0, "lin", ""),
        ]
    return tuple(specs)


GEQ_BAND_NAMES = ("ls31", "pk62", "pk125", "pk250", "pk500", "pk1k", "pk2k", "pk4k", "pk8k", "hs16k")

_COMPRESSOR = (
    ParamSpec("threshold_db", -40.0, 0.0, "lin", "dB"),
    ParamSpec("attack_ms", 1.0, 60.0, "log", "ms"),
    ParamSpec("release_ms", 10.0, 500.0, "log", "ms"),
    ParamSpec("ratio", 2.0, 10.0, "log", ":1"),
    ParamSpec("knee_db", 0.0, 12.0, "lin", "dB"),
    ParamSpec("makeup_db", 0.0, 20.0, "lin", "dB"),
)

#: The canonical parameter table of DESIGN.md (the authors' ranges and orders), keyed by
#: effect class name. Effects declare their own ``param_specs``; a test checks they equal this.
TABLE: dict[str, tuple[ParamSpec, ...]] = {
    "ParametricEQ": _peq_specs(),
    "GraphicEQ": tuple(ParamSpec(f"{b}.gain_db", -15.0, 15.0, "lin", "dB") for b in GEQ_BAND_NAMES),
    "Compressor": _COMPRESSOR,
    "SimpleCompressor": (
        ParamSpec("threshold_db", -40.0, 0.0, "lin", "dB"),
        ParamSpec("time_ms", 1.0, 500.0, "log", "ms"),
        ParamSpec("ratio", 2.0, 10.0, "log", ":1"),
        ParamSpec("knee_db", 0.0, 12.0, "lin", "dB"),
        ParamSpec("makeup_db", 0.0, 20.0, "lin", "dB"),
    ),
    "ProxyCompressor": _COMPRESSOR,
    "HybridCompressor": _COMPRESSOR,
    "ParametricClipper": (
        ParamSpec("drive_db", -10.0, 20.0, "lin", "dB"),
        ParamSpec("offset", 0.0, 1.0, "lin", ""),
        ParamSpec("hardness", 0.0, 2.0, "lin", ""),
    ),
    "TaylorClipper": tuple(ParamSpec(f"g{k}", -1.0, 1.0, "lin", "") for k in range(1, 25)),
    "ChebyshevClipper": tuple(ParamSpec(f"g{k}", -1.0, 1.0, "lin", "") for k in range(0, 24)),
}
