"""The analysis network ``y -> q_hat`` and the encoder registry (book chapter 08, "Encoders",
``book/08_encoders``).

:class:`AnalysisNetwork` averages the channels to mono, peak-normalises the clip
(:func:`beafx.functional.levels.peak_normalize`), runs an encoder (:data:`ENCODERS`) and the
:class:`~beafx.encoders.head.MLPHead`.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..functional.checks import check_signal
from ..functional.levels import peak_normalize
from . import mee, te, tfe
from .cqt import SAMPLE_RATE, check_sample_rate
from .head import MLPHead
from .layers import check_width, require_length
from .mee import MEE
from .te import TE
from .tfe import TFE

#: Encoder names: raw-waveform residual (MEE), timbre (TE), time-frequency (TFE).
ENCODERS: tuple[str, ...] = ("mee", "te", "tfe")


def _check_name(name: str) -> str:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; encoders: {', '.join(ENCODERS)}")
    return name


def build_encoder(
    name: str, *, mee_width: float = 1.0, authors_channel_bug: bool = False, sample_rate: int = SAMPLE_RATE
) -> nn.Module:
    """The encoder ``name`` (waveform ``(batch, 1, samples)`` -> ``(batch, .out_features)``).

    ``mee_width`` scales the MEE's channels and is ignored by TE and TFE (profiles pass it to
    every encoder). ``authors_channel_bug`` only exists for TE.
    """
    _check_name(name)
    check_width(mee_width)
    check_sample_rate(sample_rate)
    if authors_channel_bug and name != "te":
        raise ValueError(f"authors_channel_bug only applies to the te encoder, not {name!r}")
    if name == "mee":
        return MEE(mee_width, sample_rate=sample_rate)
    if name == "te":
        return TE(authors_channel_bug, sample_rate=sample_rate)
    return TFE(sample_rate=sample_rate)


def min_samples(name: str, *, mee_width: float = 1.0, sample_rate: int = SAMPLE_RATE) -> int:
    """Shortest input in samples the encoder ``name`` accepts (MEE 54,489; TE 16,385;
    TFE 80,384 at 44.1 kHz). The MEE's width does not change it."""
    _check_name(name)
    check_width(mee_width)
    check_sample_rate(sample_rate)
    if name == "mee":
        return mee.min_samples()
    if name == "te":
        return te.min_samples(sample_rate)
    return tfe.min_samples(sample_rate)


class AnalysisNetwork(nn.Module):
    """``y`` ``(batch, channels, samples)`` -> ``q_hat`` ``(batch, num_params)`` in (0, 1).

    Works in train mode with a batch of one (the BatchNorms then use their running
    statistics). Inputs shorter than :func:`min_samples`, of the wrong shape or with NaN/Inf
    raise ``ValueError``.
    """

    def __init__(
        self,
        encoder: str,
        num_params: int,
        *,
        mee_width: float = 1.0,
        authors_channel_bug: bool = False,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__()
        self.encoder_name = encoder
        self.num_params = num_params
        self.sample_rate = sample_rate
        self.encoder = build_encoder(
            encoder, mee_width=mee_width, authors_channel_bug=authors_channel_bug, sample_rate=sample_rate
        )
        self.head = MLPHead(self.encoder.out_features, num_params)
        self.min_samples = min_samples(encoder, mee_width=mee_width, sample_rate=sample_rate)

    def forward(self, y: Tensor) -> Tensor:
        check_signal(y, what="y")
        require_length(y.shape[-1], self.min_samples, self.sample_rate, self.encoder_name)
        dtype = self.head.layers[0].weight.dtype
        mono = peak_normalize(y.mean(dim=1, keepdim=True).to(dtype))
        return self.head(self.encoder(mono))
