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
#: Colour range of difference spectrograms (output minus input), in dB.
DIFF_DB_RANGE = (-18.0, 18.0)
#: Ticks of every logarithmic frequency axis (Hz, printed as integers).
FREQ_TICKS_HZ = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
#: Ticks of mel-scale axes (the low ones would collide: the mel scale is nearly linear there).
MEL_TICKS_HZ = (100, 500, 1000, 2000, 5000, 10000, 20000)
#: Loudness-matched players play every item at this RMS (dBFS) ...
PLAY_RMS_DB = -20.0
#: ... unless one of them would then peak above this (dBFS): then all play lower together.
PEAK_LIMIT_DB = -1.0
#: Peak level (dBFS) of peak-normalised players; low enough that the MP3 codec's overshoot on
#: heavily clipped, square-like material stays below full scale.
PEAK_PLAY_DB = -6.0

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


def mel_band_edges_hz(sample_rate: int = 44100) -> np.ndarray:
    """The ``N_MELS + 2`` edge frequencies (Hz) of the paper's Mel loss filterbank (auraloss
    calls ``librosa.filters.mel`` with its defaults: Slaney mel scale, 0 Hz to Nyquist)."""
    import librosa

    return librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=0.0, fmax=sample_rate / 2, htk=False)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=float) / 700.0)


def mel_axis_ticks(sample_rate: int = 44100) -> tuple[list[float], list[str]]:
    """Tick positions (in mel-band index units) and labels for :func:`mel_spectrogram_db`."""
    lo, hi = _hz_to_mel(F_MIN), _hz_to_mel(sample_rate / 2)
    ticks, labels = [], []
    for f in MEL_TICKS_HZ:
        if F_MIN <= f <= sample_rate / 2:
            ticks.append(float((_hz_to_mel(f) - lo) / (hi - lo) * (N_MELS - 1)))
            labels.append(str(f))
    return ticks, labels


def plot_spectrogram(ax, x: ArrayLike, sample_rate: int = 44100, *, title: str = "", colorbar: bool = True):
    """Draw the mel spectrogram of ``x`` on ``ax`` (with a colour bar in dB unless
    ``colorbar=False``, e.g. when a figure shares one); returns the image artist."""
    db = mel_spectrogram_db(x, sample_rate)
    return _mel_image(ax, db, as_numpy(x).shape[-1] / sample_rate, sample_rate, title=title, colorbar=colorbar,
                      cmap="magma", vrange=SPEC_DB_RANGE, label="level (dB)")


def plot_difference_spectrogram(ax, y: ArrayLike, x: ArrayLike, sample_rate: int = 44100, *, title: str = "",
                                colorbar: bool = True):
    """Draw ``mel(y) - mel(x)`` in dB (what a linear effect such as an EQ did to each band over
    time; blue cut, red boost) on ``ax``; returns the image artist. Both signals are compared
    at equal RMS, so the picture shows the balance of frequencies, not the level."""
    from .functional.levels import rms_normalize

    a = rms_normalize(torch.from_numpy(as_numpy(y).copy()))
    b = rms_normalize(torch.from_numpy(as_numpy(x).copy()))
    diff = mel_spectrogram_db(a, sample_rate) - mel_spectrogram_db(b, sample_rate)
    return _mel_image(ax, diff, as_numpy(x).shape[-1] / sample_rate, sample_rate, title=title, colorbar=colorbar,
                      cmap="RdBu_r", vrange=DIFF_DB_RANGE, label="output - input (dB)")


def _mel_image(ax, db: np.ndarray, seconds: float, sample_rate: int, *, title: str, colorbar: bool, cmap: str,
               vrange: tuple[float, float], label: str):
    im = ax.imshow(
        db, origin="lower", aspect="auto", cmap=cmap, vmin=vrange[0], vmax=vrange[1],
        extent=(0.0, seconds, -0.5, N_MELS - 0.5), interpolation="nearest",
    )
    ticks, labels = mel_axis_ticks(sample_rate)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, mel scale)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=label)
    return im


