"""Small building blocks shared by the encoders (book chapter 08, "Encoders",
``book/08_encoders``): a BatchNorm1d that accepts a batch of one, the authors' convolution
initialisation, channel scaling and the input-length check.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


class SafeBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also works in train mode when each channel holds one value.

    PyTorch raises for ``(1, C)`` (or ``(1, C, 1)``) in train mode because a batch variance
    of one value is undefined. Here such a batch is normalised with the running statistics,
    which are left unchanged (as in eval mode); any other batch behaves exactly like
    ``nn.BatchNorm1d``. Same parameters, buffers and ``state_dict`` keys.
    """

    def forward(self, x: Tensor) -> Tensor:
        values_per_channel = x.numel() // max(x.shape[1], 1) if x.dim() >= 2 else x.numel()
        if self.training and values_per_channel == 1 and self.running_mean is not None:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                training=False, momentum=0.0, eps=self.eps,
            )
        return super().forward(x)


def kaiming_init_(module: nn.Module) -> None:
    """The authors' encoder initialisation: every Conv1d/Conv2d weight Kaiming-normal
    (fan_in, leaky_relu gain with a = 0, i.e. sqrt(2)), every conv bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in", nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded half up, at least 1."""
    return max(1, int(math.floor(channels * width + 0.5)))


def check_width(width: float) -> float:
    """Raise ``ValueError`` unless ``width`` is a finite number > 0."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"mee_width must be a finite number > 0, got {width!r}")
    return float(width)


def require_length(num_samples: int, minimum: int, sample_rate: int, who: str) -> None:
    """Raise ``ValueError`` when ``num_samples < minimum``, in seconds and samples."""
    if num_samples < minimum:
        raise ValueError(
            f"input too short for the {who} encoder: {num_samples} samples "
            f"({num_samples / sample_rate:.3f} s at {sample_rate} Hz); it needs at least "
            f"{minimum} samples ({minimum / sample_rate:.3f} s)"
        )


def as_waveform(x: Tensor, who: str) -> Tensor:
    """``(batch, samples)`` or ``(batch, 1, samples)`` -> ``(batch, 1, samples)``."""
    if x.dim() == 2:
        return x.unsqueeze(1)
    if x.dim() == 3 and x.shape[1] == 1:
        return x
    raise ValueError(f"{who} expects a mono waveform (batch, samples) or (batch, 1, samples), got {tuple(x.shape)}")
