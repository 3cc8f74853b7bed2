"""``folder:PATH``: any folder of music files as a data source (book chapter 07,
``book/07_data``).

Files ending in ``.wav .flac .ogg .opus .mp3`` (any case, in sub-folders too) are used; other
files are ignored. Each file goes to train, valid or test by a seeded hash of its path
relative to the folder, with the proportions of MUSDB18 (86/14/50): the split of a file never
changes when files are added or removed. Every file is decoded once into the mono 44.1 kHz
cache (:mod:`beafx.data.cache`) and crops are read from there by random access. Files that
cannot be decoded (corrupt, truncated, not audio, unreadable) are skipped with one warning
that lists them; only a folder with no readable file is an error.
"""
from __future__ import annotations

import hashlib
import re
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .base import OFFICIAL_COUNTS, SPLITS, Source, Track, check_split
from .cache import CachedAudio, UnreadableAudio, cached, check_outside

#: File name endings read by folder sources.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".opus", ".mp3")

_TOTAL = sum(OFFICIAL_COUNTS.values())
#: Upper ends of the hash intervals of train and valid (the rest is test).
_BOUNDS = (OFFICIAL_COUNTS["train"] / _TOTAL, (OFFICIAL_COUNTS["train"] + OFFICIAL_COUNTS["valid"]) / _TOTAL)


def list_audio_files(root: Path) -> list[Path]:
    """Audio files under ``root`` (recursively), sorted by relative path."""
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def split_key(relative_name: str) -> str:
    """The name a file is split by: by default its relative path (see :func:`split_ignoring`)."""
    return relative_name


def hash_unit(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``name`` and ``seed`` (SHA-256, stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15)


def assign_splits(names: Sequence[str], *, seed: int = 0) -> dict[str, list[int]]:
    """Indices of ``names`` per split. Each name's hash decides its split (86/14/50 of the unit
    interval). If that leaves a split empty while there are at least three names, the names
    are ranked by hash instead and each split gets at least one (a warning says so)."""
    units = [hash_unit(n, seed) for n in names]
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, u in enumerate(units):
        out["train" if u < _BOUNDS[0] else "valid" if u < _BOUNDS[1] else "test"].append(i)
    if len(names) >= 3 and any(not v for v in out.values()):
        order = sorted(range(len(names)), key=lambda i: units[i])
        n = len(names)
        n_valid = max(1, round(n * OFFICIAL_COUNTS["valid"] / _TOTAL))
        n_test = max(1, round(n * OFFICIAL_COUNTS["test"] / _TOTAL))
        n_train = n - n_valid - n_test
        out = {
            "train": sorted(order[:n_train]),
            "valid": sorted(order[n_train : n_train + n_valid]),
            "test": sorted(order[n_train + n_valid :]),
        }
        warnings.warn(
            f"only {n} files: the hash split left a split empty, so files were ranked by hash instead "
            f"({n_train}/{n_valid}/{n_test} train/valid/test)",
            stacklevel=3,
        )
    return out


class FolderSource(Source):
    """Audio files under one or more folders, split by a seeded hash of their relative paths.

    ``roots``: folders (a label per folder is prefixed to relative names when there are several);
    ``seed``: the split seed; ``spec``: how the source is written (``folder:PATH``).
    """

    def __init__(
        self,
        roots: Path | str | Sequence[Path | str],
        *,
        seed: int = 0,
        spec: Optional[str] = None,
        key=split_key,
        progress: bool = True,
    ) -> None:
        if isinstance(roots, (str, Path)):
            roots = [roots]
        self.roots = [Path(r).expanduser() for r in roots]
        self.spec = spec or f"folder:{self.roots[0]}"
        self.seed = int(seed)
        files: list[tuple[str, Path]] = []
        for root in self.roots:
            if not root.exists():
                raise FileNotFoundError(f"{self.spec}: folder {root} does not exist")
            if not root.is_dir():
                raise ValueError(f"{self.spec}: {root} is not a folder (folder:PATH needs a folder of audio files)")
            check_outside(root)
            label = f"{root.name}/" if len(self.roots) > 1 else ""
            files += [(label + p.relative_to(root).as_posix(), p) for p in list_audio_files(root)]
        if not files:
            raise ValueError(
                f"{self.spec}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {', '.join(map(str, self.roots))}"
            )
        files, self._entries = self._decode(files, progress)
        names = [n for n, _ in files]
        self._paths = [p for _, p in files]
        groups = [key(n) for n in names]
        unique = sorted(set(groups))
        group_split = {unique[i]: s for s, idx in assign_splits(unique, seed=self.seed).items() for i in idx}
        self._index: dict[str, list[int]] = {s: [i for i, g in enumerate(groups) if group_split[g] == s] for s in SPLITS}
        self._tracks = {
            s: [Track(names[i], self._entries[i].num_samples) for i in self._index[s]] for s in SPLITS
        }
        self._mmaps: dict[int, np.ndarray] = {}

    def _decode(self, files: list[tuple[str, Path]], progress: bool) -> tuple[list[tuple[str, Path]], list[CachedAudio]]:
        """Cache every file; skip the unreadable ones with one warning that lists them, and
        raise ``ValueError`` naming the folder when none is readable."""
        kept: list[tuple[str, Path]] = []
        entries: list[CachedAudio] = []
        skipped: list[str] = []
        for i, (name, path) in enumerate(files):
            if progress and sys.stderr.isatty():
                print(f"\r{self.spec}: decoding into the cache {i + 1}/{len(files)}", end="", file=sys.stderr)
            try:
                entries.append(cached(path))
            except UnreadableAudio as err:  # cache write errors (OSError) are not the file's fault
                skipped.append(f"  {name}: {err.reason}")
                continue
            kept.append((name, path))
        if progress and sys.stderr.isatty():
            print(file=sys.stderr)
        folders = ", ".join(map(str, self.roots))
        if not kept:
            shown = "; ".join(s.strip() for s in skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
            raise ValueError(f"{self.spec}: none of the {len(files)} audio files under {folders} can be read ({shown})")
        if skipped:
            warnings.warn(f"{self.spec}: skipped {len(skipped)} of {len(files)} audio files under {folders} that "
                          "cannot be read:\n" + "\n".join(skipped), stacklevel=3)
        return kept, entries

    def tracks(self, split: str) -> list[Track]:
        return self._tracks[check_split(split)]

    def path(self, split: str, index: int) -> Path:
        """The audio file behind track ``index`` of ``split``."""
        return self._paths[self._index[check_split(split)][index]]

    def _read(self, split: str, index: int, start: int, length: int) -> np.ndarray:
        i = self._index[split][index]
        if i not in self._mmaps:
            self._mmaps[i] = self._entries[i].open()
        return self._entries[i].read(start, length, self._mmaps[i])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_mmaps"] = {}  # memmaps are reopened in each process
        return state


def split_ignoring(pattern: str):
    """A split key that removes ``pattern`` (a regex) from names, so that variants of one
    piece (e.g. ``x.ogg`` and ``x_fast.ogg``) always land in the same split."""
    rx = re.compile(pattern)
    return lambda name: rx.sub("", name)
