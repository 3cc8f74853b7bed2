"""The score of a synthetic song: tempo, key, form, chords and the notes of each bar
(book chapter 07, ``book/07_data``).

A :class:`Song` is drawn from a seed: a tempo (72-168 BPM), swing, a key and mode, chord
progressions for verse and chorus, a form (intro, verses, choruses, a bridge or breakdown,
outro; about 1-5 minutes), styles for the drums, bass, chords and lead, and an energy per section
that decides which instruments play, how hard, and how busy the hats are. :meth:`Song.notes`
returns the notes of one instrument in one bar; each bar has its own random generator, so any
bar can be computed alone (random access) and always gives the same notes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Instruments of a song, in mixing order.
INSTRUMENTS = ("drums", "bass", "chords", "lead")

#: Drum sounds: the ``pitch`` of a drum note is one of these indices.
KICK, SNARE, CLAP, HAT, OPEN_HAT, TOM, CRASH = range(7)

MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}

#: Chord progressions as scale degrees (0 = tonic), per mode family.
PROGRESSIONS = {
    "major": [(0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 3), (5, 3, 0, 4), (1, 4, 0, 0), (0, 3, 0, 4), (3, 4, 2, 5)],
    "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4), (5, 6, 0, 0)],
    "dorian": [(0, 3, 0, 3), (0, 6, 3, 0), (0, 1, 0, 6)],
    "mixolydian": [(0, 6, 3, 0), (0, 3, 6, 0), (0, 6, 0, 3)],
}

DRUM_STYLES = ("rock", "four", "halftime", "break", "shuffle")
BASS_STYLES = ("whole", "half", "quarters", "eighths", "syncopated", "funky")
CHORD_STYLES = ("pad", "stabs", "keys", "arp")

#: Section kinds: (energy range, probability of drums, bass, lead).
SECTION_KINDS = {
    "intro": ((0.25, 0.5), 0.5, 0.5, 0.1),
    "verse": ((0.5, 0.8), 0.95, 0.95, 0.45),
    "chorus": ((0.8, 1.0), 1.0, 1.0, 0.9),
    "bridge": ((0.3, 0.65), 0.5, 0.6, 0.5),
    "outro": ((0.3, 0.6), 0.6, 0.8, 0.2),
}

FORMS = (
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "bridge", "chorus", "chorus", "outro"),
    ("intro", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "chorus", "verse", "chorus", "verse", "chorus", "outro"),
)

# Purposes of the per-bar generators (part of their seeds).
_PURPOSE = {"song": 0, "drums": 1, "bass": 2, "chords": 3, "lead": 4, "motif": 5, "sounds": 6}


@dataclass(frozen=True)
class Note:
    """A note: ``onset`` and ``duration`` (note-on time) in seconds from the song's start,
    ``pitch`` (MIDI number; for drums a drum index), ``velocity`` in (0, 1]."""

    onset: float
    duration: float
    pitch: float
    velocity: float


@dataclass(frozen=True)
class Section:
    kind: str
    start_bar: int
    bars: int
    energy: float
    drums: bool
    bass: bool
    lead: bool
    busy_hats: bool
    progression: tuple[int, ...]


@dataclass
class Song:
    """The score of one synthetic song, drawn from ``key`` (a tuple of non-negative ints)."""

    key: tuple[int, ...]
    bpm: float = 0.0
    swing: float = 0.0
    swing_unit: int = 1
    tonic: int = 0
    mode: str = "major"
    chord_bars: int = 1
    drum_style: str = "rock"
    bass_style: str = "quarters"
    chord_style: str = "pad"
    seventh: bool = False
    stab_pattern: tuple[int, ...] = ()
    arp_updown: bool = False
    sections: list[Section] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = self.rng("song")
        self.bpm = float(rng.uniform(72, 168))
        self.swing = float(rng.uniform(0.08, 0.3)) if rng.random() < 0.3 else 0.0
        self.swing_unit = int(rng.choice([1, 2]))
        self.tonic = int(rng.integers(0, 12))
        self.mode = str(rng.choice(list(MODES), p=[0.4, 0.35, 0.15, 0.1]))
        self.chord_bars = int(rng.choice([1, 2], p=[0.6, 0.4]))
        self.drum_style = str(rng.choice(DRUM_STYLES, p=[0.3, 0.25, 0.15, 0.15, 0.15]))
        if self.drum_style == "shuffle":
            self.swing, self.swing_unit = float(rng.uniform(0.25, 0.33)), 2
        self.bass_style = str(rng.choice(BASS_STYLES))
        self.chord_style = str(rng.choice(CHORD_STYLES, p=[0.35, 0.2, 0.3, 0.15]))
        self.seventh = bool(rng.random() < 0.35)
        self.stab_pattern = [(0, 6, 12), (2, 6, 10, 14), (0, 3, 6, 10, 12)][int(rng.integers(3))]
        self.arp_updown = bool(rng.random() < 0.5)
        progressions = PROGRESSIONS[self.mode]
        verse_prog = progressions[int(rng.integers(len(progressions)))]
        chorus_prog = progressions[int(rng.integers(len(progressions)))]
        form = FORMS[int(rng.integers(len(FORMS)))]
        bar = 0
        for kind in form:
            (e_lo, e_hi), p_drums, p_bass, p_lead = SECTION_KINDS[kind]
            if kind in ("intro", "outro"):
                bars = int(rng.choice([4, 8]))
            elif kind == "verse":
                bars = int(rng.choice([8, 16]))
            else:
                bars = int(rng.choice([8, 8, 16]))
            energy = float(rng.uniform(e_lo, e_hi))
            self.sections.append(
                Section(
                    kind=kind,
                    start_bar=bar,
                    bars=bars,
                    energy=energy,
                    drums=bool(rng.random() < p_drums),
                    bass=bool(rng.random() < p_bass),
                    lead=bool(rng.random() < p_lead),
                    busy_hats=bool(energy > 0.5 and rng.random() < (0.8 if self.bpm < 105 else 0.45)),
                    progression=chorus_prog if kind == "chorus" else verse_prog,
                )
            )
            bar += bars

    # ---------------------------------------------------------------------------------------
    def rng(self, purpose: str, *index: int) -> np.random.Generator:
        return np.random.default_rng([*self.key, _PURPOSE[purpose], *index])

    @property
    def bar_seconds(self) -> float:
        return 4 * 60.0 / self.bpm

    @property
    def step_seconds(self) -> float:
        return self.bar_seconds / 16

    @property
    def num_bars(self) -> int:
        return self.sections[-1].start_bar + self.sections[-1].bars

    @property
    def seconds(self) -> float:
        """Length including a 2 s tail for the last notes and the reverb."""
        return self.num_bars * self.bar_seconds + 2.0

    def section_at(self, bar: int) -> Section | None:
        for s in self.sections:
            if s.start_bar <= bar < s.start_bar + s.bars:
                return s
        return None

    def step_time(self, bar: int, step: float) -> float:
        """Onset time (s) of 16th ``step`` of ``bar``, with swing on off-beat 16ths or 8ths."""
        unit = self.swing_unit
        off = (int(step) % (2 * unit)) == unit and float(step).is_integer()
        return (bar * 16 + step + (self.swing * unit if off else 0.0)) * self.step_seconds

    def scale_pitch(self, degree: int, octave_of_tonic: int) -> int:
        """MIDI pitch of scale ``degree`` (may exceed 0..6) above the tonic in ``octave_of_tonic``."""
        scale = MODES[self.mode]
        octave, d = divmod(degree, 7)
        return 12 * (octave_of_tonic + octave + 1) + self.tonic + scale[d]

    def chord_at(self, bar: int) -> tuple[int, list[int]]:
        """``(root degree, pitch classes)`` of the chord playing in ``bar``."""
        section = self.section_at(bar)
        prog = section.progression if section else (0,)
        root = prog[((bar - (section.start_bar if section else 0)) // self.chord_bars) % len(prog)]
        degrees = [root, root + 2, root + 4] + ([root + 6] if self.seventh else [])
        return root, [self.scale_pitch(d, 0) % 12 for d in degrees]

    # ---------------------------------------------------------------------------------------
    def notes(self, instrument: str, bar: int) -> list[Note]:
        """The notes ``instrument`` plays in ``bar`` (empty outside the song)."""
        section = self.section_at(bar)
        if section is None:
            return []
        rng = self.rng(instrument, bar)
        return {"drums": self._drums, "bass": self._bass, "chords": self._chords, "lead": self._lead}[instrument](
            bar, section, rng
        )

    def _vel(self, rng: np.random.Generator, section: Section, accent: float = 1.0) -> float:
        v = (0.35 + 0.65 * section.energy) * accent * rng.uniform(0.85, 1.0)
        return float(min(1.0, max(0.05, v)))

    def _drums(self, bar: int, section: Section, rng: np.random.Generator) -> list[Note]:
        if not section.drums:
            return []
        style, steps = self.drum_style, []
        if style == "four":
            steps += [(s, KICK, 1.0) for s in (0, 4, 8, 12)]
            steps += [(s, CLAP if rng.random() < 0.5 else SNARE, 0.9) for s in (4, 12)]
            steps += [(s, OPEN_HAT, 0.7) for s in (2, 6, 10, 14)]
        elif style == "halftime":
            steps += [(0, KICK, 1.0), (8, SNARE, 1.0)] + ([(10, KICK, 0.8)] if rng.random() < 0.6 else [])
        elif style == "break":
            steps += [(0, KICK, 1.0), (10, KICK, 0.9), (4, SNARE, 1.0), (12, SNARE, 1.0)]
            steps += [(s, SNARE, 0.35) for s in (7, 9, 15) if rng.random() < 0.4]
            if rng.random() < 0.5:
                steps.append((3, KICK, 0.7))
        else:  # rock and shuffle
            steps += [(0, KICK, 1.0), (8, KICK, 0.95), (4, SNARE, 1.0), (12, SNARE, 1.0)]
            steps += [(s, KICK, 0.75) for s in (6, 10, 14) if rng.random() < 0.3]
        if style != "four" or section.busy_hats:
            hat_steps = range(0, 16, 1 if section.busy_hats else 2)
            if style == "shuffle":
                hat_steps = (0, 2, 4, 6, 8, 10, 12, 14)
            steps += [(s, HAT, 0.8 if s % 4 == 0 else 0.55) for s in hat_steps]
        last_bar = bar == section.start_bar + section.bars - 1
        if last_bar and section.bars >= 4 and rng.random() < 0.7:  # a fill into the next section
            steps = [st for st in steps if st[0] < 8]
            steps += [(s, SNARE if rng.random() < 0.6 else TOM, 0.5 + 0.03 * s) for s in range(8, 16, int(rng.choice([1, 2])))]
        if bar == section.start_bar and section.kind in ("chorus", "verse") and rng.random() < 0.7:
            steps.append((0, CRASH, 0.9))
        notes = []
        for step, drum, accent in steps:
            jitter = rng.normal(0.0, 0.003)
            notes.append(Note(max(0.0, self.step_time(bar, step) + jitter), 0.0, float(drum), self._vel(rng, section, accent)))
        return notes

    def _bass(self, bar: int, section: Section, rng: np.random.Generator) -> list[Note]:
        if not section.bass:
            return []
        root, _ = self.chord_at(bar)
        root_pitch = self.scale_pitch(root, 1)  # MIDI 24 + tonic + ...: octave 1-2
        while root_pitch > 43:
            root_pitch -= 12
        while root_pitch < 28:
            root_pitch += 12
        style = self.bass_style
        if style == "whole":
            pattern = [(0, 16)]
        elif style == "half":
            pattern = [(0, 8), (8, 8)]
        elif style == "quarters":
            pattern = [(s, 4) for s in (0, 4, 8, 12)]
        elif style == "eighths":
            pattern = [(s, 2) for s in range(0, 16, 2)]
        elif style == "syncopated":
            pattern = [(0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2)]
        else:  # funky: a random 16th rhythm that always hits the downbeat
            onsets = [0] + [s for s in range(1, 16) if rng.random() < (0.5 if s % 4 == 0 else 0.25)]
            pattern = [(s, (onsets + [16])[k + 1] - s) for k, s in enumerate(onsets)]
        legato = rng.uniform(0.55, 0.95)
        notes = []
        for k, (step, length) in enumerate(pattern):
            pitch = root_pitch
            if k > 0 and rng.random() < 0.25:
                pitch = root_pitch + int(rng.choice([7, 12, -5, 10 if self.mode != "major" else 11]))
            t0 = self.step_time(bar, step) + rng.normal(0.0, 0.004)
            notes.append(Note(max(0.0, t0), legato * length * self.step_seconds, float(pitch), self._vel(rng, section, 1.0 if step % 4 == 0 else 0.85)))
        return notes

    def _voicing(self, pitch_classes: list[int], centre: int = 62) -> list[int]:
        return sorted(centre - 6 + (pc - (centre - 6)) % 12 for pc in pitch_classes)

    def _chords(self, bar: int, section: Section, rng: np.random.Generator) -> list[Note]:
        _, pcs = self.chord_at(bar)
        voicing = self._voicing(pcs)
        style, notes = self.chord_style, []
        changes = (bar - section.start_bar) % self.chord_bars == 0
        if style == "pad":
            if changes:
                length = self.chord_bars * self.bar_seconds * 0.98
                notes = [Note(self.step_time(bar, 0), length, float(p), self._vel(rng, section, 0.8)) for p in voicing]
        elif style == "keys":
            rhythm = [(0, 8), (8, 8)] if rng.random() < 0.6 else [(0, 4), (4, 4), (8, 4), (12, 4)]
            for step, length in rhythm:
                t0 = self.step_time(bar, step) + rng.normal(0.0, 0.004)
                notes += [Note(max(0.0, t0 + 0.004 * i), length * self.step_seconds * 0.9, float(p), self._vel(rng, section, 0.8)) for i, p in enumerate(voicing)]
        elif style == "stabs":
            for step in self.stab_pattern:
                notes += [Note(self.step_time(bar, step), 1.5 * self.step_seconds, float(p), self._vel(rng, section, 0.85)) for p in voicing]
        else:  # arp: 8ths or 16ths through the chord tones, up or up-down
            rate = 2 if section.energy < 0.7 else 1
            tones = voicing + [v + 12 for v in voicing]
            order = tones + tones[-2:0:-1] if self.arp_updown else tones
            for k, step in enumerate(range(0, 16, rate)):
                notes.append(Note(self.step_time(bar, step), rate * self.step_seconds * 0.8, float(order[k % len(order)]), self._vel(rng, section, 0.75)))
        return notes

    def _motif(self, section_index: int) -> list[tuple[int, int, int]]:
        """A two-bar motif of (step 0-31, length in steps, scale-degree offset)."""
        rng = self.rng("motif", section_index)
        motif, step, degree = [], 0, int(rng.integers(0, 5))
        while step < 32:
            length = int(rng.choice([2, 2, 4, 4, 6, 8, 3]))
            if rng.random() < 0.2:
                step += length  # a rest
                continue
            motif.append((step, min(length, 32 - step), degree))
            degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3, 4]))
            degree = min(max(degree, -3), 9)
            step += length
        return motif

    def _lead(self, bar: int, section: Section, rng: np.random.Generator) -> list[Note]:
        if not section.lead:
            return []
        index = self.sections.index(section)
        motif = self._motif(index)
        half = (bar - section.start_bar) % 2
        transpose = 0 if ((bar - section.start_bar) // 2) % 2 == 0 else int(self.rng("motif", index, 1).integers(-2, 3))
        _, pcs = self.chord_at(bar)
        notes = []
        for step, length, degree in motif:
            if step // 16 != half:
                continue
            pitch = self.scale_pitch(degree + transpose, 4)  # around MIDI 60-84
            if step % 8 == 0 and pitch % 12 not in pcs:  # strong beats land on chord tones
                target = pitch
                pitch = min((p for p in range(target - 4, target + 5) if p % 12 in pcs), key=lambda p: abs(p - target))
            t0 = self.step_time(bar, step % 16) + rng.normal(0.0, 0.006)
            notes.append(Note(max(0.0, t0), 0.9 * length * self.step_seconds, float(pitch), self._vel(rng, section, 0.9)))
        return notes

    def fade_span(self) -> tuple[float, float]:
        """``(end of the fade-in, start of the fade-out)`` in seconds: :meth:`gain_at` is 1 between."""
        end = self.num_bars * self.bar_seconds
        outro = self.sections[-1]
        fade_start = (outro.start_bar + outro.bars / 2) * self.bar_seconds
        return 0.05, end - max(end - fade_start, 1e-3)

    def gain_at(self, t: np.ndarray) -> np.ndarray:
        """Song-level fade: a short fade-in and a fade-out over the outro's second half (float32)."""
        end = self.num_bars * self.bar_seconds
        outro = self.sections[-1]
        fade_start = (outro.start_bar + outro.bars / 2) * self.bar_seconds
        g = np.clip(t / 0.05, 0.0, 1.0)
        g = g * np.clip((end - t) / max(end - fade_start, 1e-3), 0.0, 1.0) ** 1.5
        return g.astype(np.float32)


def bars_between(song: Song, t0: float, t1: float) -> range:
    """Bars whose span intersects [t0, t1) seconds (clipped to the song)."""
    b0 = max(0, int(math.floor(t0 / song.bar_seconds)))
    b1 = min(song.num_bars, int(math.floor(t1 / song.bar_seconds)) + 1)
    return range(b0, max(b0, b1))
