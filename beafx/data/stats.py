"""Is it music? Four clip statistics, and the reference ranges measured on real recordings
(book chapter 07, ``book/07_data``).

The synthetic source (:mod:`beafx.data.synthetic`) must produce clips that a mastering
chain treats like real music. Four measurements summarise what the chain "sees":

- **crest factor** (dB): peak over RMS of the clip, after DC removal. Compressors and
  clippers act on exactly this ratio.
- **long-term spectral slope** (dB/octave): straight-line fit of the long-term average
  spectrum (Welch PSD, averaged in third-octave bands from 60 Hz to 12 kHz) against
  log2 frequency. Pink noise gives -3 dB/oct, white noise 0; music is usually steeper.
- **onset rate** (onsets/s): peaks of the spectral flux of a mel spectrogram in dB, picked
  with a moving-average threshold (the recipe of librosa's ``onset_detect`` with its default
  settings, written here in numpy: librosa's first call compiles for ~20 s with numba).
- **loudness** (LUFS): ITU-R BS.1770-4 integrated loudness (K-weighting, 400 ms blocks,
  absolute and relative gates) of the clip peak-normalised to 0 dBFS, as the dataset
  yields it, so it measures how dense the clip is below its peak.

``python -m beafx.data.stats folder:PATH [debian-music ...] --write`` measures clips of real
recordings (drawn on a fixed grid, peak-normalised like the dataset's) and writes the ranges to
``beafx/data/assets/music_stats.json``, which is committed: tests compare synthetic clips
with it even where the recordings are absent.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
from scipy import ndimage, signal

#: Names of the statistics, in the order used everywhere.
STATS = ("crest_db", "slope_db_per_octave", "onset_rate", "loudness_lufs")

#: Units, for printing.
UNITS = {"crest_db": "dB", "slope_db_per_octave": "dB/oct", "onset_rate": "1/s", "loudness_lufs": "LUFS"}

#: Where the committed reference ranges live (inside the package).
REFERENCE_FILE = "music_stats.json"

_EPS = 1e-12


def _as_mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:  # (channels, samples)
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected a mono (samples,) or (channels, samples) array, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("cannot measure an empty signal")
    return x


def crest_factor_db(x: np.ndarray) -> float:
    """Peak over RMS in dB of ``x`` ``(samples,)`` after DC removal (3.01 dB for a sine)."""
    x = _as_mono(x)
    x = x - x.mean()
    rms = math.sqrt(float(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    if rms < _EPS:
        return 0.0
    return 20.0 * math.log10(peak / rms)


def third_octave_centres(f_low: float = 60.0, f_high: float = 12000.0) -> np.ndarray:
    """Base-2 third-octave centre frequencies (Hz) from about ``f_low`` to ``f_high``."""
    k = np.arange(math.ceil(3 * math.log2(f_low / 1000.0)), math.floor(3 * math.log2(f_high / 1000.0)) + 1)
    return 1000.0 * 2.0 ** (k / 3.0)


def long_term_spectrum(x: np.ndarray, sample_rate: int, *, nperseg: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD of ``x`` averaged in third-octave bands: ``(centres_hz, level_db)``."""
    x = _as_mono(x)
    nperseg = min(nperseg, x.size)
    f, psd = signal.welch(x, fs=sample_rate, nperseg=nperseg, noverlap=nperseg // 2, window="hann")
    centres = third_octave_centres(60.0, min(12000.0, 0.45 * sample_rate))
    lo, hi = centres * 2 ** (-1 / 6), centres * 2 ** (1 / 6)
    levels = np.empty(centres.size)
    for i, (a, b) in enumerate(zip(lo, hi)):
        band = psd[(f >= a) & (f < b)]
        if band.size == 0:  # very short signal: fall back to the nearest bin
            band = psd[[int(np.argmin(np.abs(f - centres[i])))]]
        levels[i] = 10.0 * np.log10(band.mean() + _EPS)
    return centres, levels


def spectral_slope_db_per_octave(x: np.ndarray, sample_rate: int) -> float:
    """Least-squares slope (dB/octave) of the third-octave long-term spectrum, 60 Hz-12 kHz
    (PSD per Hz: pink noise -3, white noise 0)."""
    centres, levels = long_term_spectrum(x, sample_rate)
    slope, _ = np.polyfit(np.log2(centres), levels, 1)
    return float(slope)


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (15 mels at 1 kHz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = 3.0 * f / 200.0
    log_part = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * math.log(6.4) / 27.0), 200.0 * m / 3.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` from 0 Hz to Nyquist, each of unit area."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(0.0, float(hz_to_mel(sample_rate / 2.0)), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for k in range(n_mels):
        lo, mid, hi = edges[k], edges[k + 1], edges[k + 2]
        fb[k] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
        fb[k] *= 2.0 / (hi - lo)
    return fb


#: STFT of the onset detector (the usual 2048/512 at 44.1 kHz: 11.6 ms frames).
ONSET_FFT, ONSET_HOP = 2048, 512


def onset_envelope(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """Spectral flux of a 128-band mel power spectrogram in dB (80 dB range below its maximum):
    the mean over bands of the frame-to-frame increases. ``(flux (frames,), frame_rate_hz)``;
    frame ``k`` is centred on sample ``k * 512``."""
    x = _as_mono(x)
    padded = np.pad(x, (ONSET_FFT // 2, ONSET_FFT // 2))
    if padded.size < ONSET_FFT:
        padded = np.pad(padded, (0, ONSET_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, ONSET_FFT)[::ONSET_HOP]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(ONSET_FFT) / ONSET_FFT)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel_db = 10.0 * np.log10(np.maximum(power @ mel_filterbank(sample_rate, ONSET_FFT).T, 1e-10))
    mel_db = np.maximum(mel_db, mel_db.max() - 80.0)
    flux = np.maximum(np.diff(mel_db, axis=0), 0.0).mean(axis=1)
    # Frame k's increase is reported at frame k + 1 ... shifted by the centring, as usual.
    flux = np.concatenate([np.zeros(1 + ONSET_FFT // (2 * ONSET_HOP)), flux])[: frames.shape[0]]
    return flux, sample_rate / ONSET_HOP


def onset_times(x: np.ndarray, sample_rate: int, *, delta: float = 0.07) -> np.ndarray:
    """Onset times (s) by peak picking the flux scaled to [0, 1]: a frame is an onset if it is
    the maximum of the last 30 ms, exceeds the mean of +-100 ms by ``delta``, and comes more than
    30 ms after the previous onset."""
    flux, rate = onset_envelope(x, sample_rate)
    span = flux.max() - flux.min()
    if span <= _EPS:
        return np.zeros(0)
    flux = (flux - flux.min()) / span
    pre_max, pre_avg, post_avg, wait = (int(s * sample_rate) // ONSET_HOP for s in (0.03, 0.10, 0.10, 0.03))
    post_avg += 1
    n = flux.size
    back_max = ndimage.maximum_filter1d(flux, size=pre_max + 1, origin=pre_max // 2, mode="constant", cval=-1.0)
    csum = np.concatenate([[0.0], np.cumsum(flux)])
    idx = np.arange(n)
    lo, hi = np.maximum(idx - pre_avg, 0), np.minimum(idx + post_avg, n)
    mean = (csum[hi] - csum[lo]) / (hi - lo)
    candidates = np.flatnonzero((flux >= back_max) & (flux >= mean + delta))
    onsets, last = [], -(10**9)
    for k in candidates:
        if k > last + wait:
            onsets.append(k)
            last = k
    return np.asarray(onsets, dtype=np.float64) / rate


def onset_rate(x: np.ndarray, sample_rate: int) -> float:
    """Onsets per second of ``x`` (see :func:`onset_times`)."""
    x = _as_mono(x)
    return float(onset_times(x, sample_rate).size / (x.size / sample_rate))


def k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads ``[(b, a), (b, a)]`` of the BS.1770 K-weighting (shelf, then high-pass),
    derived for any sample rate from the analogue prototypes (equal to the standard's
    coefficient table at 48 kHz)."""
    # Stage 1: high shelf, +4 dB above about 1.7 kHz (the head's acoustic effect).
    fc, gain_db, quality = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * fc / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / quality + k * k
    b_shelf = np.array([(vh + vb * k / quality + k * k), 2.0 * (k * k - vh), (vh - vb * k / quality + k * k)]) / a0
    a_shelf = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / quality + k * k) / a0])
    # Stage 2: RLB high-pass at about 38 Hz.
    fc, quality = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * fc / sample_rate)
    a0 = 1.0 + k / quality + k * k
    b_hp = np.array([1.0, -2.0, 1.0])
    a_hp = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / quality + k * k) / a0])
    return [(b_shelf, a_shelf), (b_hp, a_hp)]


def loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness (LUFS) of a mono signal: K-weighting, 400 ms blocks with
    75 % overlap, absolute gate -70 LUFS, relative gate -10 LU. Silence gives -70."""
    x = _as_mono(x)
    y = x
    for b, a in k_weighting(sample_rate):
        y = signal.lfilter(b, a, y)
    block, step = int(round(0.4 * sample_rate)), int(round(0.1 * sample_rate))
    if y.size < block:
        energies = np.array([np.mean(y * y)])
    else:
        power = np.concatenate([[0.0], np.cumsum(y * y)])
        starts = np.arange(0, y.size - block + 1, step)
        energies = (power[starts + block] - power[starts]) / block
    levels = -0.691 + 10.0 * np.log10(energies + _EPS)
    gated = energies[levels > -70.0]
    if gated.size == 0:
        return -70.0
    relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
    gated = energies[(levels > -70.0) & (levels > relative)]
    return float(-0.691 + 10.0 * np.log10(gated.mean()))


def clip_stats(x: np.ndarray, sample_rate: int = 44100) -> dict[str, float]:
    """All four statistics of one clip ``(samples,)``, peak-normalised first (as the dataset
    yields clips)."""
    x = _as_mono(x)
    x = x - x.mean()
    peak = np.max(np.abs(x))
    if peak < _EPS:
        raise ValueError("cannot measure a silent clip")
    x = x / peak
    return {
        "crest_db": crest_factor_db(x),
        "slope_db_per_octave": spectral_slope_db_per_octave(x, sample_rate),
        "onset_rate": onset_rate(x, sample_rate),
        "loudness_lufs": loudness_lufs(x, sample_rate),
    }


def summarize(rows: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per statistic: count, min, 5th, 50th, 95th percentile and max over ``rows``."""
    if not rows:
        raise ValueError("no clips to summarise")
    out = {}
    for name in STATS:
        v = np.array([r[name] for r in rows], dtype=np.float64)
        out[name] = {
            "n": int(v.size),
            "min": float(v.min()),
            "p05": float(np.percentile(v, 5)),
            "p50": float(np.percentile(v, 50)),
            "p95": float(np.percentile(v, 95)),
            "max": float(v.max()),
        }
    return out


# --------------------------------------------------------------------------------------------
# Reference ranges
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceRanges:
    """Ranges of each statistic on real music: for each collection, its central 90 %
    (5th to 95th percentile of its clips); ``ranges`` is their union."""

    clip_seconds: float
    ranges: dict[str, tuple[float, float]]
    collections: dict[str, dict]

    def contains(self, stats: Mapping[str, float]) -> dict[str, bool]:
        """Which statistics of one clip fall inside the ranges."""
        return {k: self.ranges[k][0] <= stats[k] <= self.ranges[k][1] for k in STATS}


def load_reference(path: Optional[Path] = None) -> ReferenceRanges:
    """The committed reference ranges (``beafx/data/assets/music_stats.json``) or ``path``."""
    if path is None:
        text = resources.files("beafx.data").joinpath("assets", REFERENCE_FILE).read_text()
    else:
        text = Path(path).read_text()
    data = json.loads(text)
    return ReferenceRanges(
        clip_seconds=float(data["clip_seconds"]),
        ranges={k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()},
        collections=data["collections"],
    )


def grid_clips(source, *, clip_seconds: float, max_clips_per_track: int = 24) -> Iterable[tuple[str, np.ndarray]]:
    """Clips of every track of ``source`` (all splits) on a fixed grid: up to
    ``max_clips_per_track`` evenly spaced, non-overlapping ``clip_seconds`` clips, skipping
    near-silent ones (peak < 1e-5, as the dataset re-draws them). Yields ``(track_name, clip)``."""
    from .clips import SILENT_PEAK

    length = int(round(clip_seconds * source.sample_rate))
    for split in source.splits:
        for i, track in enumerate(source.tracks(split)):
            if track.num_samples < length:
                continue
            n = min(max_clips_per_track, track.num_samples // length)
            starts = np.linspace(0, track.num_samples - length, n).astype(np.int64) if n > 1 else [0]
            for start in starts:
                clip = source.read(split, i, int(start), length)
                if np.max(np.abs(clip)) >= SILENT_PEAK:
                    yield track.name, clip


def measure_source(source, *, clip_seconds: float, max_clips_per_track: int = 24) -> list[dict[str, float]]:
    """:func:`clip_stats` of the grid clips of ``source`` (see :func:`grid_clips`)."""
    return [
        clip_stats(clip, source.sample_rate)
        for _, clip in grid_clips(source, clip_seconds=clip_seconds, max_clips_per_track=max_clips_per_track)
    ]


def build_reference(collections: Mapping[str, Sequence[Mapping[str, float]]], *, clip_seconds: float) -> dict:
    """The JSON document of reference ranges from per-collection clip statistics."""
    summaries = {name: summarize(rows) for name, rows in collections.items()}
    ranges = {
        k: [min(s[k]["p05"] for s in summaries.values()), max(s[k]["p95"] for s in summaries.values())] for k in STATS
    }
    return {
        "description": "Clip statistics of real music (beafx.data.stats). ranges: union over collections "
        "of each collection's 5th-95th percentile. Clips: grid of non-overlapping clips, peak-normalised.",
        "clip_seconds": clip_seconds,
        "units": UNITS,
        "ranges": ranges,
        "collections": {name: {"clips": len(collections[name]), "stats": summaries[name]} for name in collections},
        "command": "python -m beafx.data.stats " + " ".join(collections) + " --write",
    }


def format_summary(summary: Mapping[str, Mapping[str, float]], reference: Optional[ReferenceRanges] = None) -> str:
    """A small text table of a :func:`summarize` result, with the reference ranges if given."""
    lines = [f"{'statistic':<30}{'p05':>9}{'median':>9}{'p95':>9}" + ("   reference range" if reference else "")]
    for k in STATS:
        s = summary[k]
        line = f"{k + ' (' + UNITS[k] + ')':<30}{s['p05']:>9.2f}{s['p50']:>9.2f}{s['p95']:>9.2f}"
        if reference:
            lo, hi = reference.ranges[k]
            line += f"   [{lo:.2f}, {hi:.2f}]"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Measure sources and print (and with ``--write`` save) their reference ranges."""
    from .sources import open_source

    parser = argparse.ArgumentParser(
        prog="python -m beafx.data.stats",
        description="Measure crest factor, spectral slope, onset rate and loudness of clips of real music.",
    )
    parser.add_argument("sources", nargs="+", help="data sources (folder:PATH, debian-music, musdb:PATH, synthetic)")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--max-clips-per-track", type=int, default=24)
    parser.add_argument("--write", action="store_true", help=f"write beafx/data/assets/{REFERENCE_FILE}")
    parser.add_argument("--out", type=Path, help="write the JSON here instead")
    args = parser.parse_args(argv)
    collections = {}
    for spec in args.sources:
        rows = measure_source(
            open_source(spec), clip_seconds=args.clip_seconds, max_clips_per_track=args.max_clips_per_track
        )
        collections[spec] = rows
        print(f"{spec}: {len(rows)} clips")
        print(format_summary(summarize(rows)))
    doc = build_reference(collections, clip_seconds=args.clip_seconds)
    print("ranges:", json.dumps(doc["ranges"]))
    out = args.out or (Path(__file__).parent / "assets" / REFERENCE_FILE if args.write else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
