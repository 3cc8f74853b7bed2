"""Equalizers (beafx.functional.filters, beafx.effects.eq) against independent references:
the cookbook formulas written out in numpy here, scipy.signal.freqz and scipy.signal.lfilter."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch

from beafx.effects import GraphicEQ, ParametricEQ, make
from beafx.functional import (
    biquad, biquad_response, cascade_response, fft_filter, fft_size, graphic_eq_quality, iir_filter, max_pole_radius,
    rfft_omega, rms_normalize,
)
from beafx.functional.filters import DEFAULT_TOLERANCE, TAIL_MARGIN, decay_length
from beafx.params import TABLE

SR = 44100
PEQ_KINDS = ["lowshelf", "peak", "peak", "peak", "highshelf"]


# --------------------------------------------------------------------------- references


def cookbook(kind: str, f0: float, gain_db: float, quality: float, fs: float = SR) -> tuple[np.ndarray, np.ndarray]:
    """RBJ Audio-EQ-Cookbook, Q form for the shelves, written out term by term (a0 = 1)."""
    A = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / fs
    cs, sn = np.cos(w0), np.sin(w0)
    alpha = sn / (2 * quality)
    if kind == "peak":
        b = [1 + alpha * A, -2 * cs, 1 - alpha * A]
        a = [1 + alpha / A, -2 * cs, 1 - alpha / A]
    elif kind == "lowshelf":
        b = [A * ((A + 1) - (A - 1) * cs + 2 * np.sqrt(A) * alpha),
             2 * A * ((A - 1) - (A + 1) * cs),
             A * ((A + 1) - (A - 1) * cs - 2 * np.sqrt(A) * alpha)]
        a = [(A + 1) + (A - 1) * cs + 2 * np.sqrt(A) * alpha,
             -2 * ((A - 1) + (A + 1) * cs),
             (A + 1) + (A - 1) * cs - 2 * np.sqrt(A) * alpha]
    elif kind == "highshelf":
        b = [A * ((A + 1) + (A - 1) * cs + 2 * np.sqrt(A) * alpha),
             -2 * A * ((A - 1) + (A + 1) * cs),
             A * ((A + 1) + (A - 1) * cs - 2 * np.sqrt(A) * alpha)]
        a = [(A + 1) - (A - 1) * cs + 2 * np.sqrt(A) * alpha,
             2 * ((A - 1) - (A + 1) * cs),
             (A + 1) - (A - 1) * cs - 2 * np.sqrt(A) * alpha]
    else:
        raise AssertionError(kind)
    b, a = np.array(b), np.array(a)
    return b / a[0], a / a[0]


def peq_sections(q: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Band biquads of one PEQ q vector, mapping q with the paper's eq. 8-9 written out here."""
    sections = []
    for band, kind in enumerate(PEQ_KINDS):
        f_spec, g_spec, q_spec = TABLE["ParametricEQ"][3 * band: 3 * band + 3]
        f0 = f_spec.minimum * (f_spec.maximum / f_spec.minimum) ** q[3 * band]
        gain = g_spec.minimum + q[3 * band + 1] * (g_spec.maximum - g_spec.minimum)
        quality = q_spec.minimum + q[3 * band + 2] * (q_spec.maximum - q_spec.minimum)
        sections.append(cookbook(kind, f0, gain, quality))
    return sections


