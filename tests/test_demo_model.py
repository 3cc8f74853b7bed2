"""The shipped demo models (``demo:peq``: the ``cpu`` PEQ/TFE/Mel run; ``demo:chain``: Table 5's
whole-chain TFE/Mel run): they load without Lightning, are small, beat the constant guess on
held-out synthetic examples, and ``demo:peq`` transfers a random mastering EQ on real music (an
embedded excerpt) better than doing nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from beafx.estimate import Estimator, read_audio, round_trip
from beafx.training import demo_model_path, load_model

ASSETS = Path(__file__).resolve().parent.parent / "beafx" / "data" / "assets"


#: The shipped demo models and what they were trained as: (synthesis, analysis, encoder, loss, profile).
DEMOS = {
    "peq": ("peq", "peq", "tfe", "mel", "cpu"),
    "chain": ("peq+compressor+clipper", "peq+hybrid_compressor+clipper", "tfe", "mel", "cpu"),
}


@pytest.fixture(scope="module")
def model():
    return load_model("demo:peq")


@pytest.mark.parametrize("name", DEMOS)
def test_demo_model_is_small_and_documented(name):
    path = demo_model_path(name)
    demo = load_model(f"demo:{name}")
    assert path.stat().st_size <= 8 * 2**20
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    cfg = demo.config
    assert (cfg.synthesis, cfg.analysis, cfg.encoder, cfg.loss, cfg.profile) == DEMOS[name]
    for file in ("curves.csv", "evaluation.json", "result.json", "config.json"):
        assert (path.parent / file).exists(), file
    report = json.loads((path.parent / "evaluation.json").read_text())
    assert set(report) >= {"model", "baselines", "run"}


@pytest.mark.slow
@pytest.mark.parametrize("name", DEMOS)
def test_demo_model_beats_the_constant_guess_on_held_out_examples(name):
    from beafx.data import EffectDataset
    from beafx.losses import mel_loss

    demo = load_model(f"demo:{name}")
    ds = EffectDataset("synthetic", "test", DEMOS[name][0], profile="cpu", max_tracks=6, repeats=1, seed=11)
    x, y, q = (torch.stack(t) for t in zip(*[ds[i] for i in range(len(ds))]))
    chain = demo.analysis_chain().eval()  # eval: a hybrid compressor runs the DSP compressor
    with torch.no_grad():
        q_hat = demo.predict(y)
        ours = float(mel_loss(chain(x, q_hat), y))
        constant = float(mel_loss(chain(x, torch.full_like(q_hat, 0.5)), y))
    assert ours < 0.9 * constant, (ours, constant)


@pytest.mark.slow
def test_transfer_round_trip_on_real_music(model):
    audio, rate = read_audio(ASSETS / "vibe_ace.ogg")
    estimator = Estimator(model)
    rng = np.random.default_rng(5)
    results = [round_trip(estimator, audio, rate, torch.from_numpy(rng.random(15).astype(np.float32))) for _ in range(3)]
    for r in results:
        assert r["mel_transfer"] < r["mel_original"], r
