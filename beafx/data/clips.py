"""Clip sampling as the authors did it (book chapter 07, ``book/07_data``;
``reference/AUTHORS_CODE.md`` section 5).

A clip is a uniformly random crop of a track (its length comes from the profile: 10 s in the
paper), mixed to mono, peak-normalised to 1 and multiplied by a random sign. A crop whose
peak is below 1e-5 (digital silence, e.g. a track's lead-in) is drawn again at another
position, at most :data:`MAX_TRIES` times. Tracks shorter than the clip are zero-padded
(MUSDB18's 7 s previews against a 10 s clip); :func:`warn_short_tracks` says so once.
"""
from __future__ import annotations

import warnings

import numpy as np

from .base import Source

#: Crops with a peak below this are re-drawn (the authors' threshold).
SILENT_PEAK = 1e-5

#: How many crops are tried before giving up on a silent track.
MAX_TRIES = 50


class SilentTrackError(RuntimeError):
    """Every crop tried from a track was (near) silent."""


def sample_clip(
    source: Source, split: str, index: int, rng: np.random.Generator, length: int, *, max_tries: int = MAX_TRIES
) -> tuple[np.ndarray, int]:
    """One clip of track ``index`` of ``split``: ``(clip float32 (length,), start sample)``.

    ``clip`` has peak 1 and a random polarity; everything random comes from ``rng``.
    Raises :class:`SilentTrackError` after ``max_tries`` silent crops."""
    if length <= 0:
        raise ValueError(f"clip length must be positive, got {length}")
    track = source.tracks(split)[index]
    last_start = max(0, track.num_samples - length)
    for _ in range(max_tries):
        start = int(rng.integers(0, last_start + 1))
        clip = source.read(split, index, start, length)
        peak = float(np.max(np.abs(clip)))
        if peak >= SILENT_PEAK:
            break
    else:
        raise SilentTrackError(
            f"{source.spec}: {max_tries} random {length}-sample crops of {split} track {track.name!r} were all "
            f"silent (peak < {SILENT_PEAK}); the file may be empty or digital silence: remove it from the source"
        )
    clip = clip / np.float32(peak)
    if rng.standard_normal() < 0:  # the authors' sign(N(0, 1))
        clip = -clip
    return clip.astype(np.float32, copy=False), start


def warn_short_tracks(source: Source, split: str, length: int) -> int:
    """Warn (once per call) if tracks of ``split`` are shorter than ``length`` samples (they
    are zero-padded); return how many are."""
    short = [t for t in source.tracks(split) if t.num_samples < length]
    if short:
        shortest = min(t.num_samples for t in short) / source.sample_rate
        warnings.warn(
            f"{source.spec}: {len(short)} of {len(source.tracks(split))} {split} tracks are shorter than the "
            f"{length / source.sample_rate:.1f} s clip (shortest {shortest:.1f} s): their clips are zero-padded "
            "at the end. Use a shorter clip (profile) or full-length tracks to avoid padding.",
            stacklevel=2,
        )
    return len(short)