def geq_sections(q: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    kinds = ["lowshelf"] + ["peak"] * 8 + ["highshelf"]
    centers = [31.25 * 2**k for k in range(10)]
    sections = []
    for gain_q, kind, f0 in zip(q, kinds, centers):
        w0 = 2 * np.pi * f0 / SR
        quality = 1 / (2 * np.sinh(np.log(2) / 2 * 2 * w0 / np.sin(w0)))
        sections.append(cookbook(kind, f0, -15 + 30 * gain_q, quality))
    return sections


def lfilter_cascade(x: np.ndarray, sections) -> np.ndarray:
    for b, a in sections:
        x = scipy.signal.lfilter(b, a, x, axis=-1)
    return x


def music_like(n: int, seed: int, channels: int = 1) -> np.ndarray:
    """Pink-ish noise, a bass tone and percussive noise bursts; ``(channels, n)`` float64."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(channels):
        spectrum = np.fft.rfft(rng.standard_normal(n))
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        spectrum[0] = 0
        x = np.fft.irfft(spectrum, n)
        x /= x.std()
        t = np.arange(n) / SR
        x += 0.8 * np.sin(2 * np.pi * rng.uniform(40, 80) * t)
        for onset in rng.integers(0, n, 10):
            decay = np.exp(-np.arange(n - onset) / rng.uniform(500, 4000))
            x[onset:] += 3 * decay * rng.standard_normal(n - onset)
        out.append(x / np.abs(x).max())
    return np.stack(out)


def relative_error(y: torch.Tensor, ref: np.ndarray) -> np.ndarray:
    """max|y - ref| / max|ref| over each example (all channels, the whole signal)."""
    y = y.detach().double().numpy()
    axes = tuple(range(1, ref.ndim))
    return np.abs(y - ref).max(axis=axes) / np.abs(ref).max(axis=axes)


def q_vectors(num_params: int, *, total: int, seed: int) -> torch.Tensor:
    """All 0, all 1, each parameter at 0 and at 1 with the others random, then random rows;
    the first ``total`` of them."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.zeros(num_params), torch.ones(num_params)]
    for i in range(num_params):
        for value in (0.0, 1.0):
            row = torch.rand(num_params, generator=g)
            row[i] = value
            rows.append(row)
    while len(rows) < total:
        rows.append(torch.rand(num_params, generator=g))
    return torch.stack(rows[:total]).double()


N3S = 3 * SR


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return music_like(N3S, seed=7)


# --------------------------------------------------------------------------- coefficients


@pytest.mark.parametrize("kind", ["lowshelf", "peak", "highshelf"])
def test_biquad_matches_cookbook(kind):
    rng = np.random.default_rng(0)
    f0 = rng.uniform(20, 21000, 64)
    gain = rng.uniform(-24, 24, 64)
    quality = rng.uniform(0.05, 4, 64)
    b, a = biquad(kind=kind, f0=torch.tensor(f0), gain_db=torch.tensor(gain), quality=torch.tensor(quality),
                  sample_rate=SR)
    assert b.shape == a.shape == (64, 3) and b.dtype == torch.float64
    for i in range(64):
        b_ref, a_ref = cookbook(kind, f0[i], gain[i], quality[i])
        np.testing.assert_allclose(b[i].numpy(), b_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a[i].numpy(), a_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, f_dc, f_f0, f_nyq", [
    ("peak", 0.0, 1.0, 0.0), ("lowshelf", 1.0, 0.5, 0.0), ("highshelf", 0.0, 0.5, 1.0),
])
def test_biquad_gains_at_dc_f0_nyquist(kind, f_dc, f_f0, f_nyq):
    """Defining properties: a peak has its gain at f0 and unity at DC/Nyquist; a shelf has its
    gain on its side, unity on the other and half its dB gain at f0 (Q form)."""
    for gain_db in (-15.0, 6.0, 15.0):
        b, a = biquad(kind=kind, f0=1000.0, gain_db=gain_db, quality=0.7, sample_rate=SR)
        omega = torch.tensor([0.0, 2 * math.pi * 1000 / SR, math.pi], dtype=torch.float64)
        _, h = scipy.signal.freqz(b[0].numpy(), a[0].numpy(), worN=omega.numpy())
        np.testing.assert_allclose(20 * np.log10(np.abs(h)), gain_db * np.array([f_dc, f_f0, f_nyq]), atol=1e-9)


def test_biquad_broadcasts_floats_and_keeps_gradients():
    gain = torch.tensor([-3.0, 0.0, 9.0], requires_grad=True)
    b, a = biquad(kind="peak", f0=1000.0, gain_db=gain, quality=1.0, sample_rate=SR)
    assert b.shape == (3, 3)
    b.sum().backward()
    assert gain.grad is not None and torch.isfinite(gain.grad).all()
    b1, _ = biquad(kind="lowshelf", f0=100.0, gain_db=3.0, quality=0.7, sample_rate=SR)
    assert b1.shape == (1, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="bandpass"), "kind"),
    (dict(f0=0.0), "f0"),
    (dict(f0=22050.0), "f0"),
    (dict(quality=0.0), "quality"),
    (dict(gain_db=float("nan")), "gain_db contains NaN"),
    (dict(sample_rate=-1), "sample_rate"),
    (dict(f0=torch.ones(2, 2) * 100), "(batch,)"),
    (dict(f0=torch.ones(2) * 100, gain_db=torch.ones(3)), "batch size"),
])
def test_biquad_rejects_bad_arguments(kwargs, message):
    args = dict(kind="peak", f0=1000.0, gain_db=3.0, quality=1.0, sample_rate=SR) | kwargs
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        biquad(**args)