def log_frequency_axis(ax, *, axis: str = "x", lo: float = 20.0, hi: float = 22050.0,
                       compact: Optional[bool] = None) -> None:
    """Make ``ax``'s ``axis`` a log-frequency axis from ``lo`` to ``hi`` Hz with ticks at
    20, 50, 100, ..., 10000, 20000, labelled as integers (no 10^3, no minor labels).
    ``compact`` (default: when the axis is under 5 inches long) labels only 20 Hz and the
    powers of ten, so that the labels do not collide; the other ticks stay, unlabelled."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    which = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)
    ticks = [f for f in FREQ_TICKS_HZ if lo <= f <= hi]
    if compact is None:
        box = ax.get_position()
        size = ax.figure.get_size_inches()
        compact = (box.width * size[0] if axis == "x" else box.height * size[1]) < 5.0
    shown = {f for f in ticks if not compact or f in (20, 100, 1000, 10000)}
    which.set_major_locator(FixedLocator(ticks))
    labels = [str(f) if f in shown else "" for f in ticks]
    (ax.set_xticklabels if axis == "x" else ax.set_yticklabels)(labels)
    which.set_minor_formatter(NullFormatter())


def rms_envelope_db(x: ArrayLike, sample_rate: int = 44100, *, window_ms: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and the short-time RMS (dBFS) of the channel mean of ``x``, over
    non-overlapping windows of ``window_ms``."""
    a = as_numpy(x).mean(axis=0).astype(np.float64)
    n = max(1, int(round(window_ms * 1e-3 * sample_rate)))
    frames = len(a) // n
    if frames == 0:
        raise ValueError(f"signal shorter than one {window_ms} ms window")
    power = np.square(a[: frames * n]).reshape(frames, n).mean(axis=1)
    times = (np.arange(frames) + 0.5) * n / sample_rate
    return times, 10.0 * np.log10(np.maximum(power, 1e-12))


