"""What every data source offers: tracks per split and random access to mono audio
(book chapter 07, ``book/07_data``).

A :class:`Source` has three splits (``train``, ``valid``, ``test``), each a list of
:class:`Track` (a name and a length in samples at 44.1 kHz), and one reading method,
:meth:`Source.read`, that returns any stretch of a track as mono float32. Clip sampling
(:mod:`beafx.data.clips`) and the dataset (:mod:`beafx.data.dataset`) only use this
interface, so MUSDB18, a folder of files, Debian's music and the synthetic songs all feed
the same pipeline.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from ..profiles import SAMPLE_RATE

#: The three splits, in order.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: MUSDB18's official number of tracks per split (the paper's 86/14/50).
OFFICIAL_COUNTS: dict[str, int] = {"train": 86, "valid": 14, "test": 50}


class MissingDependencyError(RuntimeError):
    """A source needs a program or package that is not installed (the message says how to
    install it)."""


def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ``ValueError``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
    return split


@dataclass(frozen=True)
class Track:
    """One track of a source: ``name`` and length ``num_samples`` at the source's sample rate."""

    name: str
    num_samples: int

    def seconds(self, sample_rate: int = SAMPLE_RATE) -> float:
        return self.num_samples / sample_rate


class Source(abc.ABC):
    """A collection of mono tracks at 44.1 kHz split into train/valid/test.

    Subclasses implement :meth:`tracks` and :meth:`_read`. Sources are picklable and cheap
    to copy into DataLoader workers (open files are reopened lazily in each process).
    """

    #: The source as written on the command line (``synthetic``, ``folder:PATH`` ...).
    spec: str = ""
    sample_rate: int = SAMPLE_RATE
    splits: tuple[str, ...] = SPLITS

    @abc.abstractmethod
    def tracks(self, split: str) -> list[Track]:
        """The tracks of ``split`` (``train``, ``valid`` or ``test``), in a fixed order."""

    @abc.abstractmethod
    def _read(self, split: str, index: int, start: int, length: int) -> np.ndarray:
        """Samples ``[start, start + length)`` of a track, with ``0 <= start`` and
        ``start + length <= num_samples``: float32 ``(length,)``."""

    def read(self, split: str, index: int, start: int, length: int) -> np.ndarray:
        """Mono float32 ``(length,)``: samples ``[start, start + length)`` of track ``index`` of
        ``split``; the part past the end of the track (short tracks) is zeros."""
        tracks = self.tracks(check_split(split))
        if not 0 <= index < len(tracks):
            raise IndexError(f"{self.spec}: track index {index} out of range for the {len(tracks)} {split} tracks")
        if length <= 0 or start < 0:
            raise ValueError(f"{self.spec}: need start >= 0 and length > 0, got start={start}, length={length}")
        n = tracks[index].num_samples
        available = max(0, min(length, n - start))
        out = np.zeros(length, dtype=np.float32)
        if available > 0:
            out[:available] = self._read(split, index, start, available)
        return out

    def describe(self) -> dict:
        """Tracks and hours per split (what ``beafx data`` prints)."""
        info: dict = {"source": self.spec, "sample_rate": self.sample_rate}
        for split in self.splits:
            tracks = self.tracks(split)
            seconds = [t.seconds(self.sample_rate) for t in tracks]
            info[split] = {
                "tracks": len(tracks),
                "hours": round(sum(seconds) / 3600.0, 3),
                "shortest_s": round(min(seconds), 1) if seconds else None,
                "longest_s": round(max(seconds), 1) if seconds else None,
            }
        return info

    def __repr__(self) -> str:
        counts = "/".join(str(len(self.tracks(s))) for s in self.splits)
        return f"{type(self).__name__}({self.spec!r}, tracks {counts})"
