"""Audio effects as ``nn.Module``s over :mod:`beafx.functional` (book chapters 04-06).

Each effect is built as ``Cls(sample_rate=44100)`` and called as ``effect(x, q)`` with
``x`` of shape ``(batch, channels, samples)`` and ``q`` of shape ``(batch, num_params)``
in [0, 1]. :func:`make` builds chains by registry name.
"""
from __future__ import annotations

from .base import Effect, check_audio, check_q
from .chain import Chain
from .registry import REGISTRY, available, effect_class, make

__all__ = ["Effect", "Chain", "REGISTRY", "available", "effect_class", "make", "check_audio", "check_q"]

_LAZY = {
    "ParametricEQ": "eq", "GraphicEQ": "eq",
    "Compressor": "compressor", "SimpleCompressor": "compressor",
    "ProxyCompressor": "proxy", "HybridCompressor": "proxy",
    "ParametricClipper": "clipper", "TaylorClipper": "clipper", "ChebyshevClipper": "clipper",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