def test_graphic_eq_quality_values():
    q = graphic_eq_quality(torch.tensor([31.25 * 2**k for k in range(10)]), sample_rate=SR)
    assert round(float(q[0]), 3) == 0.667 and round(float(q[1]), 3) == 0.667
    assert round(float(q[8]), 3) == 0.508  # 8 kHz
    assert round(float(q[9]), 3) == 0.127  # 16 kHz shelf
    assert bool((q[1:] <= q[:-1]).all())
    assert GraphicEQ().qualities == pytest.approx(q.tolist(), rel=1e-12)
    with pytest.raises(ValueError, match="f0"):
        graphic_eq_quality(30000.0, sample_rate=SR)


def test_graphic_eq_bands_are_two_octaves_wide():
    """RBJ's bandwidth: two octaves between the frequencies where a peak has half its dB gain.
    The warping term w0 / sin(w0) keeps this close near Nyquist too (1.92 octaves at 8 kHz)."""
    eq = GraphicEQ()
    freqs = np.geomspace(5, SR / 2, 100001)
    for band in range(1, 9):
        q = torch.full((1, 10), 0.5, dtype=torch.float64)
        q[0, band] = 1.0  # +15 dB, the other bands flat
        gains = eq.band_magnitude_responses(q, freqs)[0, band].numpy()
        inside = freqs[gains >= 7.5]
        width = np.log2(inside.max() / inside.min())
        assert (abs(width - 2) < 0.01) if eq.centers_hz[band] <= 2000 else (1.9 < width < 2.0), (band, width)


# --------------------------------------------------------------------------- responses


def test_biquad_response_matches_freqz():
    rng = np.random.default_rng(1)
    omega = torch.linspace(0, math.pi, 777, dtype=torch.float64)
    for kind in ("lowshelf", "peak", "highshelf"):
        f0, gain, quality = rng.uniform(30, 20000, 8), rng.uniform(-15, 15, 8), rng.uniform(0.1, 2, 8)
        b, a = biquad(kind=kind, f0=torch.tensor(f0), gain_db=torch.tensor(gain), quality=torch.tensor(quality),
                      sample_rate=SR)
        h = biquad_response(b, a, omega=omega)
        h32 = biquad_response(b, a, omega=omega, dtype=torch.float32)
        assert h.shape == (8, 777) and h32.dtype == torch.complex64
        for i in range(8):
            _, ref = scipy.signal.freqz(b[i].numpy(), a[i].numpy(), worN=omega.numpy())
            np.testing.assert_allclose(h[i].numpy(), ref, rtol=1e-10)
            np.testing.assert_allclose(h32[i].numpy(), ref, rtol=2e-5)


def test_float32_response_is_accurate_at_low_frequencies():
    """A 30 Hz shelf's ``1 + a1 + a2`` is ~1e-5: the float32 response must not cancel it."""
    b, a = biquad(kind="lowshelf", f0=30.0, gain_db=15.0, quality=2.0, sample_rate=SR)
    omega = rfft_omega(2**16)[:200]
    _, ref = scipy.signal.freqz(b[0].numpy(), a[0].numpy(), worN=omega.numpy())
    h32 = biquad_response(b, a, omega=omega, dtype=torch.float32)[0].numpy()
    np.testing.assert_allclose(h32, ref, rtol=1e-5)


def test_cascade_response_is_product_of_freqz():
    q = q_vectors(15, total=6, seed=3)
    eq = ParametricEQ()
    b, a = eq.coefficients(q)
    omega = torch.linspace(0, math.pi, 513, dtype=torch.float64)
    h = cascade_response(b, a, omega=omega)
    for i in range(q.shape[0]):
        ref = np.ones(513, dtype=complex)
        for bb, aa in peq_sections(q[i].numpy()):
            ref *= scipy.signal.freqz(bb, aa, worN=omega.numpy())[1]
        np.testing.assert_allclose(h[i].numpy(), ref, rtol=1e-9)


