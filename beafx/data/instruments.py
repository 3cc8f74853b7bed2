"""Sound generators of the synthetic songs: band-limited wavetable oscillators, envelopes,
and a drum kit (book chapter 07, ``book/07_data``).

Everything here is a pure function of explicit random generators, evaluated at arbitrary
sample positions, so a song can be rendered from any point (random access) and reproduces
exactly.

- :class:`Wavetable`: one period of a harmonic spectrum, stored per octave with the
  harmonics above 0.45 x 44.1 kHz removed (mip-mapped, so high notes do not alias) and read
  with linear interpolation; notes can have vibrato and a brightness that decays (a second,
  darker table crossfaded by an envelope: plucked and struck sounds).
- :func:`adsr`: attack-decay-sustain-release envelope, evaluated in closed form.
- :func:`add_note`: one note (oscillators, brightness crossfade, envelope) added to a stem in
  a single compiled numba loop; the same maths as :meth:`Wavetable.render` and :func:`adsr`
  (equal up to float32 rounding) without their small-array overhead.
- :func:`drum_kit`: kick (pitch-swept sine and click), snare (tone and band-passed noise),
  closed and open hi-hats (metallic square-wave clusters), clap, tom and crash, all with
  sharp attacks, rendered once per song.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import signal

SR = 44100
TABLE_SIZE = 2048
#: Lowest fundamental of the first mip level (Hz); each level covers one octave.
_F_LOW = 20.0
_LEVELS = 11


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def harmonic_spectrum(rng: np.random.Generator, kind: str, n: int = 512) -> np.ndarray:
    """Amplitudes of harmonics 1..n of a timbre ``kind``: ``saw``, ``square``, ``triangle``,
    ``organ``, ``sine``, ``formant`` (a random tilt with two resonances), each randomised."""
    h = np.arange(1, n + 1, dtype=np.float64)
    if kind == "saw":
        a = 1.0 / h ** rng.uniform(0.9, 1.2)
    elif kind == "square":
        a = np.where(h % 2 == 1, 1.0 / h ** rng.uniform(0.9, 1.2), rng.uniform(0.0, 0.08) / h)
    elif kind == "triangle":
        a = np.where(h % 2 == 1, 1.0 / h**2, 0.0)
    elif kind == "sine":
        a = np.zeros(n)
        a[0] = 1.0
        a[1:4] = rng.uniform(0.0, 0.15, 3)
    elif kind == "organ":
        a = np.zeros(n)
        for k, lvl in zip((1, 2, 3, 4, 6, 8), rng.uniform(0.0, 1.0, 6)):
            a[k - 1] = lvl
        a[0] = max(a[0], 0.6)
    elif kind == "formant":
        tilt = rng.uniform(0.7, 1.6)
        a = 1.0 / h**tilt
        for _ in range(2):
            centre, width = rng.uniform(2.0, 24.0), rng.uniform(1.5, 6.0)
            a *= 1.0 + rng.uniform(1.0, 5.0) * np.exp(-0.5 * ((h - centre) / width) ** 2)
    else:
        raise ValueError(f"unknown timbre {kind!r}")
    return a


class Wavetable:
    """Mip-mapped single-cycle wavetable of harmonic amplitudes ``amps`` (harmonic 1 first),
    with random harmonic phases from ``rng`` (``None``: sine phases). ``rolloff`` (a harmonic
    number) multiplies harmonic h by ``1 / sqrt(1 + (h / rolloff)^4)``: a brightness fixed
    relative to the pitch, as in most acoustic instruments."""

    def __init__(self, amps: np.ndarray, rng: np.random.Generator | None = None, *, rolloff: float | None = None) -> None:
        amps = np.asarray(amps, dtype=np.float64)
        if rolloff is not None:
            h = np.arange(1, amps.size + 1)
            amps = amps / np.sqrt(1.0 + (h / rolloff) ** 4)
        phases = rng.uniform(0, 2 * np.pi, amps.size) if rng is not None else np.zeros(amps.size)
        tables = []
        for level in range(_LEVELS):
            f_top = _F_LOW * 2.0 ** (level + 1)
            keep = min(amps.size, max(1, int(0.45 * SR / f_top)), TABLE_SIZE // 2 - 1)
            spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
            spec[1 : keep + 1] = amps[:keep] * np.exp(1j * phases[:keep])
            tables.append(np.fft.irfft(spec, TABLE_SIZE))
        scale = 1.0 / (np.max(np.abs(tables[0])) + 1e-12)
        # One guard sample at the end makes interpolation wrap without a modulo.
        self.tables = [np.append(t * scale, t[0] * scale).astype(np.float32) for t in tables]

    def oscillator(self, f0: float, phase0: float = 0.0, depth: float = 0.0) -> tuple[np.ndarray, int, int]:
        """``(table, increment, start)`` of the fixed-point phase accumulator of :meth:`render`."""
        return (self.table_for(f0 * (1.0 + depth)), int(round(f0 * TABLE_SIZE / SR * _ONE)),
                int(round(phase0 * TABLE_SIZE * _ONE)))

    def table_for(self, f0: float) -> np.ndarray:
        level = min(max(math.floor(math.log2(max(f0, _F_LOW) / _F_LOW)), 0), _LEVELS - 1)
        return self.tables[level]

    def render(self, f0: float, first: int, count: int, *, phase0: float = 0.0,
               vibrato: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """``count`` samples (float32) of a note at ``f0`` Hz, starting ``first`` samples after its
        onset. ``phase0`` in cycles; ``vibrato``: (depth as a frequency ratio, rate in Hz).

        The phase is a fixed-point accumulator (11 integer bits for the table index, 20 bits of
        fraction) evaluated in closed form, so any stretch of a note is exact and cheap."""
        depth, rate = vibrato
        n = _ramp(first, count)
        inc = int(round(f0 * TABLE_SIZE / SR * _ONE))
        pos = n * inc
        pos += int(round(phase0 * TABLE_SIZE * _ONE))
        if depth > 0.0:
            t = n / SR
            wobble = f0 * depth * (1.0 - np.cos(2 * np.pi * rate * t)) / (2 * np.pi * rate)
            pos += (wobble * (TABLE_SIZE * _ONE)).astype(np.int64)
        pos &= _MASK
        i = pos >> _FRAC_BITS
        frac = (pos & (_ONE - 1)).astype(np.float32) * np.float32(1.0 / _ONE)
        table = self.table_for(f0 * (1.0 + depth))
        lo = table[i]
        return lo + frac * (table[i + 1] - lo)


_FRAC_BITS = 20
_ONE = 1 << _FRAC_BITS
_MASK = (TABLE_SIZE << _FRAC_BITS) - 1
_RAMP = np.arange(30 * SR, dtype=np.int64)
_RAMP.flags.writeable = False


def _ramp(first: int, count: int) -> np.ndarray:
    """``first + arange(count)`` as int64 (a read-only view when it fits the precomputed ramp)."""
    if first + count <= _RAMP.size:
        return _RAMP[first : first + count]
    return np.arange(first, first + count, dtype=np.int64)


def adsr(first: int, count: int, duration: float, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """``count`` samples (float32) of an envelope starting ``first`` samples after note-on:
    linear attack to 1, exponential decay (time constant ``decay``, s) toward ``sustain``, and
    after ``duration`` seconds an exponential release (time constant ``release``) from the
    level reached at note-off."""
    attack = max(attack, 1e-4)
    a_end, off = int(round(attack * SR)), int(round(duration * SR))
    out = np.empty(count, dtype=np.float32)
    last = first + count
    edges = [first, min(max(a_end, first), last), min(max(off, first), last), last]
    if off < a_end:  # released during the attack
        edges[1] = edges[2] = min(max(off, first), last)
    t = lambda lo, hi: np.arange(lo, hi, dtype=np.float32) / np.float32(SR)  # noqa: E731
    s0, s1, s2 = edges[0], edges[1], edges[2]
    if s1 > s0:
        out[: s1 - s0] = t(s0, s1) / np.float32(attack)
    if s2 > s1:
        out[s1 - s0 : s2 - s0] = sustain + (1.0 - sustain) * np.exp(-(t(s1, s2) - np.float32(attack)) / np.float32(decay))
    if last > s2:
        off_s = off / SR
        level = off_s / attack if off < a_end else sustain + (1.0 - sustain) * math.exp(-(off_s - attack) / decay)
        out[s2 - s0 :] = np.float32(level) * np.exp(-(t(s2, last) - np.float32(off_s)) / np.float32(release))
    return out


_NO_TABLE = np.zeros(0, dtype=np.float32)


def add_note(out: np.ndarray, a: int, first: int, count: int, f0: float, phase0: float, velocity: float,
             duration: float, table: Wavetable, vibrato: tuple[float, float] = (0.0, 0.0), detune: float = 0.0,
             dark: Wavetable | None = None, bright_tau: float = 1.0, attack: float = 0.01, decay: float = 0.3,
             sustain: float = 0.5, release: float = 0.1) -> None:
    """Add samples ``first .. first + count`` (after the onset) of a note to ``out[a : a + count]``
    (float32): ``table.render`` (vibrato ``(depth, rate)``), averaged with a second oscillator at
    ``f0 * detune`` if ``detune``, crossfaded toward ``dark`` with time constant ``bright_tau``
    (s) if given, times :func:`adsr` and ``velocity ** 1.7``."""
    depth, rate = vibrato
    t1, inc1, p1 = table.oscillator(f0, phase0, depth)
    t2, inc2, p2 = table.oscillator(f0 * detune, (phase0 + 0.37) % 1.0) if detune else (_NO_TABLE, 0, 0)
    td, incd, pd = dark.oscillator(f0, phase0) if dark is not None else (_NO_TABLE, 0, 0)
    attack = max(attack, 1e-4)
    a_end, off = int(round(attack * SR)), int(round(duration * SR))
    off_s = off / SR
    level = off_s / attack if off < a_end else sustain + (1.0 - sustain) * math.exp(-(off_s - attack) / decay)
    f32 = np.float32
    _note_kernel(out, a, first, count, t1, inc1, p1, f0 * depth if depth > 0.0 else 0.0, 2 * np.pi * rate,
                 t2, inc2, p2, td, incd, pd, f32(-1.0 / (bright_tau * SR)), min(a_end, off), off,
                 f32(attack), f32(decay), f32(sustain), f32(1.0 - sustain), f32(level), f32(off_s), f32(release),
                 f32(velocity**1.7))


@njit(cache=True)
def _osc(table: np.ndarray, pos: int) -> np.float32:  # pragma: no cover - compiled
    """One interpolated table read at fixed-point phase ``pos`` (as in :meth:`Wavetable.render`)."""
    pos &= _MASK
    i = pos >> _FRAC_BITS
    frac = np.float32(pos & (_ONE - 1)) * np.float32(1.0 / _ONE)
    lo = table[i]
    return lo + frac * (table[i + 1] - lo)


#: Samples between exact evaluations of the kernel's exponentials and vibrato (at multiples of
#: it after the onset, so a sample's value does not depend on where a render starts); in between
#: they advance by one multiplication (or rotation) per sample, in float64 (drift ~1e-14).
_BLOCK = 64


@njit(cache=True)
def _note_kernel(out, a, first, count, t1, inc1, p1, fd, w, t2, inc2, p2, td, incd, pd, fade_k,
                 b1, b2, att, dec, sus, one_minus_sus, level, off_s, rel, vel):  # pragma: no cover - compiled
    """The loop of :func:`add_note`: samples before ``b1`` attack, before ``b2`` decay, then release."""
    scale = float(TABLE_SIZE * _ONE)
    inv_att = 1.0 / (SR * float(att))
    fade_r = math.exp(float(fade_k))
    dec_r = math.exp(-1.0 / (SR * float(dec)))
    rel_r = math.exp(-1.0 / (SR * float(rel)))
    w1 = w / SR
    rot_c, rot_s = math.cos(w1), math.sin(w1)
    last = first + count
    for k0 in range(first - first % _BLOCK, last, _BLOCK):  # blocks aligned to the onset
        t0 = k0 / SR
        fade = math.exp(k0 * float(fade_k)) if td.size > 0 else 0.0
        e_dec = math.exp(-(t0 - float(att)) / float(dec)) if k0 + _BLOCK > b1 and k0 < b2 else 0.0
        e_rel = math.exp(-(t0 - float(off_s)) / float(rel)) if k0 + _BLOCK > b2 else 0.0
        c, s = (math.cos(w1 * k0), math.sin(w1 * k0)) if fd > 0.0 else (1.0, 0.0)
        for k in range(k0, min(k0 + _BLOCK, last)):
            if k >= first:
                pos = k * inc1 + p1
                if fd > 0.0:
                    pos += np.int64(fd * (1.0 - c) / w * scale)
                osc = _osc(t1, pos)
                if t2.size > 0:
                    osc = (osc + _osc(t2, k * inc2 + p2)) * np.float32(0.5)
                if td.size > 0:
                    d = _osc(td, k * incd + pd)
                    osc = (osc - d) * np.float32(fade) + d
                if k < b1:
                    env = np.float32(k * inv_att)
                elif k < b2:
                    env = sus + one_minus_sus * np.float32(e_dec)
                else:
                    env = level * np.float32(e_rel)
                out[a + k - first] += env * vel * osc
            if fd > 0.0:
                c, s = c * rot_c - s * rot_s, s * rot_c + c * rot_s
            fade *= fade_r
            e_dec *= dec_r
            e_rel *= rel_r


def release_tail(release: float) -> float:
    """Seconds after note-off until the release is below -52 dB (6 time constants)."""
    return 6.0 * release


# --------------------------------------------------------------------------------------------
# Drums
# --------------------------------------------------------------------------------------------


def _exp_env(n: int, tau: float, attack: float = 0.0005) -> np.ndarray:
    t = np.arange(n) / SR
    return (np.minimum(1.0, t / attack) * np.exp(-t / tau)).astype(np.float32)


def _band_noise(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    sos = signal.butter(2, [low, min(high, 0.45 * SR)], btype="bandpass", fs=SR, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n)).astype(np.float32)


def _metal(rng: np.random.Generator, n: int, base: float) -> np.ndarray:
    """A cluster of six inharmonic square waves (the classic drum-machine cymbal source)."""
    t = np.arange(n) / SR
    ratios = np.array([1.0, 1.4471, 1.6170, 1.9265, 2.5028, 2.6637]) * rng.uniform(0.95, 1.05, 6)
    x = sum(np.sign(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 2 * np.pi))) for r in ratios)
    return x.astype(np.float32)


def _normalize(x: np.ndarray) -> np.ndarray:
    return (x / (np.max(np.abs(x)) + 1e-12)).astype(np.float32)


@dataclass
class DrumKit:
    """One-shot drum samples (float32, peak 1) at 44.1 kHz."""

    kick: np.ndarray
    snare: np.ndarray
    clap: np.ndarray
    hat: np.ndarray
    open_hat: np.ndarray
    tom: np.ndarray
    crash: np.ndarray


def drum_kit(rng: np.random.Generator) -> DrumKit:
    """A randomised drum kit (pitches, decays, noise colours, click and drive vary)."""
    # Kick: sine swept from ~150 Hz down to its body pitch, a noise click, soft saturation.
    n = int(rng.uniform(0.25, 0.6) * SR)
    t = np.arange(n) / SR
    f_end, f_start, tau_p = rng.uniform(42, 65), rng.uniform(110, 220), rng.uniform(0.015, 0.05)
    phase = 2 * np.pi * (f_end * t + (f_start - f_end) * tau_p * (1 - np.exp(-t / tau_p)))
    body = np.sin(phase) * _exp_env(n, rng.uniform(0.12, 0.35), attack=0.0008)
    click = _band_noise(rng, n, 1500, 9000) * _exp_env(n, rng.uniform(0.002, 0.006), attack=0.0002)
    kick = np.tanh(rng.uniform(1.0, 3.0) * (body + rng.uniform(0.1, 0.4) * _normalize(click)))
    # Snare: two damped tones and band-passed noise.
    n = int(0.45 * SR)
    t = np.arange(n) / SR
    f1 = rng.uniform(160, 240)
    tone = (np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * 1.6 * f1 * t)) * _exp_env(n, rng.uniform(0.03, 0.08))
    rattle = _band_noise(rng, n, rng.uniform(800, 2500), rng.uniform(7000, 14000)) * _exp_env(n, rng.uniform(0.06, 0.16))
    snare = _normalize(rng.uniform(0.3, 0.8) * _normalize(tone) + _normalize(rattle))
    # Clap: three quick noise bursts and a tail.
    n = int(0.35 * SR)
    burst = _band_noise(rng, n, 900, 5000)
    env = np.zeros(n, dtype=np.float32)
    for k, delay in enumerate((0.0, 0.011, 0.022)):
        d = int(delay * SR)
        env[d:] += _exp_env(n - d, 0.006 if k < 2 else rng.uniform(0.05, 0.12), attack=0.0003)
    clap = _normalize(burst * env)
    # Hats: metallic clusters (or plain noise) through a high-pass.
    hp = signal.butter(2, rng.uniform(6000, 9000), btype="highpass", fs=SR, output="sos")
    n = int(0.7 * SR)
    source = _metal(rng, n, rng.uniform(300, 500)) if rng.random() < 0.6 else rng.standard_normal(n).astype(np.float32)
    bright = signal.sosfilt(hp, source).astype(np.float32)
    hat = _normalize(bright[: int(0.15 * SR)] * _exp_env(int(0.15 * SR), rng.uniform(0.012, 0.045), attack=0.0003))
    open_hat = _normalize(bright * _exp_env(n, rng.uniform(0.12, 0.3), attack=0.0005))
    # Tom: pitched like the kick, higher.
    n = int(0.5 * SR)
    t = np.arange(n) / SR
    f_t = rng.uniform(90, 180)
    tom = _normalize(np.sin(2 * np.pi * (f_t * t + 0.3 * f_t * 0.03 * (1 - np.exp(-t / 0.03)))) * _exp_env(n, rng.uniform(0.12, 0.25)))
    # Crash: long bright noise.
    n = int(2.0 * SR)
    hp2 = signal.butter(2, rng.uniform(3000, 6000), btype="highpass", fs=SR, output="sos")
    crash = _normalize(signal.sosfilt(hp2, rng.standard_normal(n)).astype(np.float32) * _exp_env(n, rng.uniform(0.4, 0.9), attack=0.001))
    return DrumKit(_normalize(kick), snare, clap, hat, open_hat, tom, crash)


def reverb_ir(rng: np.random.Generator, rt60: float, *, max_seconds: float = 1.2) -> np.ndarray:
    """Impulse response of a diffuse room: exponentially decaying noise (-60 dB after ``rt60``
    seconds), darker as it decays, with a few early reflections; truncated at ``max_seconds``."""
    n = int(min(rt60, max_seconds) * SR)
    t = np.arange(n) / SR
    noise = rng.standard_normal(n)
    low = signal.sosfilt(signal.butter(1, 2500, fs=SR, output="sos"), noise)
    mix = np.exp(-t / (0.25 * rt60))  # high frequencies die first
    tail = (mix * noise + (1 - mix) * low) * np.exp(-6.91 * t / rt60)
    for _ in range(6):
        k = int(rng.uniform(0.005, 0.05) * SR)
        if k < n:
            tail[k] += rng.uniform(0.3, 0.8) * rng.choice([-1.0, 1.0])
    tail[: int(0.004 * SR)] = 0.0  # pre-delay
    return (tail / np.sqrt(np.sum(tail**2) + 1e-12)).astype(np.float32)
