"""Data: where the training pairs ``(x, y, q)`` come from (book chapter 07, ``book/07_data``).

Sources are written the same way everywhere and opened by :func:`open_source`:

- ``synthetic`` (default): procedurally generated songs (:mod:`.synthetic`);
- ``debian-music``: ``warzone2100-music`` (+ ``supertuxkart-data``'s music) (:mod:`.debian`);
- ``musdb:PATH``: MUSDB18 / MUSDB18-HQ with the official split (:mod:`.musdb_source`);
- ``folder:PATH``: any folder of audio files (:mod:`.folder`, :mod:`.cache`).

:func:`sample_clip` crops clips as the authors did (:mod:`.clips`); :class:`EffectDataset`
applies the synthesis chain in DataLoader workers (:mod:`.dataset`); :mod:`.stats` measures
how music-like clips are. Importing this package never imports ``musdb`` (which needs ffmpeg).
"""
from __future__ import annotations

from .base import OFFICIAL_COUNTS, SPLITS, MissingDependencyError, Source, Track
from .clips import MAX_TRIES, SILENT_PEAK, SilentTrackError, sample_clip
from .dataset import (
    DEFAULT_CHAIN,
    EffectDataset,
    Example,
    default_num_workers,
    make_loader,
    synthesis_chain,
    worker_init_fn,
)
from .sources import DEFAULT_SOURCE, SPEC_FORMS, open_source, parse_source

__all__ = [
    "DEFAULT_CHAIN", "DEFAULT_SOURCE", "EffectDataset", "Example", "MAX_TRIES", "MissingDependencyError",
    "OFFICIAL_COUNTS", "SILENT_PEAK", "SPEC_FORMS", "SPLITS", "SilentTrackError", "Source", "Track",
    "default_num_workers", "make_loader", "open_source", "parse_source", "sample_clip", "synthesis_chain",
    "worker_init_fn",
]