def plot_waveform_envelope(ax, x: ArrayLike, sample_rate: int = 44100, *, color: str = "C0", label: str = "",
                           reference: Optional[ArrayLike] = None, title: str = ""):
    """Waveform of ``x`` (channel mean, light) with its 50 ms RMS envelope (dBFS, right
    axis); ``reference`` (e.g. the input) adds its envelope dashed, to compare dynamics.
    Returns the twin axis of the envelopes."""
    a = as_numpy(x).mean(axis=0)
    t = np.arange(len(a)) / sample_rate
    step = max(1, len(a) // 4000)
    ax.plot(t[::step], a[::step], color=color, lw=0.3, alpha=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    env_ax = ax.twinx()
    te, env = rms_envelope_db(x, sample_rate)
    env_ax.plot(te, env, color=color, lw=1.4, label=f"{label} RMS" if label else "RMS")
    if reference is not None:
        tr, ref = rms_envelope_db(reference, sample_rate)
        env_ax.plot(tr, ref, color="0.3", lw=1.0, ls="--", label="input RMS")
    env_ax.set_ylim(-50, 0)
    env_ax.set_ylabel("RMS over 50 ms (dBFS)")
    if title:
        ax.set_title(title)
    return env_ax


# --------------------------------------------------------------------------- audio players
def encode_mp3(x: ArrayLike, sample_rate: int = 44100, *, normalize: bool = True,
               gain_db: Optional[float] = None) -> bytes:
    """MP3 bytes of ``x`` with its DC removed. ``gain_db`` applies that gain; otherwise
    ``normalize`` scales the peak to -0.5 dBFS; without either, samples beyond +-1 are clipped."""
    import soundfile as sf

    a = as_numpy(x)
    if a.shape[0] > 2:
        raise ValueError(f"MP3 holds at most 2 channels, got {a.shape[0]}")
    if not np.isfinite(a).all():
        raise ValueError("audio contains NaN or Inf")
    a = a - a.mean(axis=1, keepdims=True)
    peak = float(np.abs(a).max())
    if gain_db is not None:
        if not math.isfinite(gain_db):
            raise ValueError(f"gain_db must be finite, got {gain_db}")
        a = a * 10 ** (gain_db / 20)
    elif normalize and peak > 1e-8:
        a = a * (10 ** (-0.5 / 20) / peak)
    buf = io.BytesIO()
    sf.write(buf, np.clip(a, -1.0, 1.0).T, int(sample_rate), format="MP3", subtype="MPEG_LAYER_III")
    return buf.getvalue()


def levels_db(x: ArrayLike) -> tuple[float, float]:
    """``(rms, peak)`` of ``x`` in dBFS, over all channels, after DC removal."""
    a = as_numpy(x).astype(np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    rms = float(np.sqrt(np.mean(np.square(a))))
    return db(rms), db(float(np.abs(a).max()))


#: How :func:`players` sets the playback level.
LEVEL_MODES = ("rms", "peak", None)


def playback_gains(items: Mapping[str, ArrayLike], *, level: Optional[str] = "rms") -> dict[str, float]:
    """Gain (dB) each item gets in :func:`players`.

    ``level="rms"`` (the default, loudness-matched): every item plays at the same RMS,
    :data:`PLAY_RMS_DB`, or lower together if one of them would then peak above
    :data:`PEAK_LIMIT_DB`; ``"peak"``: every peak at :data:`PEAK_PLAY_DB` (for the lessons
    where the level is the point); ``None``: as rendered (0 dB)."""
    if level not in LEVEL_MODES:
        raise ValueError(f"level must be one of {LEVEL_MODES}, got {level!r}")
    measured = {label: levels_db(x) for label, x in items.items()}
    silent = [label for label, (r, _) in measured.items() if r < -200]
    if level is not None and silent:
        raise ValueError(f"cannot match the level of silent items: {silent}")
    if level is None:
        return {label: 0.0 for label in items}
    if level == "peak":
        return {label: PEAK_PLAY_DB - p for label, (_, p) in measured.items()}
    target = min([PLAY_RMS_DB] + [PEAK_LIMIT_DB - (p - r) for r, p in measured.values()])
    return {label: target - r for label, (r, _) in measured.items()}


def audio_html(x: ArrayLike, sample_rate: int = 44100, *, normalize: bool = True, gain_db: Optional[float] = None) -> str:
    """An ``<audio>`` element with the MP3 embedded as a data URI."""
    data = base64.b64encode(encode_mp3(x, sample_rate, normalize=normalize, gain_db=gain_db)).decode("ascii")
    return (f'<audio controls preload="metadata" style="width:260px;max-width:100%" '
            f'src="data:audio/mpeg;base64,{data}"></audio>')


def player(x: ArrayLike, sample_rate: int = 44100, *, normalize: bool = True):
    """An ``IPython.display.Audio`` player holding MP3 (much smaller than the default WAV)."""
    from IPython.display import Audio

    audio = Audio(data=encode_mp3(x, sample_rate, normalize=normalize))
    audio.mimetype = "audio/mpeg"
    return audio


def players(items: Mapping[str, ArrayLike], sample_rate: int = 44100, *, notes: Optional[Mapping[str, str]] = None,
            level: Optional[str] = "rms"):
    """A table of labelled players (``IPython.display.HTML``): one row per item.

    Loudness-matched by default (``level="rms"``, see :func:`playback_gains`), so that an A/B
    comparison hears the processing, not the level; each row states the item's level as
    rendered, relative to the first item, so the level difference is not hidden either.
    ``level="peak"`` peak-normalises every item instead (and states the RMS that results);
    ``level=None`` plays the signals as they are."""
    from IPython.display import HTML

    if not items:
        raise ValueError("players: no items")
    gains = playback_gains(items, level=level)
    measured = {label: levels_db(x) for label, x in items.items()}
    first = next(iter(items))
    rows = []
    for label, x in items.items():
        rms_rel = measured[label][0] - measured[first][0]
        if level == "rms":
            how = "reference level" if label == first else f"{rms_rel:+.1f} dB RMS re. first, as rendered"
        elif level == "peak":
            played = rms_rel + gains[label] - gains[first]
            how = "reference" if label == first else f"{played:+.1f} dB RMS re. first, at equal peak"
        else:
            how = f"RMS {measured[label][0]:.1f} dBFS, peak {measured[label][1]:.1f} dBFS"
        note = html.escape(notes.get(label, "")) if notes else ""
        rows.append(
            f"<tr><td><b>{html.escape(label)}</b></td>"
            f"<td>{audio_html(x, sample_rate, gain_db=gains[label])}</td>"
            f"<td><small>{how}</small></td>" + (f"<td><small>{note}</small></td>" if notes else "") + "</tr>"
        )
    caption = {"rms": f"Loudness-matched: every player at the same RMS ({min(gains[k] + measured[k][0] for k in gains):.1f} dBFS).",
               "peak": f"Peak-normalised: every player peaks at {PEAK_PLAY_DB:.0f} dBFS, so the loudness differs.",
               None: "Played as rendered."}[level]
    return HTML(f'<table class="table beafx-players" style="font-size:0.9em"><caption>{caption}</caption>'
                f'<tbody>{"".join(rows)}</tbody></table>')


def glue(name: str, value, *, display: bool = False) -> None:
    """``myst_nb.glue`` when the book is being built (the prose quotes ``value`` with
    ``{glue:text}`name```). In Colab and plain Jupyter, where myst-nb is not installed, it does
    nothing. Returns None, so that a cell ending with ``glue(...)`` shows no stray number."""
    if isinstance(value, np.generic) or (isinstance(value, Tensor) and value.numel() == 1):
        value = value.item()  # a plain float prints as a number (np.float64(...) would not format)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return None
    _glue(name, value, display=display)
    return None


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
