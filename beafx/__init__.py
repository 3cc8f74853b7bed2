"""beafx: blind estimation of audio effects with differentiable DSP.

A teaching and reproduction package for Peladeau & Peeters (ICASSP 2024). The package
mirrors the book: ``params`` (chapter 1), ``functional`` and ``effects`` (chapters 2-6),
``data``, ``encoders``, ``training``, ``evaluation``.
"""
__version__ = "0.1.0"
