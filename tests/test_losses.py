"""beafx.losses against independent references: a float64 NumPy Mel loss written from its
definition, closed forms for the normalisation invariances and MSE_q, hand-computed physical errors."""
from __future__ import annotations

import math
import warnings

import librosa
import numpy as np
import pytest
import torch

from beafx import losses
from beafx.effects import make
from beafx.params import TABLE

SR = 44100
AUDIO_METRICS = [losses.mel_loss, losses.mse_y, losses.mrstft]


def _close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float, atol: float) -> None:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These small STFTs run fastest on one thread (and far faster on a busy shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _signals(batch: int = 2, channels: int = 2, samples: int = 3 * 4096 + 123, *, seed: int = 0,
             dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy estimate with a silent stretch (exercises the magnitude floor) and a target made of
    low-passed noise plus a sine."""
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.randn(batch, channels, samples, generator=g, dtype=torch.float64)
    y_hat[..., 5000:9500] = 0.0
    noise = torch.randn(batch, channels, samples + 15, generator=g, dtype=torch.float64)
    low = noise.unfold(-1, 16, 1).mean(-1)  # 16-tap moving average
    t = torch.arange(samples, dtype=torch.float64) / SR
    y = 0.3 * low + 0.1 * torch.sin(2 * math.pi * 440.0 * t) + 0.05
    return y_hat.to(dtype), y.to(dtype)


def _mel_reference(y_hat: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example Mel loss from its definition, in float64 NumPy: mono, DC removed, RMS 1; centred
    reflect-padded frames of 4096 with hop 1024 and a periodic Hann window; magnitude
    sqrt(max(|X|^2, 1e-8)); librosa Slaney mel filterbank on the magnitude; natural log; L1 mean."""
    n_fft, hop = 4096, 1024
    fb = librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=128).astype(np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)

    def log_mel(s: np.ndarray) -> np.ndarray:
        mono = s.mean(axis=1)
        mono = mono - mono.mean(axis=-1, keepdims=True)
        mono = mono / np.sqrt((mono**2).mean(axis=-1, keepdims=True))
        padded = np.pad(mono, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
        frames = 1 + (padded.shape[-1] - n_fft) // hop
        index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
        spec = np.fft.rfft(padded[:, index] * window, axis=-1)  # (batch, frames, bins)
        mag = np.sqrt(np.maximum(spec.real**2 + spec.imag**2, 1e-8))
        return np.log(np.einsum("mf,btf->bmt", fb, mag))

    return np.abs(log_mel(y_hat) - log_mel(y)).mean(axis=(1, 2))


def test_mel_loss_matches_float64_definition():
    y_hat, y = _signals()
    ref = _mel_reference(y_hat.numpy(), y.numpy())
    got = losses.mel_loss(y_hat, y, reduction="none")
    assert got.dtype == torch.float64 and got.shape == (2,)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=0)
    assert losses.mel_loss(y_hat, y).item() == pytest.approx(ref.mean(), rel=1e-12)
    got32 = losses.mel_loss(y_hat.float(), y.float(), reduction="none")
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), ref, rtol=1e-4)


@pytest.mark.parametrize("metric", AUDIO_METRICS, ids=lambda f: f.__name__)
def test_invariant_to_gain_and_dc_and_zero_for_identical(metric):
    y_hat, y = _signals(samples=8192, seed=1)
    base = metric(y_hat, y, reduction="none")
    assert bool((base > 0).all())
    for gain_hat, gain, dc_hat, dc in [(0.01, 1.0, 0.0, 0.0), (1.0, 7.0, 0.0, 0.0), (3.0, 0.2, 0.5, -2.0)]:
        moved = metric(gain_hat * y_hat + dc_hat, gain * y + dc, reduction="none")
        _close(moved, base, rtol=1e-8, atol=1e-10)
    assert bool((metric(y, y, reduction="none") == 0).all())
    assert metric(y, 5.0 * y + 1.0).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("effect", ["taylor", "chebyshev"])
@pytest.mark.parametrize("metric", AUDIO_METRICS, ids=lambda f: f.__name__)
def test_zero_estimate_gives_finite_loss_and_gradients(effect, metric):
    chain = make(effect)
    x, y = _signals(batch=2, channels=1, samples=8192, seed=2, dtype=torch.float32)
    q = torch.full((2, chain.num_params), 0.5, requires_grad=True)
    assert all(bool((v == 0).all()) for v in chain.physical(q.detach()).values())  # all coefficients 0
    y_hat = chain(x, q)
    assert bool((y_hat == 0).all())
    for target in (y, torch.zeros_like(y)):
        q.grad = None
        loss = metric(y_hat, target)
        loss.backward(retain_graph=True)
        assert math.isfinite(loss.item())
        assert bool(torch.isfinite(q.grad).all())
    # a silent target and an almost-silent estimate, with gradients w.r.t. the signal itself
    for estimate in (torch.zeros_like(y), 1e-12 * y):
        estimate = estimate.clone().requires_grad_(True)
        loss = metric(estimate, torch.zeros_like(y))
        loss.backward()
        assert math.isfinite(loss.item()) and bool(torch.isfinite(estimate.grad).all())


