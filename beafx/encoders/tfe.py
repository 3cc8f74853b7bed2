"""TFE, the time-frequency encoder: Pons' "musically motivated" time and frequency branches on
the log-CQT (book chapter 08, "Encoders", ``book/08_encoders``; the authors'
``TimeFrequencyCQT_Encoder``).

- Time branch: Conv2d(1 -> 64, 1 bin x 128 frames) + BN + PReLU, max over frequency,
  Conv1d(64 -> 64, 31) + BN + PReLU, mean over time -> 64.
- Frequency branch: Conv2d(1 -> 64, 37 bins x 1 frame) + BN + PReLU, max over time,
  Conv1d(64 -> 64, 113 - 37 + 1 = 77) + BN + PReLU, which spans the whole remaining frequency
  axis -> 64.
- Concatenation (time, then frequency) -> 128.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .cqt import HOP, N_BINS, SAMPLE_RATE, LogCQT
from .cqt import min_samples as cqt_min_samples
from .layers import SafeBatchNorm1d, kaiming_init_, require_length

CHANNELS = 64
TIME_FRAMES = 128  # time filter width in CQT frames (1.49 s at hop 512, 44.1 kHz); the authors' value
TIME_KERNEL = 31  # the time branch's Conv1d kernel, in frames; the authors' value
# Frequency filter height in CQT bins. The authors type 37 with no rule; it equals three octaves
# inclusive (3 x 12 + 1 bins), which is how we read it, but we keep their number as given.
FREQ_BINS = 37
FREQ_KERNEL = N_BINS - FREQ_BINS + 1  # the Conv1d spans every remaining bin (77): one output


def min_samples(sample_rate: int = SAMPLE_RATE) -> int:
    """Shortest input: the time branch needs ``128 + 31 - 1 = 158`` CQT frames, i.e.
    ``157 * 512 = 80,384`` samples (the CQT's own minimum is lower)."""
    frames = TIME_FRAMES + TIME_KERNEL - 1
    return max((frames - 1) * HOP, cqt_min_samples(sample_rate))


def _conv2d_block(kernel: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, CHANNELS, kernel), nn.BatchNorm2d(CHANNELS), nn.PReLU())


def _conv1d_block(kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(CHANNELS, CHANNELS, kernel), SafeBatchNorm1d(CHANNELS), nn.PReLU())


class TFE(nn.Module):
    """Waveform ``(batch, 1, samples)``, at least :func:`min_samples` long -> embedding
    ``(batch, 128)``."""

    def __init__(self, *, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.cqt = LogCQT(sample_rate)
        self.sample_rate = sample_rate
        self.min_samples = min_samples(sample_rate)
        self.time_conv = _conv2d_block((1, TIME_FRAMES))
        self.time_conv1d = _conv1d_block(TIME_KERNEL)
        self.freq_conv = _conv2d_block((FREQ_BINS, 1))
        self.freq_conv1d = _conv1d_block(FREQ_KERNEL)
        self.out_features = 2 * CHANNELS
        kaiming_init_(self)

    def time_branch(self, spec: Tensor) -> Tensor:
        """Log-CQT ``(batch, 1, 113, frames)`` -> ``(batch, 64)``."""
        maps = torch.amax(self.time_conv(spec), dim=2)  # (batch, 64, frames - 127)
        return self.time_conv1d(maps).mean(dim=-1)

    def frequency_branch(self, spec: Tensor) -> Tensor:
        """Log-CQT ``(batch, 1, 113, frames)`` -> ``(batch, 64)``."""
        maps = torch.amax(self.freq_conv(spec), dim=3)  # (batch, 64, 77)
        return self.freq_conv1d(maps).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        require_length(x.shape[-1], self.min_samples, self.sample_rate, "tfe")
        spec = self.cqt(x)
        return torch.cat([self.time_branch(spec), self.frequency_branch(spec)], dim=1)
