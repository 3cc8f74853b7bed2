"""The log-CQT front end of the TE and TFE encoders (book chapter 08, "Encoders",
``book/08_encoders``).

nnAudio's ``CQT1992v2`` with the authors' settings: 113 bins from 32.70 Hz (C1) at 12 bins per
octave (top bin 21.09 kHz), hop 512, filter scale 1 (Q = 16.82), L1-normalised Hann kernels,
centred frames with reflect padding, magnitude. The kernels (width 32,768 at 44.1 kHz) are
buffers, not parameters. The encoders read ``log(|CQT| + 1e-6)``.
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings

import torch
from torch import Tensor, nn

from .layers import as_waveform, require_length

SAMPLE_RATE = 44100
N_BINS = 113
BINS_PER_OCTAVE = 12
FMIN = 32.70  # Hz, C1 (nnAudio's default)
HOP = 512  # samples
FILTER_SCALE = 1.0
LOG_EPS = 1e-6  # log(|CQT| + eps), as the authors


def quality_factor() -> float:
    """The CQT's Q: ``filter_scale / (2 ** (1 / bins_per_octave) - 1)`` (16.82)."""
    return FILTER_SCALE / (2.0 ** (1.0 / BINS_PER_OCTAVE) - 1.0)


def top_frequency() -> float:
    """Centre frequency of the highest bin in Hz (21.09 kHz)."""
    return FMIN * 2.0 ** ((N_BINS - 1) / BINS_PER_OCTAVE)


def check_sample_rate(sample_rate: int) -> int:
    """Raise ``ValueError`` unless ``sample_rate`` is a positive integer whose Nyquist
    frequency lies above the top CQT bin."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if top_frequency() >= sample_rate / 2:
        raise ValueError(
            f"sample_rate {sample_rate} Hz is too low for the CQT: its top bin is at "
            f"{top_frequency():.0f} Hz, which needs a sample rate above {2 * top_frequency():.0f} Hz"
        )
    return sample_rate


def kernel_width(sample_rate: int = SAMPLE_RATE) -> int:
    """Width of nnAudio's kernels: the longest kernel ``ceil(Q sr / fmin)`` rounded up to a
    power of two (32,768 at 44.1 kHz)."""
    longest = math.ceil(quality_factor() * sample_rate / FMIN)
    return 2 ** math.ceil(math.log2(longest))


def num_frames(num_samples: int) -> int:
    """CQT frames for ``num_samples`` (centred frames: ``samples // hop + 1``; 862 for 10 s)."""
    return num_samples // HOP + 1


def min_samples(sample_rate: int = SAMPLE_RATE) -> int:
    """Shortest input the CQT accepts: reflect padding by half the kernel width needs a
    longer signal (16,385 samples at 44.1 kHz)."""
    return kernel_width(sample_rate) // 2 + 1


def _silent_cqt(sample_rate: int) -> nn.Module:
    """Build nnAudio's CQT1992v2 with nothing printed or warned."""
    from nnAudio.features import CQT1992v2

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CQT1992v2(
            sr=sample_rate, hop_length=HOP, fmin=FMIN, n_bins=N_BINS, bins_per_octave=BINS_PER_OCTAVE,
            filter_scale=FILTER_SCALE, norm=1, window="hann", center=True, pad_mode="reflect",
            trainable=False, output_format="Magnitude", verbose=False,
        )


class LogCQT(nn.Module):
    """Waveform ``(batch, samples)`` or ``(batch, 1, samples)`` -> log-CQT
    ``(batch, 1, 113, samples // 512 + 1)`` (natural log of the magnitude + 1e-6)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.sample_rate = check_sample_rate(sample_rate)
        self.cqt = _silent_cqt(sample_rate)
        self.n_bins = N_BINS
        self.hop_length = HOP
        self.kernel_width = int(self.cqt.kernel_width)
        self.min_samples = self.kernel_width // 2 + 1

    @property
    def frequencies(self) -> Tensor:
        """Centre frequency of each bin in Hz, ``(113,)`` float64."""
        return torch.as_tensor(self.cqt.frequencies, dtype=torch.float64)

    def magnitude(self, x: Tensor) -> Tensor:
        """Linear CQT magnitude ``(batch, 113, frames)``, equal to nnAudio's ``Magnitude``
        output; the square root is guarded so that silence has a zero (not NaN) gradient."""
        x = as_waveform(x, "LogCQT")
        require_length(x.shape[-1], self.min_samples, self.sample_rate, "CQT")
        x = x.to(self.cqt.cqt_kernels_real.dtype)
        parts = self.cqt(x, output_format="Complex")  # (batch, bins, frames, 2): real, imag
        power = parts.square().sum(dim=-1)
        positive = power > 0
        return torch.where(positive, torch.sqrt(torch.where(positive, power, torch.ones_like(power))), 0.0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.log(self.magnitude(x) + LOG_EPS).unsqueeze(1)
