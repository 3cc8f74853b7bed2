"""The training data as a stream of steps that can be resumed anywhere (book chapter
"Training the analysis network", ``book/10_training``).

Training draws ``repeats_per_track`` fresh examples per track per data epoch (the paper's 5
passes), shuffled by a permutation seeded by ``(seed, epoch)``. :class:`TrainStream` numbers
every example of the whole run: example ``g`` is example ``perm_e[g mod L]`` of data epoch
``e = g // L``. Step ``s`` takes examples ``s B .. s B + B - 1`` (``B``: the profile's batch),
so a run resumed at step ``s`` sees exactly the batches it would have seen, on one device or
on several (rank ``r`` of ``R`` takes its ``B / R`` share of each batch). Batches never
straddle anything special: a data epoch boundary falls inside a batch when ``L`` is not a
multiple of ``B`` (the authors' loader ended each pass with a short batch instead).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data import EffectDataset


class TrainStream(Dataset):
    """Every training example of a run, indexed globally: ``(x, y, q)`` as :class:`EffectDataset`."""

    def __init__(self, dataset: EffectDataset, total_examples: int) -> None:
        if dataset.split != "train":
            raise ValueError(f"TrainStream needs the train split, got {dataset.split!r}")
        self.dataset = dataset
        self.epoch_length = len(dataset)
        self.total = int(total_examples)
        self._perm_epoch = -1
        self._perm = np.arange(0)

    def __len__(self) -> int:
        return self.total

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of data epoch ``epoch`` (seeded by the run's seed and the epoch)."""
        if epoch != self._perm_epoch:
            rng = np.random.default_rng([self.dataset.seed, 7919, epoch])
            self._perm = rng.permutation(self.epoch_length)
            self._perm_epoch = epoch
        return self._perm

    def locate(self, index: int) -> tuple[int, int]:
        """``(data epoch, index within the epoch)`` of global example ``index``."""
        epoch, j = divmod(int(index), self.epoch_length)
        return epoch, int(self.permutation(epoch)[j])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        epoch, i = self.locate(index)
        ex = self.dataset.example(i, epoch=epoch)
        return ex.x, ex.y, ex.q


class StepSampler(Sampler[int]):
    """Global example indices for steps ``start_step .. total_steps - 1``; with ``world_size``
    ranks, rank ``rank`` takes its contiguous share of each batch. ``start_step`` is set when a
    run resumes; ``len()`` stays the whole run's (see ``__len__``)."""

    def __init__(self, batch_size: int, total_steps: int, *, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"the batch of {batch_size} examples cannot be split evenly over {world_size} devices; "
                f"use a device count that divides it"
            )
        self.batch_size = int(batch_size)
        self.total_steps = int(total_steps)
        self.rank, self.world_size = int(rank), int(world_size)
        self.per_rank = self.batch_size // self.world_size
        self.start_step = 0

    def __len__(self) -> int:
        # The whole run's length, also when resumed: Lightning counts the restored steps as
        # already fetched and expects the loader to deliver the rest.
        return self.total_steps * self.per_rank

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start_step, self.total_steps):
            first = step * self.batch_size + self.rank * self.per_rank
            yield from range(first, first + self.per_rank)
