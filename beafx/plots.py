"""The figures, tables and players the book and :mod:`beafx.widgets` share.

Everything here is measured on the real effects: curves come from running an effect on
probe signals (an impulse, a ramp, steady tones), spectrograms from the processed audio.
Players embed MP3 (small enough for a web page, plays in every browser).
"""
from __future__ import annotations

import base64
import html
import io
import math
from functools import lru_cache
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .effects.base import Effect
from .functional.levels import normalize_0dbfs

ArrayLike = Union[Tensor, np.ndarray]

#: Spectrogram settings: those of the paper's Mel loss (4096-point FFT, hop 1024, 128 mels).
N_FFT, HOP, N_MELS, F_MIN = 4096, 1024, 128, 20.0
#: Colour range of every spectrogram, in dB (fixed, so that spectrograms compare).
SPEC_DB_RANGE = (-100.0, -10.0)
MEL_TICKS_HZ = (100, 500, 1000, 2000, 5000, 10000, 20000)

#: What kind of curve describes each registry effect.
KIND: dict[str, str] = {
    "peq": "eq", "geq": "eq",
    "compressor": "compressor", "simple_compressor": "compressor",
    "np_compressor": "compressor", "hybrid_compressor": "compressor",
    "clipper": "clipper", "taylor": "clipper", "chebyshev": "clipper",
}

#: Table 1 of the paper: (effect, implementation, used for synthesis, used for analysis).
TABLE1: dict[str, tuple[str, str, bool, bool]] = {
    "peq": ("Equalizer", "Parametric", True, True),
    "geq": ("Equalizer", "Graphic", False, True),
    "compressor": ("Compressor", "DSP", True, False),
    "simple_compressor": ("Compressor", "Simplified DSP", False, True),
    "np_compressor": ("Compressor", "NP (neural proxy)", False, True),
    "hybrid_compressor": ("Compressor", "Hybrid NP", False, True),
    "clipper": ("Clipper", "Parametric", True, True),
    "taylor": ("Clipper", "Taylor", False, True),
    "chebyshev": ("Clipper", "Chebyshev", False, True),
}


# --------------------------------------------------------------------------- signals
def as_numpy(x: ArrayLike) -> np.ndarray:
    """``(channels, samples)`` float32 numpy array from a tensor/array of shape
    ``(samples,)``, ``(channels, samples)`` or ``(1, channels, samples)``."""
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.ndim == 3:
        if a.shape[0] != 1:
            raise ValueError(f"expected one example, got a batch of {a.shape[0]} (shape {a.shape})")
        a = a[0]
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[-1] == 0:
        raise ValueError(f"expected audio of shape (samples,), (channels, samples) or (1, channels, samples); got {a.shape}")
    return a.astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def _mel_filterbank(sample_rate: int) -> Tensor:
    import torchaudio.functional as AF

    return AF.melscale_fbanks(N_FFT // 2 + 1, F_MIN, sample_rate / 2, N_MELS, sample_rate)


def mel_spectrogram_db(x: ArrayLike, sample_rate: int = 44100) -> np.ndarray:
    """``(128, frames)`` mel power spectrogram in dB of the channel mean; a full-scale
    sine reads about 0 dB in its band."""
    a = torch.from_numpy(as_numpy(x).mean(axis=0))
    if a.numel() < N_FFT:
        a = torch.nn.functional.pad(a, (0, N_FFT - a.numel()))
    window = torch.hann_window(N_FFT)
    spec = torch.stft(a, N_FFT, HOP, window=window, return_complex=True)
    power = spec.abs().square() * (4.0 / window.sum().square())
    mel = _mel_filterbank(sample_rate).T @ power
    return (10.0 * torch.log10(mel.clamp_min(1e-12))).numpy()


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=float) / 700.0)


def mel_axis_ticks(sample_rate: int = 44100) -> tuple[list[float], list[str]]:
    """Tick positions (in mel-band index units) and labels for :func:`mel_spectrogram_db`."""
    lo, hi = _hz_to_mel(F_MIN), _hz_to_mel(sample_rate / 2)
    ticks, labels = [], []
    for f in MEL_TICKS_HZ:
        if F_MIN <= f <= sample_rate / 2:
            ticks.append(float((_hz_to_mel(f) - lo) / (hi - lo) * (N_MELS - 1)))
            labels.append(f"{f // 1000}k" if f >= 1000 else str(f))
    return ticks, labels


