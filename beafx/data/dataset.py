"""``EffectDataset``: training pairs ``(x, y, q)`` made on the fly by the synthesis chain
(book chapter 07, ``book/07_data``).

Each example is a dry clip ``x`` (:func:`beafx.data.clips.sample_clip`), normalised parameters
``q ~ U(0, 1)^C`` and the wet clip ``y = chain(x, q)``, computed in the DataLoader worker under
``no_grad`` (one torch thread per worker: :func:`worker_init_fn`). Everything random in
example ``i`` comes from one numpy generator seeded by ``(seed, split, epoch, i)``, so any
example can be recomputed alone: runs are reproducible and resume to identical numbers.

- ``train``: ``repeats_per_track`` (5) examples per track per epoch, fresh crops and ``q``
  every epoch (call :meth:`EffectDataset.set_epoch`);
- ``valid`` / ``test``: fixed sets (the epoch is ignored) of ``val_repeats`` (5) and
  ``test_repeats`` (10) examples per track, over at most ``val_max_tracks`` /
  ``test_max_tracks`` tracks. The authors re-drew these every epoch (AUTHORS_CODE.md section 7).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..effects import Chain, effect_class, make
from ..profiles import Profile, get_profile
from .base import SPLITS, Source, check_split
from .clips import MAX_TRIES, sample_clip, warn_short_tracks
from .sources import open_source_cached

#: The chain of the paper's main experiments.
DEFAULT_CHAIN = "peq+compressor+clipper"

_SPLIT_ID = {s: i for i, s in enumerate(SPLITS)}


def synthesis_chain(spec: str = DEFAULT_CHAIN, sample_rate: int = 44100) -> Chain:
    """The chain ``spec`` built for synthesis (``synthesis=True`` where an effect accepts it:
    the EQ then runs its exact IIR path), in eval mode."""
    names = [n.strip() for n in spec.split("+")]
    accepts = any("synthesis" in effect_class(n).accepted_options() for n in names if n)
    chain = make(spec, sample_rate=sample_rate, **({"synthesis": True} if accepts else {}))
    return chain.eval()


@dataclass
class Example:
    """One example with its provenance: ``x``, ``y`` ``(1, samples)``, ``q`` ``(C,)``."""

    x: torch.Tensor
    y: torch.Tensor
    q: torch.Tensor
    track: str
    start: int  # first sample of the crop in the track


class EffectDataset(Dataset):
    """Examples ``(x (1, samples), y (1, samples), q (C,))`` of ``split`` of ``source``.

    ``source``: a :class:`~beafx.data.base.Source` or its spec (``"synthetic"`` ...);
    ``chain``: a registry spec (``"peq+compressor+clipper"``) or a built :class:`Chain`;
    ``profile``: sizes (clip length, repeats, track caps); ``clip_samples``, ``repeats``,
    ``max_tracks`` override it; ``seed`` fixes everything random.
    """

    def __init__(
        self,
        source: Union[Source, str] = "synthetic",
        split: str = "train",
        chain: Union[str, Chain] = DEFAULT_CHAIN,
        *,
        profile: Union[Profile, str, None] = None,
        clip_samples: Optional[int] = None,
        repeats: Optional[int] = None,
        max_tracks: Optional[int] = None,
        seed: int = 0,
        epoch: int = 0,
        max_tries: int = MAX_TRIES,
    ) -> None:
        self.split = check_split(split)
        self.profile = profile if isinstance(profile, Profile) else get_profile(profile)
        self.source = open_source_cached(source) if isinstance(source, str) else source
        if not isinstance(self.source, Source):
            raise ValueError(f"source must be a Source or a source spec string, got {type(source).__name__}")
        if self.source.sample_rate != 44100:
            raise ValueError(f"sources must be at 44.1 kHz, got {self.source.sample_rate}")
        self.chain = synthesis_chain(chain, self.source.sample_rate) if isinstance(chain, str) else chain.eval()
        self.clip_samples = int(self.profile.clip_samples if clip_samples is None else clip_samples)
        if self.clip_samples <= 0:
            raise ValueError(f"clip_samples must be positive, got {clip_samples}")
        default_repeats = {
            "train": self.profile.repeats_per_track,
            "valid": self.profile.val_repeats,
            "test": self.profile.test_repeats,
        }[split]
        default_max = {"train": None, "valid": self.profile.val_max_tracks, "test": self.profile.test_max_tracks}[split]
        self.repeats = int(repeats if repeats is not None else default_repeats)
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        cap = max_tracks if max_tracks is not None else default_max
        self.num_tracks = len(self.source.tracks(split)) if cap is None else min(cap, len(self.source.tracks(split)))
        if self.num_tracks == 0:
            raise ValueError(f"{self.source.spec} has no {split} tracks")
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.max_tries = int(max_tries)
        warn_short_tracks(self.source, split, self.clip_samples)

    @property
    def num_params(self) -> int:
        return self.chain.num_params

    def set_epoch(self, epoch: int) -> None:
        """Draw the training examples of ``epoch`` (valid/test sets do not change). Call it
        before iterating a DataLoader over this dataset (not with ``persistent_workers``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.repeats * self.num_tracks

    def rng(self, index: int, epoch: Optional[int] = None) -> np.random.Generator:
        """The generator of example ``index`` (seeded by seed, split, epoch, index); ``epoch``
        defaults to the dataset's (valid/test ignore it)."""
        epoch = (self.epoch if epoch is None else int(epoch)) if self.split == "train" else 0
        return np.random.default_rng([self.seed, _SPLIT_ID[self.split], epoch, index])

    def example(self, index: int, epoch: Optional[int] = None) -> Example:
        """Example ``index`` (of ``epoch``, default the dataset's) with its track name and crop
        position. Depends only on (seed, split, epoch, index): safe to call from any worker."""
        if not 0 <= index < len(self):
            raise IndexError(f"example {index} out of range for {len(self)} examples")
        rng = self.rng(index, epoch)
        track = index % self.num_tracks
        clip, start = sample_clip(self.source, self.split, track, rng, self.clip_samples, max_tries=self.max_tries)
        q = torch.from_numpy(rng.random(self.chain.num_params).astype(np.float32))
        x = torch.from_numpy(clip).unsqueeze(0)
        with torch.no_grad():
            y = self.chain(x.unsqueeze(0), q.unsqueeze(0))[0]
        if not bool(torch.isfinite(y).all()):
            raise ValueError(f"the chain produced NaN/Inf for example {index} ({self.source.spec}, q={q.tolist()})")
        return Example(x, y.to(torch.float32), q, self.source.tracks(self.split)[track].name, start)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ex = self.example(int(index))
        return ex.x, ex.y, ex.q


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker set-up: one torch thread per worker (the workers run in parallel)."""
    torch.set_num_threads(1)


def default_num_workers() -> int:
    """The authors' 5 workers, at most one fewer than the CPU count."""
    return max(0, min(5, (os.cpu_count() or 1) - 1))


def make_loader(
    dataset: EffectDataset,
    *,
    batch_size: Optional[int] = None,
    num_workers: Optional[int] = None,
    shuffle: Optional[bool] = None,
    epoch: Optional[int] = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` with :func:`worker_init_fn`. ``shuffle`` defaults to on for
    train; its order comes from a generator seeded by ``(seed, epoch)``, so a resumed epoch
    replays the same batches. ``epoch`` (if given) calls ``dataset.set_epoch`` first."""
    if epoch is not None:
        dataset.set_epoch(epoch)
    shuffle = dataset.split == "train" if shuffle is None else shuffle
    generator = torch.Generator().manual_seed(dataset.seed * 1_000_003 + dataset.epoch)
    workers = default_num_workers() if num_workers is None else int(num_workers)
    return DataLoader(
        dataset,
        batch_size=batch_size or dataset.profile.batch_size,
        shuffle=shuffle,
        num_workers=workers,
        worker_init_fn=worker_init_fn if workers > 0 else None,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=False,
        drop_last=False,
    )
