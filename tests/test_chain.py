"""Chain: normalisation before each effect, q split in order, silence guards, make()."""
import pytest
import torch

from beafx.effects import Chain, Effect, make
from beafx.functional.levels import normalize_0dbfs, peak_normalize, remove_dc, rms_normalize
from beafx.params import ParamSpec


class Probe(Effect):
    """Records its input; output = gain * x + 0.5 (adds DC and changes level)."""

    param_specs = (ParamSpec("gain", 1.0, 4.0),)

    def __init__(self, sample_rate=44100):
        super().__init__(sample_rate)
        self.seen = []

    def process(self, x, **p):
        self.seen.append(x.detach().clone())
        return p["gain"].view(-1, 1, 1) * x + 0.5


def test_chain_normalises_before_each_effect_and_splits_q():
    a, b = Probe(), Probe()
    chain = Chain({"a": a, "b": b})
    x = 0.1 * torch.randn(3, 2, 1000, dtype=torch.float64) + 0.3
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    y = chain(x, q)
    for seen in (a.seen[0], b.seen[0]):
        assert seen.mean(dim=-1).abs().max() < 1e-12  # DC removed per channel
        assert torch.allclose(seen.abs().amax(dim=(1, 2)), torch.ones(3, dtype=torch.float64))  # 0 dBFS
    g_a, g_b = 1 + 3 * q[:, 0], 1 + 3 * q[:, 1]
    want = g_b.view(-1, 1, 1) * normalize_0dbfs(g_a.view(-1, 1, 1) * normalize_0dbfs(x) + 0.5) + 0.5
    assert torch.allclose(y, want)  # nothing normalised after the last effect
    assert chain.num_params == 2 and chain.param_names == ["a.gain", "b.gain"]
    phys = chain.physical(q)
    assert torch.allclose(phys["b.gain"], g_b)


def test_stereo_peak_is_shared_across_channels():
    x = torch.zeros(1, 2, 100)
    x[0, 0, 10], x[0, 1, 20] = 0.5, -0.25
    n = normalize_0dbfs(x)
    ratio = n[0, 1].abs().max() / n[0, 0].abs().max()
    assert float(ratio) == pytest.approx(0.5, rel=1e-3)  # balance kept


def test_silence_stays_finite_with_finite_gradients():
    chain = make("clipper+taylor")
    x = torch.zeros(2, 1, 512, requires_grad=True)
    q = torch.rand(2, chain.num_params, requires_grad=True)
    y = chain(x, q)
    assert torch.isfinite(y).all()
    gx, gq = torch.autograd.grad(y.sum(), (x, q))
    assert torch.isfinite(gx).all() and torch.isfinite(gq).all()
    for fn in (remove_dc, peak_normalize, rms_normalize):
        z = torch.zeros(1, 1, 64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(z).sum(), z)
        assert torch.isfinite(fn(z)).all() and torch.isfinite(g).all()


def test_rms_normalize():
    x = 3.0 * torch.randn(2, 1, 10000, dtype=torch.float64) + 1.0
    n = rms_normalize(x)
    assert torch.allclose(n.square().mean(-1), torch.ones(2, 1, dtype=torch.float64))
    assert n.mean(-1).abs().max() < 1e-12


def test_make_builds_registry_chains():
    chain = make("clipper+taylor+chebyshev")
    assert list(chain.effects) == ["clipper", "taylor", "chebyshev"]
    assert chain.num_params == 3 + 24 + 24
    twice = make("clipper+clipper")
    assert len(twice.effects) == 2 and twice.num_params == 6


@pytest.mark.parametrize("spec,match", [("", "non-empty"), ("clipper++taylor", "empty effect"), ("fuzz", "unknown effect"),
                                        ("clipper+reverb", "registered effects")])
def test_make_rejects_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        make(spec)


def test_make_rejects_options_no_effect_accepts():
    with pytest.raises(ValueError, match="accepted by no effect"):
        make("clipper", colour="blue")


def test_chain_validates_input():
    chain = make("clipper")
    with pytest.raises(ValueError, match="batch, channels, samples"):
        chain(torch.randn(2, 100), torch.rand(2, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        chain(torch.randn(2, 1, 100), torch.rand(2, 3) - 2)
    with pytest.raises(ValueError, match="sample rate"):
        Chain({"a": Probe(44100), "b": Probe(48000)})