def test_magnitude_responses_for_plots():
    eq = ParametricEQ()
    q = q_vectors(15, total=4, seed=5)
    freqs = np.geomspace(10, SR / 2, 300)
    total = eq.magnitude_response(q, freqs)
    bands = eq.band_magnitude_responses(q, freqs)
    assert total.shape == (4, 300) and bands.shape == (4, 5, 300)
    for i in range(4):
        ref = np.ones(300, dtype=complex)
        for bb, aa in peq_sections(q[i].numpy()):
            ref *= scipy.signal.freqz(bb, aa, worN=freqs, fs=SR)[1]
        np.testing.assert_allclose(total[i].numpy(), 20 * np.log10(np.abs(ref)), atol=1e-8)
    np.testing.assert_allclose(bands.sum(dim=1).numpy(), total.numpy(), atol=1e-8)
    with pytest.raises(ValueError, match="freqs_hz"):
        eq.magnitude_response(q, [100.0, 30000.0])


# --------------------------------------------------------------------------- FFT size rule


def test_decay_length_and_fft_size():
    for radius in (0.5, 0.99, 0.99993):
        n = decay_length(radius, level=1e-5)
        assert radius**n <= 1e-5 < radius ** (n - 1)
    size = fft_size(441000, 0.9999, tolerance=1e-3)
    assert size >= 441000 + decay_length(0.9999, level=1e-3 * TAIL_MARGIN)
    assert size == scipy.fft.next_fast_len(size, real=True)
    with pytest.raises(ValueError, match="unstable"):
        fft_size(1000, 1.0)


def test_max_pole_radius_matches_numpy_roots():
    q = q_vectors(15, total=20, seed=11)
    _, a = ParametricEQ().coefficients(q)
    expected = max(np.abs(np.roots(row)).max() for row in a.reshape(-1, 3).numpy())
    assert max_pole_radius(a) == pytest.approx(expected, rel=1e-9)


def test_tail_beyond_fft_padding_is_below_tolerance():
    """The aliasing bound: sum_{k > L} |h[k]| <= tolerance for the slowest PEQ (low shelf at 30 Hz,
    Q 0.1, +15 dB, with every other band slow too), h computed by lfilter."""
    for gain_q in (0.0, 1.0):
        q = torch.tensor([[0.0, 1.0, 0.0] + [0.0, gain_q, 0.0] * 3 + [0.0, gain_q, 0.0]], dtype=torch.float64)
        _, a = ParametricEQ().coefficients(q)
        # n_fft >= N + L, so the output's first N samples alias only h[k] for k > L.
        tail_start = decay_length(max_pole_radius(a), level=DEFAULT_TOLERANCE * TAIL_MARGIN) + 1
        impulse = np.zeros(4 * tail_start)
        impulse[0] = 1
        h = lfilter_cascade(impulse, peq_sections(q[0].numpy()))
        assert np.abs(h[tail_start:]).sum() <= DEFAULT_TOLERANCE


# --------------------------------------------------------------------------- outputs vs lfilter


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_parametric_eq_matches_lfilter_for_50_q(music, dtype):
    q = q_vectors(15, total=50, seed=0)
    x = torch.from_numpy(music)[None].expand(50, 1, N3S).to(dtype)
    y = ParametricEQ()(x, q)
    assert y.dtype == dtype and y.shape == x.shape
    ref = np.stack([lfilter_cascade(music, peq_sections(row)) for row in q.numpy()])
    err = relative_error(y, ref)
    assert err.max() <= 1e-3, f"worst relative error {err.max():.2e} at q #{err.argmax()}"


def test_graphic_eq_matches_lfilter(music):
    q = q_vectors(10, total=26, seed=1)
    x = torch.from_numpy(music)[None].expand(26, 1, N3S).float()
    y = GraphicEQ()(x, q.float())
    ref = np.stack([lfilter_cascade(music, geq_sections(row)) for row in q.numpy()])
    err = relative_error(y, ref)
    assert err.max() <= 1e-3, f"worst relative error {err.max():.2e} at q #{err.argmax()}"