@pytest.mark.parametrize("metric", AUDIO_METRICS, ids=lambda f: f.__name__)
def test_reduction_none_is_per_example_and_averages_to_mean(metric):
    y_hat, y = _signals(batch=3, channels=2, samples=6000, seed=3, dtype=torch.float32)
    per = metric(y_hat, y, reduction="none")
    assert per.shape == (3,)
    _close(metric(y_hat, y), per.mean(), rtol=1e-6, atol=0)
    # each value depends on its own example only (needed for a bootstrap over tracks)
    _close(metric(y_hat[1:2], y[1:2], reduction="none"), per[1:2], rtol=1e-5, atol=0)


def test_mel_mean_equals_auraloss_mean_on_mono():
    import auraloss

    y_hat, y = _signals(batch=2, channels=1, samples=6000, seed=4, dtype=torch.float32)
    module = auraloss.freq.MelSTFTLoss(SR, fft_size=4096, hop_size=1024, win_length=4096, n_mels=128, w_sc=0.0)
    normalise = lambda s: (s - s.mean(-1, keepdim=True)) / (s - s.mean(-1, keepdim=True)).square().mean(-1, keepdim=True).sqrt()
    expected = module(normalise(y_hat), normalise(y))
    _close(losses.mel_loss(y_hat, y), expected, rtol=1e-6, atol=0)


def test_mse_y_closed_form_and_gradcheck():
    y_hat, y = _signals(batch=2, channels=2, samples=32, seed=5)
    mono = lambda s: s.mean(1, keepdim=True)
    norm = lambda s: (mono(s) - mono(s).mean(-1, keepdim=True)) / (mono(s) - mono(s).mean(-1, keepdim=True)).std(-1, unbiased=False, keepdim=True)
    expected = (norm(y_hat) - norm(y)).square().mean(dim=(1, 2))
    _close(losses.mse_y(y_hat, y, reduction="none"), expected, rtol=1e-12, atol=0)
    a = y_hat[:, :, :16].clone().requires_grad_(True)
    b = y[:, :, :16].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u, v: losses.mse_y(u, v, reduction="none"), (a, b))


