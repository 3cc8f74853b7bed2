"""The music statistics of beafx.data.stats against signals with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from beafx.data import stats

SR = 44100


def test_crest_factor_of_a_sine_and_a_square():
    t = np.arange(SR) / SR
    assert stats.crest_factor_db(np.sin(2 * np.pi * 440 * t)) == pytest.approx(20 * math.log10(math.sqrt(2)), abs=0.01)
    assert stats.crest_factor_db(np.sign(np.sin(2 * np.pi * 441 * t + 0.1))) == pytest.approx(0.0, abs=0.05)


def test_spectral_slope_of_white_and_pink_noise():
    rng = np.random.default_rng(0)
    white = rng.standard_normal(10 * SR)
    spec = np.fft.rfft(rng.standard_normal(10 * SR))
    f = np.fft.rfftfreq(10 * SR, 1 / SR)
    spec[1:] /= np.sqrt(f[1:])  # power ~ 1/f: -3 dB per octave (10 log10 2)
    spec[0] = 0
    pink = np.fft.irfft(spec, 10 * SR)
    assert stats.spectral_slope_db_per_octave(white, SR) == pytest.approx(0.0, abs=0.3)
    assert stats.spectral_slope_db_per_octave(pink, SR) == pytest.approx(-10 * math.log10(2), abs=0.3)


def test_k_weighting_matches_the_bs1770_table_at_48k():
    (b1, a1), (b2, a2) = stats.k_weighting(48000)
    np.testing.assert_allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-8)
    np.testing.assert_allclose(a1, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    np.testing.assert_allclose(b2, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(a2, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-8)


def test_loudness_of_a_full_scale_1khz_sine_is_minus_3_lufs():
    # BS.1770: a 0 dBFS 997 Hz-1 kHz sine in one channel reads -3.01 LKFS.
    t = np.arange(5 * SR) / SR
    assert stats.loudness_lufs(np.sin(2 * np.pi * 997 * t), SR) == pytest.approx(-3.01, abs=0.05)
    # 20 dB quieter reads 20 LU lower.
    quiet = 0.1 * np.sin(2 * np.pi * 997 * t)
    assert stats.loudness_lufs(quiet, SR) == pytest.approx(-23.01, abs=0.05)
    # The gates drop the silent blocks around it (without them: 10 log10(5/9) = -2.6 LU lower);
    # only the blocks straddling the edges pull it down a little.
    padded = np.concatenate([np.zeros(2 * SR), quiet, np.zeros(2 * SR)])
    assert -23.4 < stats.loudness_lufs(padded, SR) < -23.0


def test_onset_rate_counts_the_hits_of_a_click_track():
    rng = np.random.default_rng(1)
    x = 0.001 * rng.standard_normal(10 * SR)
    hit = signal.sosfilt(signal.butter(2, 2000, fs=SR, output="sos"), rng.standard_normal(int(0.05 * SR)))
    hit *= np.exp(-np.arange(hit.size) / (0.01 * SR))
    times = np.arange(0.25, 10.0, 0.25)  # 4 hits per second
    for t0 in times:
        k = int(t0 * SR)
        x[k : k + hit.size] += hit
    found = stats.onset_times(x, SR)
    # The clip's abrupt start counts as one more onset (as in librosa's onset_detect).
    assert found[0] < 0.05
    assert len(found) == len(times) + 1
    assert stats.onset_rate(x, SR) == pytest.approx((len(times) + 1) / 10.0)
    assert np.max(np.min(np.abs(found[1:, None] - times[None, :]), axis=1)) < 0.03  # each onset near a hit


def test_clip_stats_peak_normalises_and_rejects_silence():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(3 * SR)
    a, b = stats.clip_stats(x, SR), stats.clip_stats(0.01 * x, SR)
    assert a == pytest.approx(b)
    assert set(a) == set(stats.STATS)
    with pytest.raises(ValueError, match="silent"):
        stats.clip_stats(np.zeros(SR), SR)
    with pytest.raises(ValueError, match="empty"):
        stats.crest_factor_db(np.zeros(0))


def test_committed_reference_is_well_formed():
    ref = stats.load_reference()
    assert ref.clip_seconds > 0
    assert set(ref.ranges) == set(stats.STATS)
    for name, (lo, hi) in ref.ranges.items():
        assert lo < hi, name
    assert len(ref.collections) >= 1
    for coll in ref.collections.values():
        assert coll["clips"] >= 20
        for name in stats.STATS:  # each collection's central 90 % lies within the union
            s = coll["stats"][name]
            assert ref.ranges[name][0] <= s["p05"] <= s["p50"] <= s["p95"] <= ref.ranges[name][1]