def test_worst_case_signals_for_time_aliasing():
    """Slowest filters with a sustained 10 Hz tone (its tail wraps coherently) and a spike on the
    last sample (its whole impulse response wraps onto the start)."""
    n = SR
    tone = np.sin(2 * np.pi * 10 * np.arange(n) / SR)
    spike = np.zeros(n)
    spike[-1] = 1.0
    q = torch.tensor([[0.0, 1.0, 0.0] + [0.0, 0.0, 0.0] * 3 + [1.0, 0.0, 0.0],
                      [0.0, 1.0, 0.0] + [0.0, 1.0, 0.0] * 3 + [0.0, 1.0, 0.0]], dtype=torch.float64)
    for signal in (tone, spike, tone + spike):
        x = torch.from_numpy(signal)[None, None].expand(2, 1, n).float()
        ref = np.stack([lfilter_cascade(signal[None], peq_sections(row)) for row in q.numpy()])
        assert relative_error(ParametricEQ()(x, q.float()), ref).max() <= 1e-3


def test_synthesis_path_equals_lfilter(music):
    q = q_vectors(15, total=8, seed=2)
    x = torch.from_numpy(music)[None].expand(8, 1, N3S)
    y = ParametricEQ(synthesis=True)(x, q)
    ref = np.stack([lfilter_cascade(music, peq_sections(row)) for row in q.numpy()])
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    y32 = GraphicEQ(synthesis=True)(x.float(), q[:, :10].float())
    assert y32.dtype == torch.float32 and not y32.requires_grad


def test_synthesis_path_refuses_gradients():
    eq = ParametricEQ(synthesis=True)
    q = torch.rand(1, 15, requires_grad=True)
    with pytest.raises(ValueError, match="no gradients"):
        eq(torch.randn(1, 1, 100), q)
    with torch.no_grad():
        assert eq(torch.randn(1, 1, 100), q).shape == (1, 1, 100)


# --------------------------------------------------------------------------- authors' cascade


def authors_cascade(x: np.ndarray, sections, *, remove_dc: bool = True):
    """The authors' PEQ: DC removal and peak normalisation before every band, each band an
    lfilter. Returns the output and, per band, the removed mean and the peak divided by."""
    means, peaks = [], []
    for b, a in sections:
        m = x.mean() if remove_dc else 0.0
        p = np.abs(x - m).max()
        means.append(m)
        peaks.append(p)
        x = scipy.signal.lfilter(b, a, (x - m) / p)
    return x, means, peaks


def test_peak_normalisation_between_bands_commutes(music):
    """Scaling commutes with linear filters: with peak normalisation only, the authors' cascade
    is the product EQ up to a gain, so they are equal after RMS normalisation."""
    q = q_vectors(15, total=50, seed=4)
    x = torch.from_numpy(music)[None].expand(50, 1, N3S)
    ours = {synthesis: rms_normalize(ParametricEQ(synthesis=synthesis)(x, q)) for synthesis in (True, False)}
    for i, row in enumerate(q):
        y_authors, _, _ = authors_cascade(music[0], peq_sections(row.numpy()), remove_dc=False)
        y_authors = rms_normalize(torch.from_numpy(y_authors))
        assert (ours[True][i, 0] - y_authors).abs().max() <= 1e-9
        assert (ours[False][i, 0] - y_authors).abs().max() <= 1e-4


def test_authors_dc_removal_adds_only_filtered_steps(music):
    """With DC removal as well, the authors' output times the product of the peaks is the product
    EQ applied to x minus, for each band k, its removed mean times the step response of bands
    k..K (scaled by the peaks before k): nothing else differs."""
    q = q_vectors(15, total=12, seed=5)
    x = music[0] - music[0].mean()
    ours = ParametricEQ(synthesis=True)(torch.from_numpy(x)[None, None].expand(12, 1, N3S), q)[:, 0].numpy()
    for row, y in zip(q, ours):
        sections = peq_sections(row.numpy())
        y_authors, means, peaks = authors_cascade(x, sections)
        steps = sum(
            means[k] * np.prod(peaks[:k]) * lfilter_cascade(np.ones_like(x), sections[k:]) for k in range(5)
        )
        np.testing.assert_allclose(y_authors * np.prod(peaks), y - steps, atol=1e-9 * np.abs(y).max())


