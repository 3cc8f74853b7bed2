"""Encoders and the analysis network (book chapter 08, "Encoders", ``book/08_encoders``).

- :class:`LogCQT`: nnAudio's CQT with the authors' settings, ``log(|CQT| + 1e-6)``.
- :class:`MEE`: 12 residual 1-D blocks on the waveform (``width`` scales the channels).
- :class:`TE`: 12 Pons-style timbre filters on the log-CQT (``authors_channel_bug``).
- :class:`TFE`: Pons' time and frequency branches on the log-CQT.
- :class:`MLPHead`: 2048-1024-512-C with BatchNorm, PReLU and a sigmoid.
- :class:`AnalysisNetwork`: mono, peak normalisation, encoder, head.

Numbers from AUTHORS_CODE.md section 4; parameter counts with C = 15: MEE 88,226,422,
TE 2,785,561, TFE 3,355,734.
"""
from __future__ import annotations

from .cqt import LogCQT
from .head import MLPHead
from .layers import SafeBatchNorm1d
from .mee import MEE
from .network import ENCODERS, AnalysisNetwork, build_encoder, min_samples
from .te import TE
from .tfe import TFE

__all__ = [
    "ENCODERS", "AnalysisNetwork", "LogCQT", "MEE", "MLPHead", "SafeBatchNorm1d", "TE", "TFE", "build_encoder",
    "min_samples",
]
