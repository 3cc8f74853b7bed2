"""The log-CQT front end of the TE and TFE encoders (book chapter 08, "Encoders",
``book/08_encoders``).

nnAudio's ``CQT1992v2`` with the authors' settings: 113 bins from 32.70 Hz (C1) at 12 bins per
octave (top bin 21.09 kHz), hop 512, filter scale 1 (Q = 16.82), L1-normalised Hann kernels,
centred frames with reflect padding, magnitude. The kernels (width 32,768 at 44.1 kHz) are
buffers, not parameters. The encoders read ``log(|CQT| + 1e-6)``.

Speed: nnAudio convolves every bin with a 32,768-tap kernel, although a bin's kernel is only
``ceil(Q sr / f_k)`` taps long (22,680 at 32.7 Hz, 35 at 21 kHz) and zero elsewhere: 85 % of
the products are with zeros. :class:`LogCQT` takes nnAudio's kernels and convolves each octave
of bins with its kernels trimmed to their common non-zero support: the same sums without the
zero terms (equal to nnAudio's output up to float rounding; a test checks both against a
float64 reference), several times faster on a CPU (`beafx bench`; the encoders chapter measures it).
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
_MATMUL_WIDTH = 1024  # octaves with kernels up to this many taps use a matrix product (faster on CPU)


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
        cqt = CQT1992v2(
            sr=sample_rate, hop_length=HOP, fmin=FMIN, n_bins=N_BINS, bins_per_octave=BINS_PER_OCTAVE,
            filter_scale=FILTER_SCALE, norm=1, window="hann", center=True, pad_mode="reflect",
            trainable=False, output_format="Magnitude", verbose=False,
        )
    # The kernels follow from the settings: keep them out of state_dict (7.4 M values, 30 MB in
    # float32, would dwarf a TFE checkpoint); they still move with .to(device).
    for name in ("cqt_kernels_real", "cqt_kernels_imag", "lenghts"):
        cqt.register_buffer(name, getattr(cqt, name), persistent=False)
    return cqt


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
        self._groups = self._trim_kernels()

    def _trim_kernels(self) -> list[tuple[int, int, int]]:
        """Register one buffer per octave of bins: real and imaginary kernels (imaginary
        negated and both scaled by sqrt(length) as nnAudio's librosa normalisation does),
        trimmed to the octave's non-zero support. Returns ``(bins, offset, width)`` per group."""
        real = self.cqt.cqt_kernels_real[:, 0].to(torch.float64)
        imag = self.cqt.cqt_kernels_imag[:, 0].to(torch.float64)
        scale = torch.sqrt(self.cqt.lenghts.to(torch.float64)).view(-1, 1)
        nonzero = (real != 0) | (imag != 0)
        groups = []
        for i, start in enumerate(range(0, self.n_bins, BINS_PER_OCTAVE)):
            stop = min(start + BINS_PER_OCTAVE, self.n_bins)
            cols = torch.nonzero(nonzero[start:stop].any(dim=0)).flatten()
            first, last = int(cols.min()), int(cols.max()) + 1
            weights = torch.cat([real[start:stop, first:last], -imag[start:stop, first:last]]) * scale[start:stop].repeat(2, 1)
            self.register_buffer(f"kernels_{i}", weights.unsqueeze(1).to(torch.float32), persistent=False)
            groups.append((stop - start, first, last - first))
        return groups

    def _complex(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Real and imaginary CQT ``(batch, 113, frames)`` of a waveform ``(batch, [1,] samples)``."""
        half = self.kernel_width // 2
        padded = torch.nn.functional.pad(x.reshape(x.shape[0], 1, -1), (half, half), mode="reflect")
        frames = (padded.shape[-1] - self.kernel_width) // self.hop_length + 1
        reals, imags = [], []
        for i, (bins, offset, width) in enumerate(self._groups):
            span = padded[..., offset : offset + (frames - 1) * self.hop_length + width]
            kernels = getattr(self, f"kernels_{i}").to(x.dtype)
            if width <= _MATMUL_WIDTH:  # short kernels: frames x kernels as one matrix product
                out = torch.matmul(span[:, 0].unfold(-1, width, self.hop_length), kernels[:, 0].T).transpose(1, 2)
            else:
                out = torch.nn.functional.conv1d(span, kernels, stride=self.hop_length)
            reals.append(out[:, :bins])
            imags.append(out[:, bins:])
        return torch.cat(reals, dim=1), torch.cat(imags, dim=1)

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
        real, imag = self._complex(x)
        power = real.square() + imag.square()
        positive = power > 0
        return torch.where(positive, torch.sqrt(torch.where(positive, power, torch.ones_like(power))), 0.0)

    def forward(self, x: Tensor) -> Tensor:
        return torch.log(self.magnitude(x) + LOG_EPS).unsqueeze(1)
