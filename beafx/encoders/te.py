"""TE, the timbre encoder: Pons-style multi-shape filters on the log-CQT (book chapter 08,
"Encoders", ``book/08_encoders``; the authors' ``MultiTimbreCQT_Encoder``).

Twelve Conv2d branches, :data:`BRANCHES` (85, 51 and 25 bins tall x 1, 3, 5 and 7 frames wide,
with 10, 6, 3 and 3 channels). Each branch: "same" padding in time only (pad value 1e-6),
valid in frequency, max-pool over the whole remaining frequency axis x 4 frames, mean over
time. The 66 branch channels are concatenated, then BatchNorm1d + PReLU.

``authors_channel_bug=True`` reproduces the authors' concatenation, whose channel offset never
advances: every branch writes channels ``0..c-1`` in turn, so only the last writers survive
(channels 0-2 from 25x7, 3-5 from 25x3, 6-9 from 25x1) and channels 10-65 are zero. The weights
are the same either way; only the outputs differ.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cqt import HOP, LOG_EPS, SAMPLE_RATE, LogCQT
from .cqt import min_samples as cqt_min_samples
from .layers import SafeBatchNorm1d, kaiming_init_, require_length


class Branch(NamedTuple):
    bins: int  # filter height (CQT bins)
    frames: int  # filter width (CQT frames)
    channels: int


#: The authors' twelve branches, in their order (the order decides which channels the bug keeps).
BRANCHES: tuple[Branch, ...] = tuple(
    Branch(bins, frames, channels)
    for bins in (85, 51, 25)
    for frames, channels in ((1, 10), (3, 6), (5, 3), (7, 3))
)
POOL_FRAMES = 4  # max-pool width in frames
PAD_VALUE = LOG_EPS  # the authors pad the log-CQT with eps (not with log(eps))


def min_samples(sample_rate: int = SAMPLE_RATE) -> int:
    """Shortest input: one pooled frame (4 CQT frames, 1,536 samples) and the CQT's reflect
    padding (16,385 samples at 44.1 kHz); the CQT decides."""
    return max((POOL_FRAMES - 1) * HOP, cqt_min_samples(sample_rate))


class TE(nn.Module):
    """Waveform ``(batch, 1, samples)`` -> embedding ``(batch, 66)``."""

    def __init__(self, authors_channel_bug: bool = False, *, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.authors_channel_bug = bool(authors_channel_bug)
        self.cqt = LogCQT(sample_rate)
        self.sample_rate = sample_rate
        self.min_samples = min_samples(sample_rate)
        self.convs = nn.ModuleList(nn.Conv2d(1, b.channels, (b.bins, b.frames)) for b in BRANCHES)
        self.out_features = sum(b.channels for b in BRANCHES)
        self.norm = SafeBatchNorm1d(self.out_features)
        self.act = nn.PReLU()
        kaiming_init_(self)

    def branch_outputs(self, spec: Tensor) -> list[Tensor]:
        """Log-CQT ``(batch, 1, 113, frames)`` -> one ``(batch, channels)`` tensor per branch."""
        outs = []
        for branch, conv in zip(BRANCHES, self.convs):
            left = branch.frames // 2
            padded = F.pad(spec, (left, branch.frames - 1 - left), value=PAD_VALUE)
            maps = conv(padded)  # (batch, c, 113 - bins + 1, frames)
            pooled = F.max_pool2d(maps, (maps.shape[2], POOL_FRAMES))
            outs.append(pooled.mean(dim=(2, 3)))
        return outs

    def features(self, spec: Tensor) -> Tensor:
        """The concatenated embedding before BatchNorm, ``(batch, 66)``."""
        outs = self.branch_outputs(spec)
        if not self.authors_channel_bug:
            return torch.cat(outs, dim=1)
        z = spec.new_zeros(spec.shape[0], self.out_features)
        for out in outs:  # every branch overwrites channels 0..c-1
            z = torch.cat([out, z[:, out.shape[1]:]], dim=1)
        return z

    def forward(self, x: Tensor) -> Tensor:
        require_length(x.shape[-1], self.min_samples, self.sample_rate, "te")
        return self.act(self.norm(self.features(self.cqt(x))))