def plot_spectrogram(ax, x: ArrayLike, sample_rate: int = 44100, *, title: str = "", colorbar: bool = False):
    """Draw the mel spectrogram of ``x`` on ``ax``; returns the image artist."""
    db = mel_spectrogram_db(x, sample_rate)
    seconds = as_numpy(x).shape[-1] / sample_rate
    im = ax.imshow(
        db, origin="lower", aspect="auto", cmap="magma", vmin=SPEC_DB_RANGE[0], vmax=SPEC_DB_RANGE[1],
        extent=(0.0, seconds, -0.5, N_MELS - 0.5), interpolation="nearest",
    )
    ticks, labels = mel_axis_ticks(sample_rate)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, mel scale)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="dB")
    return im


# --------------------------------------------------------------------------- audio players
def encode_mp3(x: ArrayLike, sample_rate: int = 44100, *, normalize: bool = True) -> bytes:
    """MP3 bytes of ``x``. ``normalize`` scales the peak to -0.5 dBFS (players compare
    timbre, not level); without it, samples beyond +-1 are clipped."""
    import soundfile as sf

    a = as_numpy(x)
    if a.shape[0] > 2:
        raise ValueError(f"MP3 holds at most 2 channels, got {a.shape[0]}")
    if not np.isfinite(a).all():
        raise ValueError("audio contains NaN or Inf")
    a = a - a.mean(axis=1, keepdims=True)
    peak = float(np.abs(a).max())
    if normalize and peak > 1e-8:
        a = a * (10 ** (-0.5 / 20) / peak)
    buf = io.BytesIO()
    sf.write(buf, np.clip(a, -1.0, 1.0).T, int(sample_rate), format="MP3", subtype="MPEG_LAYER_III")
    return buf.getvalue()


def audio_html(x: ArrayLike, sample_rate: int = 44100, *, normalize: bool = True) -> str:
    """An ``<audio>`` element with the MP3 embedded as a data URI."""
    data = base64.b64encode(encode_mp3(x, sample_rate, normalize=normalize)).decode("ascii")
    return f'<audio controls preload="metadata" src="data:audio/mpeg;base64,{data}"></audio>'


def player(x: ArrayLike, sample_rate: int = 44100, *, normalize: bool = True):
    """An ``IPython.display.Audio`` player holding MP3 (much smaller than the default WAV)."""
    from IPython.display import Audio

    audio = Audio(data=encode_mp3(x, sample_rate, normalize=normalize))
    audio.mimetype = "audio/mpeg"
    return audio


def players(items: Mapping[str, ArrayLike], sample_rate: int = 44100, *, notes: Optional[Mapping[str, str]] = None,
            normalize: bool = True):
    """A table of labelled players (``IPython.display.HTML``): one row per item."""
    from IPython.display import HTML

    rows = []
    for label, x in items.items():
        note = html.escape(notes.get(label, "")) if notes else ""
        rows.append(
            f"<tr><td><b>{html.escape(label)}</b></td><td>{audio_html(x, sample_rate, normalize=normalize)}</td>"
            + (f"<td>{note}</td>" if notes else "")
            + "</tr>"
        )
    return HTML(f'<table class="table beafx-players"><tbody>{"".join(rows)}</tbody></table>')


# --------------------------------------------------------------------------- effect curves
def _q(effect: Effect, q: Tensor, dtype: torch.dtype) -> Tensor:
    q = torch.as_tensor(q, dtype=dtype)
    if q.dim() == 1:
        q = q.unsqueeze(0)
    if q.dim() != 2 or q.shape[1] != effect.num_params:
        raise ValueError(f"{type(effect).__name__}: q must have shape (batch, {effect.num_params}); got {tuple(q.shape)}")
    return q