def test_product_eq_equals_authors_cascade_after_rms_normalisation(music):
    """Through a Chain (DC removal + peak normalisation before the EQ), the product EQ matches the
    authors' normalise-between-bands cascade after RMS normalisation: root-mean-square difference
    <= 1e-4. The filtered DC steps above are its only source, at the onset; they matter most when
    every band cuts (q = 0: about -40 dB of signal against steps passed at unity DC gain), where
    the difference reaches ~1e-3 rms and ~1e-2 at the peak sample (measured 3-8e-4 and 3-8e-3)."""
    q = q_vectors(15, total=50, seed=6)
    ours = rms_normalize(make("peq", synthesis=True)(torch.from_numpy(music)[None].expand(50, 1, N3S), q))
    for i, row in enumerate(q):
        y_authors, _, _ = authors_cascade(music[0], peq_sections(row.numpy()))
        diff = ours[i, 0] - rms_normalize(torch.from_numpy(y_authors))
        all_cut = i == 0
        assert diff.square().mean().sqrt() <= (1e-3 if all_cut else 1e-4), f"q #{i}"
        assert diff.abs().max() <= 1e-2


# --------------------------------------------------------------------------- gradients


def test_fft_filter_gradcheck():
    """Finite differences in float64 through the custom backward (fixed n_fft)."""
    kinds = ["lowshelf", "peak", "highshelf"]

    def filtered(x, p):
        pairs = [biquad(kind=k, f0=p[:, 3 * i], gain_db=p[:, 3 * i + 1], quality=p[:, 3 * i + 2], sample_rate=SR)
                 for i, k in enumerate(kinds)]
        return fft_filter(x, torch.stack([b for b, _ in pairs], 1), torch.stack([a for _, a in pairs], 1), n_fft=1024)

    torch.manual_seed(0)
    x = torch.randn(2, 2, 16, dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[100.0, 6.0, 0.7, 1000.0, -10.0, 1.5, 8000.0, 4.0, 0.5],
                      [300.0, -6.0, 1.7, 3000.0, 10.0, 0.3, 12000.0, -4.0, 1.5]], dtype=torch.float64,
                     requires_grad=True)
    assert torch.autograd.gradcheck(filtered, (x, p), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("cls, num_params", [(ParametricEQ, 15), (GraphicEQ, 10)])
def test_effect_gradcheck_in_q_and_x(cls, num_params):
    torch.manual_seed(1)
    x = torch.randn(1, 2, 24, dtype=torch.float64, requires_grad=True)
    q = torch.rand(1, num_params, dtype=torch.float64).clamp(0.05, 0.95).requires_grad_(True)
    assert torch.autograd.gradcheck(cls(), (x, q), atol=1e-6, rtol=1e-4)


def test_custom_backward_matches_plain_autograd(music):
    """The fast analytic backward of fft_filter equals autograd through cascade_response."""
    q = q_vectors(15, total=4, seed=8).requires_grad_(True)
    x = torch.from_numpy(music[:, :8192])[None].expand(4, 1, 8192)
    eq = ParametricEQ()
    weights = torch.randn(4, 1, 8192, dtype=torch.float64)
    grad_fast, = torch.autograd.grad((eq(x, q) * weights).sum(), q)

    b, a = eq.coefficients(q)
    n_fft = fft_size(8192, max_pole_radius(a))
    h = cascade_response(b, a, omega=rfft_omega(n_fft))
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * h[:, None], n=n_fft)[..., :8192]
    grad_plain, = torch.autograd.grad((y * weights).sum(), q)
    torch.testing.assert_close(grad_fast, grad_plain, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls, num_params", [(ParametricEQ, 15), (GraphicEQ, 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_outputs_and_gradients_at_extremes(cls, num_params, dtype):
    n = 4096
    silence = torch.zeros(1, 1, n)
    spike = torch.zeros(1, 1, n)
    spike[..., n // 2] = 1.0
    noise = torch.from_numpy(music_like(n, seed=3))[None]
    for signal in (silence, spike, noise):
        for q in (torch.zeros(1, num_params), torch.ones(1, num_params), torch.rand(1, num_params)):
            x = signal.to(dtype).requires_grad_(True)
            q = q.to(dtype).requires_grad_(True)
            y = cls()(x, q)
            loss = rms_normalize(y).square().mean() + y.abs().sum()
            loss.backward()
            assert torch.isfinite(y).all()
            assert torch.isfinite(x.grad).all() and torch.isfinite(q.grad).all()


# --------------------------------------------------------------------------- channels and shapes


@pytest.mark.parametrize("channels", [1, 2, 5])
def test_channels_are_processed_independently_and_identically(channels):
    n = 8192
    signals = torch.from_numpy(music_like(n, seed=9, channels=channels))[None].expand(2, channels, n).contiguous()
    q = torch.rand(2, 15, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eq = ParametricEQ()
    y = eq(signals, q)
    for c in range(channels):
        torch.testing.assert_close(y[:, c: c + 1], eq(signals[:, c: c + 1], q), rtol=0, atol=1e-12)
    same = eq(signals[:, :1].expand(2, channels, n), q)
    torch.testing.assert_close(same, same[:, :1].expand_as(same), rtol=0, atol=1e-12)


def test_param_specs_equal_the_table():
    assert ParametricEQ.param_specs == TABLE["ParametricEQ"]
    assert GraphicEQ.param_specs == TABLE["GraphicEQ"]
    assert ParametricEQ().num_params == 15 and GraphicEQ().num_params == 10


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("cls, num_params", [(ParametricEQ, 15), (GraphicEQ, 10)])
def test_bad_inputs_raise_value_error(cls, num_params):
    eq = cls()
    x = torch.randn(2, 1, 256)
    q = torch.rand(2, num_params)
    cases = [
        (x[0], q, "dimensions"),
        (x, q[:, :-1], f"takes {num_params}"),
        (x, q[None], "shape"),
        (x.clone().index_fill_(2, torch.tensor([3]), float("nan")), q, "NaN or Inf"),
        (x.clone().index_fill_(2, torch.tensor([3]), float("inf")), q, "NaN or Inf"),
        (x, q.clone().index_fill_(1, torch.tensor([0]), float("nan")), "NaN or Inf"),
        (x, q + 1.5, r"\[0, 1\]"),
        (x, q - 1.5, r"\[0, 1\]"),
        (x, q[:1], "batch size"),
    ]
    for xs, qs, message in cases:
        with pytest.raises(ValueError, match=message):
            eq(xs, qs)


def test_sample_rate_below_band_frequencies_is_rejected():
    with pytest.raises(ValueError, match="Nyquist"):
        ParametricEQ(sample_rate=32000)
    with pytest.raises(ValueError, match="Nyquist"):
        GraphicEQ(sample_rate=22050)
    assert GraphicEQ(sample_rate=48000).qualities[-1] > GraphicEQ(sample_rate=44100).qualities[-1]


def test_fft_filter_rejects_mismatched_coefficients():
    b, a = ParametricEQ().coefficients(torch.rand(2, 15))
    with pytest.raises(ValueError, match="batch"):
        fft_filter(torch.randn(3, 1, 100), b, a)
    with pytest.raises(ValueError, match="shorter"):
        fft_filter(torch.randn(2, 1, 100), b, a, n_fft=50)
    with pytest.raises(ValueError, match="shape"):
        iir_filter(torch.randn(2, 1, 100), b[..., :2], a[..., :2])


# --------------------------------------------------------------------------- devices and bench


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    q = q_vectors(15, total=6, seed=12).float()
    x = torch.from_numpy(music_like(SR, seed=4, channels=2))[None].expand(6, 2, SR).float()
    eq = ParametricEQ()
    y_cpu = eq(x, q)
    q_gpu = q.cuda().requires_grad_(True)
    y_gpu = eq(x.cuda(), q_gpu)
    y_gpu.square().mean().backward()
    assert y_gpu.device.type == "cuda" and torch.isfinite(q_gpu.grad).all()
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=0, atol=1e-5 * float(y_cpu.abs().max()))
    torch.testing.assert_close(ParametricEQ(synthesis=True)(x.cuda(), q.cuda()).cpu(),
                               ParametricEQ(synthesis=True)(x, q))


def test_bench_eq_quick_runs_and_meets_the_error_target():
    """The bench's own code path (small sizes); speed is never asserted."""
    from beafx.bench import run

    lines = {line.name: line for line in run(["eq"], quick=True)}
    ours = [line for name, line in lines.items() if "beafx" in name]
    assert len(ours) == 4 and any("authors" in name for name in lines)
    for line in ours:
        assert line.extra["max_rel_error"] <= 1e-3, line
    timed = [line for line in lines.values() if line.seconds is not None]
    assert all(line.seconds > 0 for line in timed)
    assert all(line.ratio is not None and line.ratio > 0 for line in timed if line.baseline)