def test_noise_vs_filtered_copy_sanity():
    g = torch.Generator().manual_seed(6)
    noise = torch.randn(2, 1, SR // 2, generator=g)
    filtered = torch.nn.functional.pad(noise, (7, 0)).unfold(-1, 8, 1).mean(-1)  # causal 8-tap average
    for metric in AUDIO_METRICS:
        value = metric(filtered, noise).item()
        assert math.isfinite(value) and value > 0, metric.__name__


def test_identifiable_mask_matches_table():
    chain = make("compressor+chebyshev+taylor")
    names = chain.param_names
    assert "compressor.makeup_db" in names and "chebyshev.g0" in names and "taylor.g1" in names
    mask = losses.identifiable_mask(names)
    assert mask.dtype == torch.bool and mask.shape == (len(names),)
    assert [names[i] for i in torch.nonzero(~mask).flatten().tolist()] == ["compressor.makeup_db", "chebyshev.g0"]
    # from the canonical table: make-up gain in every compressor, g0 only in Chebyshev
    for effect, specs in TABLE.items():
        hidden = {s.name for s, keep in zip(specs, losses.identifiable_mask([s.name for s in specs])) if not keep}
        expected = {"makeup_db"} & {s.name for s in specs}
        expected |= {"g0"} if effect == "ChebyshevClipper" else set()
        assert hidden == expected, effect


def test_mse_q_masked_vs_unmasked():
    chain = make("compressor+chebyshev")
    mask = losses.identifiable_mask(chain.param_names)
    hidden = torch.nonzero(~mask).flatten()
    c = chain.num_params
    g = torch.Generator().manual_seed(7)
    q = torch.rand(4, c, generator=g, dtype=torch.float64)
    q_hat = q.clone()
    q_hat[:, hidden] = 1.0 - q[:, hidden]  # errors only where the loss cannot see
    err = (1.0 - 2.0 * q[:, hidden]).square()
    assert losses.mse_q(q_hat, q, mask=mask).item() == 0.0
    _close(losses.mse_q(q_hat, q, reduction="none"), err.sum(1) / c, rtol=1e-12, atol=0)
    q_hat2 = q_hat.clone()
    q_hat2[:, 0] = q[:, 0] + 0.1  # and now a visible error too
    expected_masked = 0.01 / int(mask.sum())
    assert losses.mse_q(q_hat2, q, mask=mask).item() == pytest.approx(expected_masked, rel=1e-9)
    unmasked = ((err.sum(1) + 0.01) / c).mean().item()
    assert losses.mse_q(q_hat2, q).item() == pytest.approx(unmasked, rel=1e-9)
    assert losses.params_loss(q_hat2, q).item() == pytest.approx(10 * unmasked, rel=1e-9)


def test_per_param_errors_in_physical_units():
    chain = make("compressor")
    q = torch.full((2, 6), 0.5)
    q_hat = q.clone()
    q_hat[:, 0] = torch.tensor([0.75, 0.25])  # threshold: 0.25 in q = 10 dB each way
    q_hat[0, 1] = 1.0  # attack (log 1..60 ms): sqrt(60) ms -> 60 ms in one example
    errors = losses.per_param_errors(q_hat, q, chain)
    assert list(errors) == chain.param_names
    th = errors["compressor.threshold_db"]
    assert th["unit"] == "dB"
    assert th["mae"] == pytest.approx(10.0, rel=1e-9) and th["mse_q"] == pytest.approx(0.0625, rel=1e-9)
    at = errors["compressor.attack_ms"]
    assert at["unit"] == "ms"
    assert at["mae"] == pytest.approx((60.0 - math.sqrt(60.0)) / 2, rel=1e-6)
    assert at["mse_q"] == pytest.approx(0.125, rel=1e-9)
    assert errors["compressor.ratio"] == {"mse_q": 0.0, "mae": 0.0, "unit": ":1"}


def test_training_loss_dispatch():
    y_hat, y = _signals(batch=2, channels=1, samples=6000, seed=8, dtype=torch.float32)
    q_hat, q = torch.rand(2, 5), torch.rand(2, 5)
    assert losses.LOSSES == ("mel", "params")
    assert torch.equal(losses.training_loss("mel", y_hat=y_hat, y=y, q_hat=q_hat, q=q), losses.mel_loss(y_hat, y))
    assert torch.equal(losses.training_loss("params", y_hat=None, y=None, q_hat=q_hat, q=q),
                       10.0 * losses.mse_q(q_hat, q))
    with pytest.raises(ValueError, match="unknown loss"):
        losses.training_loss("l1", y_hat=y_hat, y=y, q_hat=q_hat, q=q)
    with pytest.raises(ValueError, match="needs y_hat and y"):
        losses.training_loss("mel", q_hat=q_hat, q=q)
    with pytest.raises(ValueError, match="same shape"):
        losses.training_loss("params", q_hat=q_hat, q=q[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        losses.training_loss("mel", y_hat=y_hat * float("nan"), y=y)


def _bad_audio_cases():
    ok = torch.randn(2, 1, 4096)
    nan = ok.clone()
    nan[0, 0, 10] = float("nan")
    return [
        (ok[0], ok[0], "dimensions"),
        (ok, ok[:1], "same shape"),
        (nan, ok, "NaN"),
        (ok, ok.to(torch.int64), "float32 or float64"),
        (ok[..., :2048], ok[..., :2048], "at least 2049 samples"),
        ([1.0], ok, "torch.Tensor"),
    ]


@pytest.mark.parametrize("metric", [losses.mel_loss, losses.mrstft], ids=lambda f: f.__name__)
@pytest.mark.parametrize("y_hat,y,message", _bad_audio_cases())
def test_bad_audio_raises(metric, y_hat, y, message):
    with pytest.raises(ValueError, match=message):
        metric(y_hat, y)


def test_bad_arguments_raise():
    ok = torch.randn(2, 1, 4096)
    with pytest.raises(ValueError, match="reduction"):
        losses.mse_y(ok, ok, reduction="sum")
    with pytest.raises(ValueError, match="same shape"):
        losses.mse_y(ok, ok[:, :, :100])
    q = torch.rand(3, 4)
    with pytest.raises(ValueError, match="mask"):
        losses.mse_q(q, q, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask keeps no parameter"):
        losses.mse_q(q, q, mask=torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \(batch, num_params\)"):
        losses.mse_q(q[0], q[0])
    with pytest.raises(ValueError, match="NaN"):
        losses.mse_q(q * float("nan"), q)
    with pytest.raises(ValueError, match="chain has 6"):
        losses.per_param_errors(q, q, make("compressor"))
    with pytest.raises(ValueError, match="list of strings"):
        losses.identifiable_mask("compressor.makeup_db")


def test_no_console_output_or_warnings(capfd):
    losses._auraloss.cache_clear()
    y_hat, y = _signals(batch=1, channels=1, samples=6000, seed=9, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for metric in AUDIO_METRICS:
            metric(y_hat, y)
    assert capfd.readouterr() == ("", "")
