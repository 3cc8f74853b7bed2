"""Clip sampling and EffectDataset: shapes, levels, determinism by (seed, epoch, index),
fixed validation/test sets, sizes from the profile, workers, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from beafx.data import (
    EffectDataset,
    SilentTrackError,
    Source,
    Track,
    make_loader,
    sample_clip,
    synthesis_chain,
    worker_init_fn,
)
from beafx.data.synthetic import SyntheticSource
from beafx.effects import available

SR = 44100
FULL = "peq+compressor+clipper"
needs_full_chain = pytest.mark.skipif(
    not all(n in available() for n in ("peq", "compressor", "clipper")), reason="the full chain is not available yet"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_CACHE", str(tmp_path / "cache"))


class ToySource(Source):
    """Tracks of noise at a known level, with optional silent stretches."""

    spec = "toy"

    def __init__(self, lengths=(SR, 2 * SR, 3 * SR), silent=(), level=0.01):
        self._tracks = {s: [Track(f"{s}{i}", n) for i, n in enumerate(lengths)] for s in ("train", "valid", "test")}
        self.silent, self.level = set(silent), level

    def tracks(self, split):
        return self._tracks[split]

    def _read(self, split, index, start, length):
        if index in self.silent:
            return np.zeros(length, dtype=np.float32)
        rng = np.random.default_rng([index, start])
        return (self.level * rng.standard_normal(length)).astype(np.float32)


def test_sample_clip_is_mono_peak_one_with_random_polarity():
    src = ToySource()
    signs = set()
    for k in range(40):
        clip, start = sample_clip(src, "train", 2, np.random.default_rng(k), SR // 2)
        assert clip.dtype == np.float32 and clip.shape == (SR // 2,)
        assert np.abs(clip).max() == pytest.approx(1.0)
        assert 0 <= start <= 3 * SR - SR // 2
        raw = src.read("train", 2, start, SR // 2)
        ratio = clip / (raw / np.abs(raw).max())
        assert np.allclose(ratio, ratio[0]) and abs(ratio[0]) == pytest.approx(1.0)
        signs.add(float(np.sign(ratio[0])))
    assert signs == {-1.0, 1.0}


def test_silent_crops_are_redrawn_then_give_up_clearly():
    class HalfSilent(ToySource):
        def _read(self, split, index, start, length):
            out = super()._read(split, index, start, length)
            return out if start > 2 * SR else np.zeros(length, dtype=np.float32)

    clip, start = sample_clip(HalfSilent(lengths=(3 * SR,)), "train", 0, np.random.default_rng(0), SR // 10)
    assert start > 2 * SR and np.abs(clip).max() == pytest.approx(1.0)
    with pytest.raises(SilentTrackError, match="train1.*silent"):
        sample_clip(ToySource(silent={1}), "train", 1, np.random.default_rng(0), SR // 10, max_tries=7)


def test_quiet_but_not_silent_clips_are_kept():
    clip, _ = sample_clip(ToySource(level=3e-5), "train", 0, np.random.default_rng(0), 1000)
    assert np.abs(clip).max() == pytest.approx(1.0)


def test_examples_have_the_documented_shapes_and_levels():
    ds = EffectDataset(SyntheticSource(), "train", "clipper", clip_samples=SR // 2)
    x, y, q = ds[0]
    assert x.shape == (1, SR // 2) and y.shape == (1, SR // 2) and q.shape == (3,)
    assert x.dtype == y.dtype == q.dtype == torch.float32
    assert float(x.abs().max()) == pytest.approx(1.0)
    assert 0.0 <= float(q.min()) and float(q.max()) <= 1.0
    assert torch.allclose(y, ds.chain(x.unsqueeze(0), q.unsqueeze(0))[0])
    assert not torch.allclose(x, y)


@needs_full_chain
def test_full_synthesis_chain_makes_y_in_the_worker():
    ds = EffectDataset("synthetic", "train", FULL, clip_samples=SR)
    assert ds.num_params == 24
    x, y, q = ds[3]
    assert torch.isfinite(y).all() and y.shape == x.shape
    with torch.no_grad():
        again = synthesis_chain(FULL)(x.unsqueeze(0), q.unsqueeze(0))[0]
    torch.testing.assert_close(y, again)


def test_every_example_is_fixed_by_seed_epoch_and_index():
    src = SyntheticSource()
    a = EffectDataset(src, "train", "clipper", clip_samples=SR // 4, seed=7)
    b = EffectDataset(src, "train", "clipper", clip_samples=SR // 4, seed=7)
    for i in (5, 0, 211):  # any order: nothing depends on what was drawn before
        for u, v in zip(a[i], b[i]):
            torch.testing.assert_close(u, v, rtol=0, atol=0)
    c = EffectDataset(src, "train", "clipper", clip_samples=SR // 4, seed=8)
    assert not torch.equal(a[5][2], c[5][2])
    q0 = a[5][2]
    a.set_epoch(1)  # training examples are fresh each epoch ...
    assert not torch.equal(a[5][2], q0)
    a.set_epoch(0)
    torch.testing.assert_close(a[5][2], q0, rtol=0, atol=0)  # ... and replayable (resume)


def test_validation_and_test_sets_are_fixed_across_epochs():
    src = SyntheticSource()
    val = EffectDataset(src, "valid", "clipper", clip_samples=SR // 4)
    first = [val[i][2] for i in range(3)]
    val.set_epoch(5)
    assert all(torch.equal(u, val[i][2]) for i, u in enumerate(first))
    test = EffectDataset(src, "test", "clipper", clip_samples=SR // 4)
    assert not torch.equal(test[0][2], first[0])


def test_sizes_follow_the_profile():
    src = SyntheticSource()
    paper = {s: EffectDataset(src, s, "clipper", profile="paper") for s in ("train", "valid", "test")}
    assert [len(paper[s]) for s in ("train", "valid", "test")] == [5 * 86, 5 * 14, 10 * 50]
    assert paper["train"].clip_samples == 441000
    smoke = {s: EffectDataset(src, s, "clipper", profile="smoke") for s in ("train", "valid", "test")}
    assert [len(smoke[s]) for s in ("train", "valid", "test")] == [5 * 86, 1 * 2, 1 * 4]
    assert smoke["train"].clip_samples == int(2.0 * SR)
    # Each training track appears repeats_per_track times per epoch.
    ds = EffectDataset(ToySource(lengths=(SR,) * 4), "train", "clipper", clip_samples=1000, repeats=5)
    counts = np.bincount([int(ds.example(i).track[-1]) for i in range(len(ds))])
    assert list(counts) == [5, 5, 5, 5]


def test_loader_with_workers_gives_the_same_batches_as_in_process():
    ds = EffectDataset(SyntheticSource(), "train", "clipper", clip_samples=SR // 8, repeats=1, max_tracks=None)
    inline = list(make_loader(ds, batch_size=4, num_workers=0, epoch=2))
    workers = list(make_loader(ds, batch_size=4, num_workers=2, epoch=2))
    assert len(inline) == len(workers) == -(-86 // 4)
    for (x1, y1, q1), (x2, y2, q2) in zip(inline[:3], workers[:3]):
        assert x1.shape == (4, 1, SR // 8) and q1.shape == (4, 3)
        torch.testing.assert_close(q1, q2, rtol=0, atol=0)
        torch.testing.assert_close(y1, y2)
    other_epoch = next(iter(make_loader(ds, batch_size=4, num_workers=0, epoch=3)))
    assert not torch.equal(other_epoch[2], inline[0][2])


def test_worker_init_sets_one_thread():
    before = torch.get_num_threads()
    try:
        worker_init_fn(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(split="training"), ValueError, "unknown split"),
        (dict(chain="reverb"), ValueError, "unknown effect"),
        (dict(source="nowhere"), ValueError, "unknown data source"),
        (dict(source=42), ValueError, "Source or a source spec"),
        (dict(clip_samples=-5), ValueError, "clip_samples"),
        (dict(repeats=0), ValueError, "repeats"),
        (dict(profile="gpu"), ValueError, "unknown profile"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    args = dict(source=SyntheticSource(), split="train", chain="clipper")
    args.update(kwargs)
    with pytest.raises(error, match=message):
        EffectDataset(**args)


def test_index_out_of_range():
    ds = EffectDataset(ToySource(), "valid", "clipper", clip_samples=100, repeats=2)
    assert len(ds) == 6
    with pytest.raises(IndexError):
        ds[6]