@torch.no_grad()
def magnitude_response(effect: Effect, q: Tensor, *, points: int = 600,
                       n_fft: int = 1 << 15) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz, log-spaced from 20 Hz to Nyquist) and the ``(batch, points)``
    magnitude response (dB) of a linear effect: the EQ's analytic response when it has one
    (``effect.magnitude_response``), else the spectrum of its impulse response."""
    q = _q(effect, q, torch.float64)
    freqs = np.geomspace(20.0, effect.sample_rate / 2, points)
    if hasattr(effect, "magnitude_response"):
        return freqs, effect.magnitude_response(q, torch.from_numpy(freqs)).numpy()
    impulse = torch.zeros(q.shape[0], 1, n_fft, dtype=torch.float64)
    impulse[..., 0] = 1.0
    h = effect(impulse, q)[:, 0]
    mag = torch.fft.rfft(h, n=n_fft).abs().clamp_min(1e-12)
    grid = np.fft.rfftfreq(n_fft, 1.0 / effect.sample_rate)
    db = (20.0 * torch.log10(mag)).numpy()
    return freqs, np.stack([np.interp(freqs, grid, row) for row in db])


@torch.no_grad()
def transfer_curve(effect: Effect, q: Tensor, *, n: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Input ramp on [-1, 1] and the ``(batch, n)`` output of a memoryless effect (a clipper)."""
    q = _q(effect, q, torch.float64)
    ramp = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    y = effect(ramp.expand(q.shape[0], 1, n).contiguous(), q)[:, 0]
    return ramp.numpy(), y.numpy()


@torch.no_grad()
def static_curve(effect: Effect, q: Tensor, *, levels_db: Optional[Sequence[float]] = None,
                 seconds: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Steady-state input level vs output level (dB) of a compressor for one setting ``q``:
    the effect's own ``static_curve`` (gain computer plus make-up) when it has one, else
    measured with constant-level inputs long enough for its detector to settle."""
    q = _q(effect, q, torch.float64)
    if q.shape[0] != 1:
        raise ValueError("static_curve takes one parameter setting (q of shape (1, C))")
    lv = torch.as_tensor(np.arange(-60.0, 0.01, 0.5) if levels_db is None else levels_db, dtype=torch.float64)
    if hasattr(effect, "static_curve"):
        return lv.numpy(), effect.static_curve(q, lv)[0].numpy()
    n = int(seconds * effect.sample_rate)
    x = (10.0 ** (lv / 20.0)).view(-1, 1, 1).expand(-1, 1, n).contiguous()
    y = effect(x, q.expand(len(lv), -1).contiguous())
    out = y[:, 0, -64:].abs().mean(dim=-1).clamp_min(1e-12)
    return lv.numpy(), (20.0 * torch.log10(out)).numpy()


@torch.no_grad()
def gain_over_time(effect: Effect, x: Tensor, q: Tensor, *, y: Optional[Tensor] = None,
                   floor: float = 1e-4) -> np.ndarray:
    """Gain (dB) a compressor applies to ``x`` ``(1, channels, samples)`` over time.

    With the output ``y`` given: the ratio of output to input peaks across channels, on
    samples louder than ``floor`` (interpolated between them); exact for a gain-type
    compressor with linked channels, and free. Without it: make-up minus the effect's
    smoothed ``gain_reduction_db`` when it has one, else the same ratio on ``effect(x, q)``."""
    q = _q(effect, q, x.dtype)
    if y is None and hasattr(effect, "gain_reduction_db"):
        makeup = effect.physical(q).get("makeup_db", torch.zeros(1))
        return (makeup.view(-1, 1) - effect.gain_reduction_db(x, q))[0].double().numpy()
    y = effect(x, q) if y is None else y
    xm = x[0].abs().amax(dim=0)
    ratio = (y[0].abs().amax(dim=0) / xm.clamp_min(floor)).double().numpy()
    keep = xm.numpy() > floor
    if keep.sum() < 2:
        return np.zeros(len(ratio))
    idx = np.arange(len(ratio))
    g = np.interp(idx, idx[keep], ratio[keep])
    return 20.0 * np.log10(np.maximum(g, 1e-6))


# --------------------------------------------------------------------------- the paper's Figure 1
def figure1(ax=None):
    """Figure 1 of the paper redrawn: the auto-encoder approach to blind estimation."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.6))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 36)
    ax.axis("off")

    def box(x, y, w, h, text, color, style="round,pad=0.4,rounding_size=1.2", fontsize=10, weight="normal"):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=color, edgecolor="0.25", lw=1.2))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, weight=weight)
        return (x, y, w, h)

    def arrow(p, q, color="0.2", style="-|>", ls="-", rad=0.0):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=14, color=color, lw=1.4,
                                     linestyle=ls, connectionstyle=f"arc3,rad={rad}"))

    sig, syn, ana, net = "#e8eef7", "#fde2c8", "#d5ecd4", "#e6dcf3"
    ax.set_ylim(0, 40)
    ax.plot([54.5, 54.5], [17, 39], ls=":", color="0.6", lw=1)
    ax.text(1, 38, "synthesis: makes the training data", fontsize=9, color="0.35", style="italic", va="top")
    ax.text(56, 38, "analysis: sees only the master", fontsize=9, color="0.35", style="italic", va="top")
    # synthesis (left): x, p -> e^s -> y
    box(1, 24, 10, 7, "dry mix\n$\\mathbf{x}$", sig)
    box(15.5, 24, 21, 7, "synthesis chain $\\{e^s\\}$\nEQ $\\to$ comp. $\\to$ clip.", syn)
    box(20, 33.2, 12, 3, "parameters $\\mathbf{p}$", sig, fontsize=9)
    box(41.5, 24, 10, 7, "master\n$\\mathbf{y}$", sig, weight="bold")
    arrow((11.9, 27.5), (14.6, 27.5))
    arrow((26, 32.8), (26, 31.5))
    arrow((37.4, 27.5), (40.6, 27.5))
    # analysis (right): y -> f^a -> p_hat -> e^a(x) -> y_hat
    box(57.5, 24, 18, 7, "analysis network $f^a$\nencoder + MLP", net)
    box(80.5, 24, 18, 7, "estimated\nparameters $\\hat{\\mathbf{p}}$", sig)
    arrow((52.4, 27.5), (56.6, 27.5))
    arrow((76.4, 27.5), (79.6, 27.5))
    box(80.5, 7, 18, 7, "analysis chain $\\{e^a\\}$\n(differentiable)", ana)
    arrow((89.5, 23.1), (89.5, 14.9))
    box(57.5, 7, 18, 7, "estimate $\\hat{\\mathbf{y}}$", sig)
    arrow((79.6, 10.5), (76.4, 10.5))
    box(41.5, 7, 10, 7, "loss\n$\\mathcal{L}(\\hat{\\mathbf{y}}, \\mathbf{y})$", "#f6d3d3", fontsize=9)
    arrow((56.6, 10.5), (52.4, 10.5))
    arrow((46.5, 23.1), (46.5, 14.9))
    # the dry mix also feeds the analysis chain (drawn below everything)
    ax.plot([6, 6, 89.5], [23.1, 2.2, 2.2], color="0.2", lw=1.4)
    arrow((89.5, 2.2), (89.5, 6.1))
    ax.text(20, 3.0, "the same dry mix $\\mathbf{x}$ goes through the analysis chain", fontsize=9, color="0.3")
    arrow((52.4, 13.0), (63, 23.1), color="#b03030", ls="--", rad=-0.2)
    ax.text(57.5, 18.0, "gradients", color="#b03030", fontsize=9)
    return ax


