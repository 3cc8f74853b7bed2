"""The mismatch experiment's independent chain (pedalboard's JUCE effects with beafx's parameters)."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("pedalboard")

from beafx.data import EffectDataset  # noqa: E402
from beafx.experiments.mismatch import pedalboard_chain, run_mismatch  # noqa: E402
from beafx.losses import mel_loss  # noqa: E402


@pytest.fixture(scope="module")
def examples():
    ds = EffectDataset("synthetic", "test", "peq+compressor+clipper", profile="smoke", max_tracks=3, repeats=2, seed=0)
    ex = [ds.example(i) for i in range(len(ds))]
    return (torch.stack([e.x for e in ex]), torch.stack([e.y for e in ex]), torch.stack([e.q for e in ex]))


def test_pedalboard_chain_sounds_like_beafx_chain_with_the_same_parameters(examples):
    x, y, q = examples
    y_pb = pedalboard_chain(x, q)
    assert y_pb.shape == x.shape and y_pb.dtype == x.dtype and torch.isfinite(y_pb).all()
    same = mel_loss(y, y_pb, reduction="none")
    dry = mel_loss(x, y_pb, reduction="none")
    assert float(same.mean()) < 0.6 * float(dry.mean()), (same, dry)  # two implementations of one chain
    assert float(same.mean()) > 1e-3  # ... and still two different implementations


def test_pedalboard_chain_rejects_bad_shapes(examples):
    x, _, q = examples
    with pytest.raises(ValueError, match="must have 24 columns"):
        pedalboard_chain(x, q[:, :15])
    with pytest.raises(ValueError, match=r"x must be \(batch, channels, samples\)"):
        pedalboard_chain(x[:, 0], q)


def test_mismatch_needs_a_whole_chain_model():
    with pytest.raises(ValueError, match="needs a peq\\+compressor\\+clipper model"):
        run_mismatch("demo:peq")
