"""The book's corrected claims (issue 11), each checked against an independent reference:
a closed form, a float64 computation written here, or the paper's own prose."""
from __future__ import annotations

import base64
import io
import math
import re

import numpy as np
import pytest
import scipy.integrate
import scipy.signal
import torch

from beafx import examples, paper, plots, widgets
from beafx.effects import ChebyshevClipper, Compressor, GraphicEQ, ParametricClipper, TaylorClipper, make
from beafx.functional import clip, rms_normalize

SR = 44100


def _q(effect, **values):
    return widgets.to_q(effect.param_specs, {**widgets.default_values(_registry_name(effect)), **values}).double()


def _registry_name(effect) -> str:
    return {"ParametricClipper": "clipper", "ChebyshevClipper": "chebyshev", "TaylorClipper": "taylor",
            "Compressor": "compressor", "GraphicEQ": "geq", "ParametricEQ": "peq"}[type(effect).__name__]


def _sine(freq: float, amplitude: float = 1.0, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * freq * t)).view(1, 1, -1)


def _amplitudes(y: torch.Tensor) -> np.ndarray:
    """Amplitude of every 1 Hz bin of a 1 s signal."""
    return np.abs(np.fft.rfft(y[0, 0].numpy())) / (y.shape[-1] / 2)


# --------------------------------------------------------------------------- clippers
def test_only_the_hard_clipper_is_transparent_inside_full_scale():
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    assert torch.equal(clip.soft_clip_curve(x, 2.0), x)
    assert float(clip.soft_clip_curve(torch.tensor(1.0, dtype=torch.float64), 0.0)) == pytest.approx(math.tanh(1.0))
    assert round(math.tanh(1.0), 2) == 0.76
    assert float(clip.cubic_clip(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(23 / 27)


def test_third_harmonic_of_a_full_scale_sine_through_tanh():
    effect = ParametricClipper()
    y = effect(_sine(1000.0), _q(effect, drive_db=0.0, offset=0.0, hardness=0.0))
    a = _amplitudes(y)
    measured = 20 * math.log10(a[3000] / a[1000])

    def coefficient(k):  # Fourier sine coefficient of tanh(sin theta), by quadrature
        return scipy.integrate.quad(lambda th: math.tanh(math.sin(th)) * math.sin(k * th), 0, 2 * math.pi)[0] / math.pi

    reference = 20 * math.log10(abs(coefficient(3)) / coefficient(1))
    assert measured == pytest.approx(reference, abs=1e-3)
    assert measured == pytest.approx(-23.5, abs=0.05)
    hard = ParametricClipper()(_sine(1000.0), _q(effect, drive_db=0.0, offset=0.0, hardness=2.0))
    assert _amplitudes(hard)[3000] < 1e-12


def test_offset_changes_the_small_signal_gain():
    effect = ParametricClipper()
    tiny = torch.tensor([-1e-7, 1e-7], dtype=torch.float64).view(1, 1, 2)
    for offset in (0.0, 0.25, 0.5, 1.0):
        for h, slope in ((0.0, 1 - math.tanh(offset) ** 2), (1.0, 1 - 4 * offset**2 / 9)):
            q = _q(effect, drive_db=12.0, offset=offset, hardness=h)
            y = effect.process(tiny, **effect.physical(q))[0, 0]
            assert float((y[1] - y[0]) / 2e-7) == pytest.approx(slope, rel=1e-5), (offset, h)


def test_taylor_and_chebyshev_bases_do_not_span_the_same_polynomials():
    grid = torch.linspace(-1, 1, 4001, dtype=torch.float64)
    taylor = torch.stack([grid**k for k in range(1, 25)], dim=1)  # x^1 .. x^24
    chebyshev = torch.stack(clip.chebyshev_polynomials(grid, 24), dim=1)  # T_0 .. T_23

    def residual(basis, target):
        coef = torch.linalg.lstsq(basis, target.unsqueeze(1)).solution
        return float((basis @ coef - target.unsqueeze(1)).abs().max())

    # every Taylor polynomial vanishes at 0, so a constant is missed by at least 1 there
    assert residual(taylor, torch.ones_like(grid)) >= 1 - 1e-9
    # the best uniform approximation of x^24 by degree <= 23 errs by exactly 2^-23 (Chebyshev)
    assert residual(chebyshev, grid**24) >= 2.0**-23 * (1 - 1e-6)
    # both contain x^1 .. x^23 without a constant
    assert residual(taylor, grid**7 - 0.5 * grid**3) < 1e-9
    assert residual(chebyshev, grid**7 - 0.5 * grid**3) < 1e-9
    # the effects compute exactly these bases
    x = grid.view(1, 1, -1)
    g = torch.zeros(1, 24, dtype=torch.float64)
    g[0, 23] = 1.0
    assert torch.allclose(clip.taylor_clipper(x, coefficients=g)[0, 0], grid**24)


def test_chebyshev_coefficients_are_harmonic_amplitudes_at_full_scale_only():
    effect = ChebyshevClipper()
    q = _q(effect, g1=1.0, g3=0.5)
    for level in (1.0, 0.5, 0.25):
        a = _amplitudes(effect(_sine(1000.0, level), q))
        # y = T1 + T3/2 = -x/2 + 2x^3; for x = A sin: fundamental |-A/2 + 3A^3/2|, third A^3/2
        assert a[1000] == pytest.approx(abs(-level / 2 + 1.5 * level**3), abs=1e-9)
        assert a[3000] == pytest.approx(0.5 * level**3, abs=1e-9)
    full = _amplitudes(effect(_sine(1000.0), q))
    assert full[1000] == pytest.approx(1.0) and full[3000] == pytest.approx(0.5)


def test_polynomial_clippers_have_invisible_directions():
    excerpt = plots.chain_input(examples.load("vibe_ace", seconds=0.5)).double()
    for effect in (ChebyshevClipper(), TaylorClipper()):
        values = {**widgets.default_values(_registry_name(effect)), "g1": 0.8, "g2": 0.3, "g3": -0.4, "g5": 0.2}
        half = {k: v / 2 for k, v in values.items()}
        a = rms_normalize(effect(excerpt, widgets.to_q(effect.param_specs, values).double()))
        b = rms_normalize(effect(excerpt, widgets.to_q(effect.param_specs, half).double()))
        assert torch.allclose(a, b, atol=1e-10)
    cheb = ChebyshevClipper()
    outs = [rms_normalize(cheb(excerpt, _q(cheb, g1=1.0, g3=0.3, g0=g0))) for g0 in (-1.0, 0.0, 1.0)]
    assert all(torch.allclose(o, outs[0], atol=1e-10) for o in outs)


def test_the_hard_clipper_aliases_and_oversampling_removes_it():
    effect = ParametricClipper()
    q = _q(effect, drive_db=12.0, offset=0.0, hardness=2.0)
    f0 = 2900.0
    tone = _sine(f0)
    plain = effect(tone, q)[0, 0].numpy()
    up = scipy.signal.resample_poly(tone[0, 0].numpy(), 8, 1)
    over = scipy.signal.resample_poly(effect(torch.from_numpy(up).view(1, 1, -1), q)[0, 0].numpy(), 1, 8)
    freqs = np.fft.rfftfreq(SR, 1 / SR)

    def spectrum_db(y):
        s = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        return 20 * np.log10(s / s.max() + 1e-15)

    # harmonic 11 (31.9 kHz) folds to fs - 11 f0 = 12.2 kHz, which is no harmonic of 2.9 kHz
    folded = SR - 11 * f0
    assert min(abs(folded - k * f0) for k in range(1, 8)) > 100
    at = np.argmin(np.abs(freqs - folded))
    assert spectrum_db(plain)[at] > -60
    assert spectrum_db(over)[at] < spectrum_db(plain)[at] - 30


# --------------------------------------------------------------------------- compressors
def test_attack_time_is_the_63_percent_time_and_the_rise_time_is_2_2_tau():
    compressor = Compressor()
    step = torch.cat([torch.zeros(2000), torch.ones(SR)]).double().view(1, 1, -1)
    for attack in (5.0, 10.0, 40.0):
        q = _q(compressor, threshold_db=-40.0, ratio=10.0, knee_db=0.0, attack_ms=attack)
        r = compressor.gain_reduction_db(step, q)[0].numpy()[2000:]
        final = r[-1]
        t = {p: np.argmax(r >= p * final) / SR * 1000 for p in (0.1, 1 - math.exp(-1), 0.9)}
        sample_ms = 1000 / SR
        assert t[1 - math.exp(-1)] == pytest.approx(attack, abs=2 * sample_ms)
        assert t[0.9] - t[0.1] == pytest.approx(attack * math.log(9), abs=2 * sample_ms)


def test_a_slow_attack_raises_the_crest_factor():
    compressor = Compressor()
    x = plots.chain_input(examples.load("vibe_ace", seconds=5.0))

    def crest_db(a):
        a = a.double().numpy()
        a = a - a.mean(axis=-1, keepdims=True)
        return 20 * math.log10(np.abs(a).max() / math.sqrt(np.mean(a**2)))

    with torch.no_grad():
        y = compressor(x, _q(compressor, **widgets.PRESETS["compressor"]["slow pumping"]).float())
    assert 13.0 < crest_db(x) < 15.5
    assert crest_db(y) > crest_db(x) + 5.0  # about 14 -> 21 dB


def test_the_dead_zone_has_exactly_zero_gradients():
    compressor = make("compressor")
    x = plots.chain_input(examples.load("vibe_ace", seconds=1.0, mono=True))
    with torch.no_grad():
        target = compressor(x, widgets.to_q(compressor.param_specs, {**widgets.default_values("compressor"),
                                                                    "threshold_db": -20.0, "knee_db": 0.0}))

    def grads(knee):
        q = widgets.to_q(compressor.param_specs, {**widgets.default_values("compressor"), "threshold_db": 0.0,
                                                  "knee_db": knee}).requires_grad_(True)
        (rms_normalize(compressor(x, q)) - rms_normalize(target)).square().mean().backward()
        return dict(zip([s.name for s in compressor.param_specs], q.grad[0].tolist()))

    dead = grads(0.0)
    assert all(g == 0.0 for name, g in dead.items() if name != "makeup_db"), dead
    assert abs(grads(6.0)["threshold_db"]) > 1e-4


# --------------------------------------------------------------------------- equalizers
def _rbj_db(kind, f0, gain_db, quality, freqs):
    """RBJ cookbook magnitude in dB, written out here in numpy."""
    A, w0 = 10 ** (gain_db / 40), 2 * np.pi * f0 / SR
    alpha, c = np.sin(w0) / (2 * quality), np.cos(w0)
    if kind == "peak":
        b, a = [1 + alpha * A, -2 * c, 1 - alpha * A], [1 + alpha / A, -2 * c, 1 - alpha / A]
    else:
        s = 1.0 if kind == "lowshelf" else -1.0
        c, beta = s * c, 2 * np.sqrt(A) * alpha
        b = [A * ((A + 1) - (A - 1) * c + beta), s * 2 * A * ((A - 1) - (A + 1) * c), A * ((A + 1) - (A - 1) * c - beta)]
        a = [(A + 1) + (A - 1) * c + beta, -s * 2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - beta]
    _, h = scipy.signal.freqz(b, a, worN=freqs, fs=SR)
    return 20 * np.log10(np.abs(h))


def test_graphic_eq_bands_overlap_and_its_top_shelf_reaches_full_gain_only_at_nyquist():
    geq = GraphicEQ()
    freqs = np.geomspace(20, SR / 2, 4000)
    mid = widgets.PRESETS["geq"]["mid boost"]
    assert mid == {"pk500.gain_db": 6.0, "pk1k.gain_db": 10.0, "pk2k.gain_db": 6.0}
    response = geq.magnitude_response(_q(geq, **mid), freqs)[0].numpy()
    reference = sum(_rbj_db("peak", f, gain, q, freqs) for f, gain, q in
                    zip((500.0, 1000.0, 2000.0), (6.0, 10.0, 6.0), geq.qualities[4:7]))
    assert np.allclose(response, reference, atol=1e-6)
    assert response.max() == pytest.approx(16.0, abs=0.3)
    assert 900 < freqs[response.argmax()] < 1100
    shelf = geq.magnitude_response(_q(geq, **{"hs16k.gain_db": 12.0}), [16000.0, 20000.0, SR / 2])[0].numpy()
    assert shelf[0] == pytest.approx(6.0, abs=1e-6)  # an RBJ shelf gives half its gain (in dB) at f0
    assert shelf[1] < 8.0
    assert shelf[2] == pytest.approx(12.0, abs=1e-6)


def test_a_peak_at_zero_db_is_the_identity_and_gives_its_gain_at_f0():
    from beafx.functional import filters

    b, a = filters.biquad(kind="peak", f0=3000.0, gain_db=0.0, quality=0.3, sample_rate=SR)
    assert torch.equal(b, a)
    db = _rbj_db("peak", 1000.0, 9.0, 1.0, [1000.0])
    assert db[0] == pytest.approx(9.0, abs=1e-9)


def test_mel_bands_are_far_finer_than_two_octaves():
    edges = plots.mel_band_edges_hz()
    assert len(edges) == 130 and edges[0] == 0 and edges[-1] == pytest.approx(SR / 2)
    assert int(((edges >= 500) & (edges <= 2000)).sum()) > 20  # one graphic-EQ band spans 20+ mel bands


def test_the_excerpts_hold_almost_nothing_above_17_5_khz():
    for name in examples.EXCERPTS:
        a = examples.load(name, mono=True)[0, 0].double().numpy()
        power = np.abs(np.fft.rfft(a)) ** 2
        f = np.fft.rfftfreq(len(a), 1 / SR)
        assert 10 * np.log10(power[f > 17500].sum() / power.sum()) < -50, name


# --------------------------------------------------------------------------- losses and the argument
def test_mel_loss_tolerates_only_a_fraction_of_its_hop():
    x = plots.chain_input(examples.load("vibe_ace", seconds=3.0, mono=True))

    def delayed(ms):
        n = int(round(ms * SR / 1000))
        return torch.nn.functional.pad(x, (n, 0))[..., : x.shape[-1]]

    assert paper.mel_distance(delayed(0.5), x) < 0.03
    assert paper.mel_distance(delayed(1000 * 1024 / SR), x) > 0.3  # one hop
    assert paper.mel_distance(delayed(5.0), x) > paper.value(3, "mee", "hybrid_compressor", "mel")


def test_far_in_q_same_sound_and_close_in_q_different_sound():
    x = plots.chain_input(examples.load("lets_go_fishin", start=2.0, seconds=3.0))
    peq = make("peq", synthesis=True)
    base = {"low_shelf.gain_db": 6.0, "peak1.gain_db": -4.0}
    qa = widgets.chain_q(peq, {"peq": {**base, "peak2.f0": 500.0, "peak2.quality": 0.1}})
    qb = widgets.chain_q(peq, {"peq": {**base, "peak2.f0": 6000.0, "peak2.quality": 2.0}})
    with torch.no_grad():
        assert torch.allclose(peq(x, qa), peq(x, qb), atol=1e-6)
    comp = make("compressor")
    never = {"threshold_db": 0.0, "knee_db": 0.0}
    ca = widgets.chain_q(comp, {"compressor": {**never, "ratio": 2.0, "attack_ms": 1.0, "release_ms": 10.0, "makeup_db": 0.0}})
    cb = widgets.chain_q(comp, {"compressor": {**never, "ratio": 10.0, "attack_ms": 60.0, "release_ms": 500.0,
                                               "makeup_db": 20.0}})
    with torch.no_grad():
        ya, yb = comp(x, ca), comp(x, cb)
    assert torch.allclose(ya * 10.0, yb, rtol=1e-5, atol=1e-6)  # only the make-up gain differs
    clipper = make("clipper")
    pa = widgets.chain_q(clipper, {"clipper": {"drive_db": -0.5, "offset": 0.0, "hardness": 2.0}})
    pb = widgets.chain_q(clipper, {"clipper": {"drive_db": 2.5, "offset": 0.0, "hardness": 2.0}})
    with torch.no_grad():
        assert torch.allclose(clipper(x, pa), x, atol=1e-6)  # below clipping: the identity
        clip_mel = paper.mel_distance(clipper(x, pa), clipper(x, pb))
    assert float((ca - cb).square().mean()) > 100 * float((pa - pb).square().mean())
    assert clip_mel > 100 * paper.mel_distance(ya, yb)


# --------------------------------------------------------------------------- fair listening
def _decoded(html: str) -> list[np.ndarray]:
    import soundfile as sf

    return [sf.read(io.BytesIO(base64.b64decode(d)))[0] for d in re.findall(r"data:audio/mpeg;base64,([A-Za-z0-9+/=]+)", html)]


def _rms_db(a: np.ndarray) -> float:
    a = a - a.mean(axis=0)
    return 20 * math.log10(math.sqrt(np.mean(a**2)))


def test_players_are_loudness_matched_within_half_a_db_and_below_full_scale():
    x = plots.chain_input(examples.load("lets_go_fishin", seconds=3.0))
    compressor, clipper = Compressor(), ParametricClipper()
    with torch.no_grad():
        items = {
            "dry": x,
            "compressed": compressor(x, _q(compressor, **widgets.PRESETS["compressor"]["slow pumping"]).float()),
            "clipped": clipper(x, _q(clipper, drive_db=10.0, hardness=1.2).float()),  # the landing page's clipper
            "quiet sine": 0.01 * _sine(440.0, seconds=3.0).float().expand(1, 2, -1),
        }
    table = plots.players(items).data
    levels = [_rms_db(a) for a in _decoded(table)]
    assert len(levels) == len(items)
    assert max(levels) - min(levels) < 0.5
    assert all(np.abs(a).max() < 1.0 for a in _decoded(table))
    # the level difference as rendered is stated beside each player
    for label, x_ in items.items():
        if label != "dry":
            expected = plots.levels_db(x_)[0] - plots.levels_db(items["dry"])[0]
            assert f"{expected:+.1f} dB RMS re. first" in table
    gains = plots.playback_gains(items, level="peak")  # where the level is the lesson: equal peaks
    for label, x_ in items.items():
        a = x_.double().numpy()
        a = a - a.mean(axis=-1, keepdims=True)
        assert 20 * math.log10(np.abs(a).max()) + gains[label] == pytest.approx(plots.PEAK_PLAY_DB, abs=1e-4)
    peak_table = plots.players(items, level="peak").data
    assert "at equal peak" in peak_table
    assert all(np.abs(a).max() < 1.0 for a in _decoded(peak_table))  # even the clipped one, after MP3


def test_widget_players_are_loudness_matched():
    w = widgets.widget("compressor", seconds=1.0)
    w.set(threshold_db=-35.0, ratio=10.0, makeup_db=0.0)
    a, b = (_decoded(f"data:audio/mpeg;base64,{base64.b64encode(p.value).decode()}")[0]
            for p in (w.dry_player, w.player))
    assert abs(_rms_db(a) - _rms_db(b)) < 0.5
    assert "RMS" in w.status.value


# --------------------------------------------------------------------------- the paper's numbers
def test_paper_tables_hold_the_numbers_its_prose_quotes():
    # section 3.4 quotes these numbers in its text; the tables must hold the same ones
    assert (paper.text(3, "mee", "hybrid_compressor", "mse_y"), paper.text(3, "mee", "hybrid_compressor", "mel")) == ("0.011", "0.076")
    assert (paper.text(3, "mee", "np_compressor", "mse_y"), paper.text(3, "mee", "np_compressor", "mel")) == ("0.014", "0.098")
    assert (paper.text(3, "mee", "simple_compressor", "mse_y"), paper.text(3, "mee", "simple_compressor", "mel")) == ("0.041", "0.16")
    assert paper.text(2, "tfe", "peq", "mel") == "0.32"
    assert [paper.text(5, r, "params", "mel") for r in ("compressor", "clipper")] == ["0.069", "0.064"]
    assert [paper.text(5, r, "params", "mse_q") for r in ("compressor", "clipper")] == ["0.069", "0.028"]
    assert [paper.text(5, "equalizer", c, "mel") for c in ("mel", "params")] == ["0.32", "0.40"]
    assert paper.text(5, "equalizer", "params", "mse_q") == "0.072"
    assert [paper.text(5, "chain", "mel", m) for m in ("mse_y", "mel")] == ["0.31", "0.40"]
    assert paper.text(5, "chain", "params", "mse_q") == "0.072"
    # Table 5's counter-intuitive result: parameter training won on sound for compressor and clipper
    for row in ("compressor", "clipper"):
        assert paper.value(5, row, "params", "mel") < paper.value(5, row, "mel", "mel")
    for row in ("equalizer", "chain"):
        assert paper.value(5, row, "mel", "mel") < paper.value(5, row, "params", "mel")
        assert paper.value(5, row, "params", "mse_q") < paper.value(5, row, "mel", "mse_q")


def test_paper_module_rejects_unknown_keys_and_keeps_printed_digits():
    assert paper.text(3, "identity", "simple_compressor", "mse_y") == "0.040"
    assert paper.table(2).best("peq", "mel") == "tfe"
    with pytest.raises(ValueError, match="unknown row"):
        paper.text(2, "cnn", "peq", "mel")
    with pytest.raises(ValueError, match="unknown metric"):
        paper.text(2, "tfe", "peq", "mse_q")
    with pytest.raises(ValueError, match="result tables"):
        paper.table(1)
    html = paper.table_html(5)
    assert "Table 5" in html and html.count("<tr>") == 2 + 4
