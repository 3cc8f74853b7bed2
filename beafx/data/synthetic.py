"""``synthetic``: procedurally generated songs, the embedded default source
(book chapter 07, ``book/07_data``).

MUSDB18 cannot be downloaded everywhere, so beafx makes its own music: 86/14/50 songs per
seed (MUSDB18's split sizes, so an epoch has the paper's size), each 1.5-5 minutes long, with
drums (transient-rich kick, snare, clap, hats, toms, crash), bass, chords (pad, keys, stabs or
arpeggio) and a lead melody, in a random tempo, key, mode, form, timbre, mix balance and
dynamics (sections of different energy, a fade-out), in a small room reverb. The score comes
from :mod:`beafx.data.music`, the sounds from :mod:`beafx.data.instruments`.

Any stretch of a song is rendered directly (random access: only the notes that sound in it
are synthesised, plus a short pre-roll for the reverb), deterministically, at well over 50x
real time on one core. That the result is music-like enough for mastering effects is measured
by :mod:`beafx.data.stats` against real recordings (``tests/test_data_synthetic.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy import signal

from .base import OFFICIAL_COUNTS, SPLITS, Source, Track, check_split
from .instruments import SR, DrumKit, Wavetable, adsr, drum_kit, harmonic_spectrum, midi_to_hz, release_tail, reverb_ir
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
        bar = song.bar_seconds
        # How far back a note can start and still sound (seconds).
        self.lookback = {
            "drums": self.kit.crash.size / SR,
            "bass": bar + release_tail(self.bass.release),
            "chords": song.chord_bars * bar + release_tail(self.chords.release),
            "lead": 0.5 * bar + release_tail(self.lead.release),
        }


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
    f0 = float(midi_to_hz(note.pitch))
    phase0 = (note.onset * 7919.0 + note.pitch * 0.618) % 1.0
    osc = voice.table.render(f0, first, count, phase0=phase0, vibrato=voice.vibrato)
    if voice.detune:
        osc += voice.table.render(f0 * voice.detune, first, count, phase0=(phase0 + 0.37) % 1.0)
        osc *= np.float32(0.5)
    if voice.dark is not None:
        dark = voice.dark.render(f0, first, count, phase0=phase0)
        fade = np.exp(np.arange(first, first + count, dtype=np.float32) * np.float32(-1.0 / (voice.bright_tau * SR)))
        osc -= dark
        osc *= fade
        osc += dark
    env = adsr(first, count, note.duration, voice.attack, voice.decay, voice.sustain, voice.release)
    env *= np.float32(note.velocity**1.7)
    env *= osc
    stem[a:b] += env


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
            if voice.lowpass is not None:
                stem = signal.sosfilt(voice.lowpass, stem).astype(np.float32)
            gain, level = voice.gain, voice.send
        dry += np.float32(gain) * stem
        send += np.float32(gain * level) * stem
    wet = signal.oaconvolve(send, snd.ir)[:n].astype(np.float32)
    out = dry + wet
    out = signal.sosfilt(snd.master, out).astype(np.float32)
    out *= score.gain_at(np.arange(r0, r0 + n) / SR)
    return out[snd.preroll :]


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
