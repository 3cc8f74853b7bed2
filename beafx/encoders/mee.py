"""MEE, the raw-waveform residual encoder (book chapter 08, "Encoders", ``book/08_encoders``;
the authors' ``ResEncoder_1d``).

Twelve blocks (:data:`BLOCKS`). In each, ``conv1`` (c_in -> c_in, same length) + BatchNorm +
PReLU is added to the block input, then ``conv2`` (c_in -> c_out, valid, strided) + BatchNorm +
PReLU, with no skip around it. Global average pooling over time gives the embedding (2048 at
full width). ``width`` scales every channel count (the ``cpu`` profile's "MEE-s" uses 0.25).
"""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from .layers import SafeBatchNorm1d, as_waveform, check_width, kaiming_init_, require_length, scale_channels


class BlockSpec(NamedTuple):
    c_in: int
    c_out: int
    kernel: int
    stride: int


#: The authors' twelve blocks at full width (AUTHORS_CODE.md section 4).
BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(1, 16, 25, 4), BlockSpec(16, 32, 25, 4), BlockSpec(32, 64, 15, 2), BlockSpec(64, 128, 15, 2),
    BlockSpec(128, 256, 10, 2), BlockSpec(256, 256, 10, 2), BlockSpec(256, 512, 10, 2),
    BlockSpec(512, 512, 10, 2), BlockSpec(512, 1024, 5, 2), BlockSpec(1024, 1024, 5, 2),
    BlockSpec(1024, 2048, 5, 1), BlockSpec(2048, 2048, 5, 1),
)


def output_length(num_samples: int, spec: BlockSpec) -> int:
    """Length after one block (``conv2`` is valid and strided); <= 0 means too short."""
    return (num_samples - spec.kernel) // spec.stride + 1 if num_samples >= spec.kernel else 0


def min_samples() -> int:
    """Shortest input that leaves at least one frame after block 11 (54,489 samples); the
    channel width does not change it. Found by walking the blocks backwards."""
    needed = 1
    for spec in reversed(BLOCKS):
        needed = spec.kernel + (needed - 1) * spec.stride
    return needed


class ResidualBlock(nn.Module):
    """``x + PReLU(BN(conv1(x)))`` then ``PReLU(BN(conv2(.)))``; ``(batch, c_in, n)`` ->
    ``(batch, c_out, (n - k) // s + 1)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        left = (kernel - 1) // 2  # explicit "same" padding (PyTorch's split, no even-kernel warning)
        self.pad = nn.ConstantPad1d((left, kernel - 1 - left), 0.0)
        self.conv1 = nn.Conv1d(c_in, c_in, kernel)
        self.norm1 = SafeBatchNorm1d(c_in)
        self.act1 = nn.PReLU()
        self.conv2 = nn.Conv1d(c_in, c_out, kernel, stride=stride)
        self.norm2 = SafeBatchNorm1d(c_out)
        self.act2 = nn.PReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.act1(self.norm1(self.conv1(self.pad(x))))
        return self.act2(self.norm2(self.conv2(x)))


class MEE(nn.Module):
    """Waveform ``(batch, 1, samples)`` (or ``(batch, samples)``), at least
    :func:`min_samples` long -> embedding ``(batch, out_features)``."""

    def __init__(self, width: float = 1.0, *, sample_rate: int = 44100) -> None:
        super().__init__()
        self.width = check_width(width)
        self.sample_rate = sample_rate
        self.min_samples = min_samples()
        blocks = []
        for i, spec in enumerate(BLOCKS):
            c_in = 1 if i == 0 else scale_channels(spec.c_in, width)
            blocks.append(ResidualBlock(c_in, scale_channels(spec.c_out, width), spec.kernel, spec.stride))
        self.blocks = nn.Sequential(*blocks)
        self.out_features = scale_channels(BLOCKS[-1].c_out, width)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        x = as_waveform(x, "MEE")
        require_length(x.shape[-1], self.min_samples, self.sample_rate, "mee")
        return self.blocks(x).mean(dim=-1)
