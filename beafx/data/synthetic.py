"""``synthetic``: procedurally generated songs, the embedded default source
(book chapter 07, ``book/07_data``).

MUSDB18 cannot be downloaded everywhere, so beafx makes its own music: 86/14/50 songs per
seed (MUSDB18's split sizes, so an epoch has the paper's size), each about 1-5 minutes long (median 2.5 for seed 0), with
drums (transient-rich kick, snare, clap, hats, toms, crash), bass, chords (pad, keys, stabs or
arpeggio) and a lead melody, in a random tempo, key, mode, form, timbre, mix balance and
dynamics (sections of different energy, a fade-out), in a small room reverb. The score comes
from :mod:`beafx.data.music`, the sounds from :mod:`beafx.data.instruments`.

Any stretch of a song is rendered directly (random access: only the notes that sound in it
are synthesised, plus a short pre-roll for the reverb), deterministically, at about 350x real
time on one core (numba loops for the notes, filters and mixing; the reverb is an FFT
convolution with the room's spectrum kept per song). That the result is music-like enough for mastering effects is measured
by :mod:`beafx.data.stats` against real recordings (``tests/test_data_synthetic.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import scipy.fft
from numba import njit
from scipy import signal

from .base import OFFICIAL_COUNTS, SPLITS, Source, Track, check_split
from .instruments import SR, DrumKit, Wavetable, add_note, drum_kit, harmonic_spectrum, release_tail, reverb_ir
from .music import INSTRUMENTS, Song, bars_between

_SPLIT_ID = {s: i for i, s in enumerate(SPLITS)}


@dataclass
class Voice:
    """How a pitched instrument sounds: wavetables, envelope, filter, level and reverb send."""

    table: Wavetable
    dark: Optional[Wavetable]  # crossfaded to as brightness decays (None: constant timbre)
    bright_tau: float
    attack: float
    decay: float
    sustain: float
    release: float
    vibrato: tuple[float, float]
    detune: float  # ratio of a second, detuned oscillator (0: none)
    lowpass: Optional[np.ndarray]  # second-order sections
    gain: float
    send: float


_HIGHPASS = signal.butter(2, 25.0, btype="highpass", fs=SR, output="sos")


def _lowpass(cutoff: float) -> np.ndarray:
    return signal.butter(2, min(cutoff, 0.45 * SR), btype="lowpass", fs=SR, output="sos")


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


class SongSounds:
    """The instruments of one song: drum kit, voices, mix levels and reverb (drawn from the
    song's ``sounds`` generator)."""

    def __init__(self, song: Song) -> None:
        rng = song.rng("sounds")
        self.kit: DrumKit = drum_kit(rng)
        self.drum_gain = _db(rng.uniform(-4, 0))
        # Levels of kick, snare, clap, hat, open hat, tom, crash relative to the drum bus.
        self.drum_levels = np.array(
            [_db(rng.uniform(-2, 0)), _db(rng.uniform(-5, -1)), _db(rng.uniform(-7, -2)), _db(rng.uniform(-22, -6)),
             _db(rng.uniform(-20, -10)), _db(rng.uniform(-8, -3)), _db(rng.uniform(-20, -12))]
        )
        self.drum_send = rng.uniform(0.05, 0.3)
        self.bass = Voice(
            table=Wavetable(harmonic_spectrum(rng, str(rng.choice(["saw", "square", "sine", "formant", "triangle"]))), rng),
            dark=None, bright_tau=1.0,
            attack=rng.uniform(0.002, 0.012), decay=rng.uniform(0.15, 0.6), sustain=rng.uniform(0.3, 0.9),
            release=rng.uniform(0.02, 0.08), vibrato=(0.0, 5.0), detune=0.0,
            lowpass=_lowpass(rng.uniform(250, 1800)), gain=_db(rng.uniform(-12, 0)), send=0.0,
        )
        style = song.chord_style
        if style == "pad":
            kind = str(rng.choice(["saw", "formant", "organ", "square"]))
            env = dict(attack=rng.uniform(0.05, 0.5), decay=rng.uniform(0.5, 2.0), sustain=rng.uniform(0.6, 1.0), release=rng.uniform(0.25, 0.9))
            dark, tau, detune = None, 1.0, 2.0 ** (rng.uniform(4, 14) / 1200)
            rolloff = rng.uniform(3, 16)
        elif style == "keys":
            kind = str(rng.choice(["formant", "triangle", "saw", "organ"]))
            env = dict(attack=rng.uniform(0.001, 0.006), decay=rng.uniform(0.3, 1.2), sustain=rng.uniform(0.05, 0.35), release=rng.uniform(0.1, 0.4))
            dark, tau, detune = Wavetable(harmonic_spectrum(rng, "sine"), rng), rng.uniform(0.08, 0.5), 0.0
            rolloff = rng.uniform(6, 30)
        else:  # stabs and arpeggios: plucked
            kind = str(rng.choice(["saw", "square", "formant"]))
            env = dict(attack=rng.uniform(0.001, 0.008), decay=rng.uniform(0.08, 0.35), sustain=rng.uniform(0.0, 0.3), release=rng.uniform(0.04, 0.15))
            dark, tau, detune = Wavetable(harmonic_spectrum(rng, "triangle"), rng), rng.uniform(0.03, 0.2), 0.0
            rolloff = rng.uniform(5, 25)
        self.chords = Voice(
            table=Wavetable(harmonic_spectrum(rng, kind), rng, rolloff=rolloff), dark=dark, bright_tau=tau,
            vibrato=(0.0, 5.0), detune=detune, lowpass=None, gain=_db(rng.uniform(-16, -7)), send=rng.uniform(0.15, 0.6), **env,
        )
        self.lead = Voice(
            table=Wavetable(
                harmonic_spectrum(rng, str(rng.choice(["saw", "square", "formant", "sine", "triangle"]))), rng,
                rolloff=rng.uniform(4, 24),
            ),
            dark=None, bright_tau=1.0,
            attack=rng.uniform(0.004, 0.05), decay=rng.uniform(0.1, 0.5), sustain=rng.uniform(0.5, 0.9),
            release=rng.uniform(0.05, 0.25), vibrato=(rng.uniform(0.002, 0.008), rng.uniform(4.5, 6.5)),
            detune=0.0, lowpass=None, gain=_db(rng.uniform(-13, -4)),
            send=rng.uniform(0.1, 0.5),
        )
        self.ir = reverb_ir(rng, rng.uniform(0.3, 2.0))
        # Mix-bus tone: a first-order high shelf (-14..+6 dB above ~1-4 kHz) and a 25 Hz high-pass.
        hp_b, hp_a = signal.butter(1, rng.uniform(1000, 4000), btype="highpass", fs=SR)
        k = rng.uniform(-0.8, 1.0)
        tilt = np.concatenate([hp_a + k * hp_b, [0.0], hp_a, [0.0]])
        self.master = np.vstack([_HIGHPASS, tilt[None, :]])
        self.preroll = self.ir.size + int(0.05 * SR)
        self._ir_spectrum: tuple[int, np.ndarray] = (0, np.zeros(0, dtype=np.complex64))
        bar = song.bar_seconds
        # How far back a note can start and still sound (seconds).
        self.lookback = {
            "drums": self.kit.crash.size / SR,
            "bass": bar + release_tail(self.bass.release),
            "chords": song.chord_bars * bar + release_tail(self.chords.release),
            "lead": 0.5 * bar + release_tail(self.lead.release),
        }

    def ir_spectrum(self, size: int) -> np.ndarray:
        """``rfft(ir, size)`` (complex64; the last size asked for is kept)."""
        if self._ir_spectrum[0] != size:
            self._ir_spectrum = (size, scipy.fft.rfft(self.ir, size))
        return self._ir_spectrum[1]


@lru_cache(maxsize=256)
def song(seed: int, split: str, index: int) -> Song:
    """Song ``index`` of ``split`` for ``seed`` (cached)."""
    return Song(key=(int(seed), _SPLIT_ID[check_split(split)], int(index)))


@lru_cache(maxsize=24)
def sounds(seed: int, split: str, index: int) -> SongSounds:
    """The instruments of :func:`song` ``(seed, split, index)`` (cached, a few MB each)."""
    return SongSounds(song(seed, split, index))


def _add_voice(stem: np.ndarray, voice: Voice, note, r0: int) -> None:
    n_on = int(round(note.onset * SR)) - r0
    n_len = int(math.ceil((note.duration + release_tail(voice.release)) * SR))
    a, b = max(0, n_on), min(stem.size, n_on + n_len)
    if a >= b:
        return
    first, count = a - n_on, b - a
    add_note(stem, a, first, count, 440.0 * 2.0 ** ((note.pitch - 69.0) / 12.0),
             (note.onset * 7919.0 + note.pitch * 0.618) % 1.0, note.velocity, note.duration, voice.table,
             voice.vibrato, voice.detune, voice.dark, voice.bright_tau, voice.attack, voice.decay, voice.sustain,
             voice.release)


def _add_drum(stem: np.ndarray, kit: DrumKit, levels: np.ndarray, note, r0: int) -> None:
    sample = (kit.kick, kit.snare, kit.clap, kit.hat, kit.open_hat, kit.tom, kit.crash)[int(note.pitch)]
    n_on = int(round(note.onset * SR)) - r0
    a, b = max(0, n_on), min(stem.size, n_on + sample.size)
    if a < b:
        stem[a:b] += np.float32(levels[int(note.pitch)] * note.velocity**1.5) * sample[a - n_on : b - n_on]


def render(score: Song, snd: SongSounds, start: int, length: int) -> np.ndarray:
    """Samples ``[start, start + length)`` of a song (mono float32, not normalised)."""
    r0 = start - snd.preroll
    n = length + snd.preroll
    t0, t1 = r0 / SR, (start + length) / SR
    dry = np.zeros(n, dtype=np.float32)
    send = np.zeros(n, dtype=np.float32)
    for instrument in INSTRUMENTS:
        stem = np.zeros(n, dtype=np.float32)
        for bar in bars_between(score, t0 - snd.lookback[instrument], t1):
            for note in score.notes(instrument, bar):
                if instrument == "drums":
                    _add_drum(stem, snd.kit, snd.drum_levels, note, r0)
                else:
                    _add_voice(stem, getattr(snd, instrument), note, r0)
        if instrument == "drums":
            gain, level = snd.drum_gain, snd.drum_send
        else:
            voice = getattr(snd, instrument)
            if voice.lowpass is not None and stem.any():
                stem = _sosfilt(voice.lowpass, stem)
            gain, level = voice.gain, voice.send
        _mix(dry, send, stem, np.float32(gain), np.float32(gain * level))
    # Reverb: the FFT convolution scipy's oaconvolve does for these sizes, with the IR's
    # spectrum kept per song.
    size = scipy.fft.next_fast_len(n + snd.ir.size - 1, True)
    wet = scipy.fft.irfft(scipy.fft.rfft(send, size) * snd.ir_spectrum(size), size)[:n]
    out = _sosfilt(snd.master, dry + wet)
    # The fade is 1 between fade-in and fade-out (a sample of margin each side): only the ends.
    fade_in, fade_out = score.fade_span()
    head = min(max(int(math.ceil(fade_in * SR)) + 1 - r0, 0), n)
    tail = min(max(int(math.floor(fade_out * SR)) - 1 - r0, head), n)
    out[:head] *= score.gain_at(np.arange(r0, r0 + head) / SR)
    out[tail:] *= score.gain_at(np.arange(r0 + tail, r0 + n) / SR)
    return out[snd.preroll :]


@njit(cache=True)
def _mix(dry: np.ndarray, send: np.ndarray, stem: np.ndarray, gain: np.float32, send_gain: np.float32) -> None:  # pragma: no cover - compiled
    """``dry += gain * stem; send += send_gain * stem`` without temporaries."""
    for i in range(stem.size):
        dry[i] += gain * stem[i]
        send[i] += send_gain * stem[i]


@njit(cache=True)
def _sosfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``scipy.signal.sosfilt(sos, x).astype(float32)`` (same float64 operations, same result)."""
    z = np.zeros((sos.shape[0], 2))
    out = np.empty(x.size, dtype=np.float32)
    for i in range(x.size):
        xn = float(x[i])
        for s in range(sos.shape[0]):
            xc = sos[s, 0] * xn + z[s, 0]
            z[s, 0] = sos[s, 1] * xn - sos[s, 4] * xc + z[s, 1]
            z[s, 1] = sos[s, 2] * xn - sos[s, 5] * xc
            xn = xc
        out[i] = np.float32(xn)
    return out


class SyntheticSource(Source):
    """Synthetic songs: ``counts`` per split (default 86/14/50), all fixed by ``seed``."""

    spec = "synthetic"

    def __init__(self, seed: int = 0, counts: Optional[dict[str, int]] = None) -> None:
        self.seed = int(seed)
        if seed < 0:
            raise ValueError(f"the synthetic source's seed must be >= 0, got {seed}")
        self.counts = dict(OFFICIAL_COUNTS if counts is None else counts)
        if set(self.counts) != set(SPLITS) or any(int(v) < 0 for v in self.counts.values()):
            raise ValueError(f"counts must give a non-negative number for each of {SPLITS}, got {counts}")
        self._tracks = {
            s: [Track(f"song-{s}-{i:03d}", int(song(self.seed, s, i).seconds * SR)) for i in range(self.counts[s])]
            for s in SPLITS
        }

    def tracks(self, split: str) -> list[Track]:
        return self._tracks[check_split(split)]

    def song(self, split: str, index: int) -> Song:
        """The score of track ``index`` of ``split`` (tempo, key, sections ...)."""
        return song(self.seed, check_split(split), index)

    def _read(self, split: str, index: int, start: int, length: int) -> np.ndarray:
        return render(song(self.seed, split, index), sounds(self.seed, split, index), start, length)
