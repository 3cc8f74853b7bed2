"""Registry of effect names -> classes, and :func:`make` to build chains by name."""
from __future__ import annotations

import importlib
from typing import Any

from .base import Effect

#: Registry name -> "module:Class" (imported lazily so optional pieces never block the rest).
REGISTRY: dict[str, str] = {
    "peq": "beafx.effects.eq:ParametricEQ",
    "geq": "beafx.effects.eq:GraphicEQ",
    "compressor": "beafx.effects.compressor:Compressor",
    "simple_compressor": "beafx.effects.compressor:SimpleCompressor",
    "np_compressor": "beafx.effects.proxy:ProxyCompressor",
    "hybrid_compressor": "beafx.effects.proxy:HybridCompressor",
    "clipper": "beafx.effects.clipper:ParametricClipper",
    "taylor": "beafx.effects.clipper:TaylorClipper",
    "chebyshev": "beafx.effects.clipper:ChebyshevClipper",
}


def effect_class(name: str) -> type[Effect]:
    """The effect class registered as ``name`` (e.g. ``"peq"``)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown effect {name!r}; registered effects: {', '.join(REGISTRY)}")
    module_name, cls_name = REGISTRY[name].split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, cls_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"effect {name!r} ({REGISTRY[name]}) is not available in this version of beafx: {err}") from err


def available() -> list[str]:
    """Registry names whose implementation can be imported in this installation."""
    names = []
    for name in REGISTRY:
        try:
            effect_class(name)
        except ValueError:
            continue
        names.append(name)
    return names


def make(spec: str, sample_rate: int = 44100, **options: Any) -> "Chain":
    """Build a :class:`Chain` from names joined by ``+``, e.g. ``make("peq+compressor+clipper")``.

    ``options`` are passed to every effect whose constructor accepts them
    (e.g. ``synthesis=True`` selects the exact time-domain EQ).
    """
    from .chain import Chain

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"chain spec must be a non-empty string like 'peq+compressor+clipper', got {spec!r}")
    names = [n.strip() for n in spec.split("+")]
    if any(not n for n in names):
        raise ValueError(f"chain spec {spec!r} has an empty effect name")
    classes = [effect_class(name) for name in names]
    unused = set(options) - set().union(*(c.accepted_options() for c in classes))
    if unused:
        raise ValueError(f"option(s) {sorted(unused)} are accepted by no effect in {spec!r}")
    effects = {}
    for name, cls in zip(names, classes):
        key = name if name not in effects else f"{name}{len(effects)}"
        effects[key] = cls.build(sample_rate=sample_rate, **options)
    return Chain(effects)