def table1_html(available: Optional[Sequence[str]] = None) -> str:
    """Table 1 of the paper as HTML, generated from the effect registry and the parameter
    table: registry name (the class in its tooltip), number of parameters C, and whether
    this installation has it."""
    from .effects.registry import REGISTRY
    from .params import TABLE

    if available is None:
        from .effects.registry import available as _available

        available = _available()
    tick = "\u2713"
    head = ("Effect", "Implementation", "Synthesis", "Analysis", "beafx", "C", "here")
    rows = []
    for name, target in REGISTRY.items():
        family, impl, syn, ana = TABLE1[name]
        cls = target.split(":")[1]
        cells = (family, impl, tick if syn else "", tick if ana else "", f'<code title="{cls}">{name}</code>',
                 str(len(TABLE[cls])), tick if name in available else "later")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return f'<table class="table"><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table>'


def chain_input(x: Tensor) -> Tensor:
    """What an effect of a :class:`~beafx.effects.Chain` receives: DC removed, peak at 0 dBFS."""
    return normalize_0dbfs(x)


def db(x: Union[float, np.ndarray]) -> Union[float, np.ndarray]:
    """``20 log10 |x|`` floored at -240 dB."""
    return 20.0 * np.log10(np.maximum(np.abs(x), 1e-12)) if isinstance(x, np.ndarray) else 20.0 * math.log10(max(abs(x), 1e-12))
