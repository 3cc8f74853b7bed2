"""The synthetic source: sizes, determinism, random access, and music-likeness measured
against the ranges of real recordings (beafx/data/assets/music_stats.json)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beafx.data import OFFICIAL_COUNTS, open_source, stats
from beafx.data.music import INSTRUMENTS, Song
from beafx.data.synthetic import SyntheticSource

SR = 44100
REAL_MUSIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "music"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_CACHE", str(tmp_path / "cache"))


def test_splits_have_musdb_sizes_and_songs_are_minutes_long():
    src = open_source("synthetic")
    assert {s: len(src.tracks(s)) for s in src.splits} == OFFICIAL_COUNTS
    seconds = [t.seconds() for s in src.splits for t in src.tracks(s)]
    assert 60 < min(seconds) and max(seconds) < 330
    assert len({t.name for s in src.splits for t in src.tracks(s)}) == sum(OFFICIAL_COUNTS.values())


def test_songs_vary_in_tempo_key_mode_and_style():
    songs = [Song(key=(0, 0, i)) for i in range(86)]
    bpm = np.array([s.bpm for s in songs])
    assert bpm.min() < 90 and bpm.max() > 150
    assert len({s.tonic for s in songs}) == 12
    assert len({s.mode for s in songs}) == 4
    assert len({s.drum_style for s in songs}) >= 4 and len({s.chord_style for s in songs}) == 4
    energies = np.array([sec.energy for s in songs for sec in s.sections])
    assert energies.min() < 0.35 and energies.max() > 0.9  # quiet and loud sections
    for instrument in INSTRUMENTS:  # every instrument plays somewhere in most songs
        assert sum(any(s.notes(instrument, b) for b in range(s.num_bars)) for s in songs[:10]) >= 8


def test_deterministic_per_seed_and_different_across_seeds():
    a, b, c = SyntheticSource(seed=0), SyntheticSource(seed=0), SyntheticSource(seed=1)
    start = 40 * SR
    x = a.read("train", 3, start, 2 * SR)
    np.testing.assert_array_equal(x, b.read("train", 3, start, 2 * SR))
    assert not np.allclose(x, c.read("train", 3, start, 2 * SR))
    assert not np.allclose(x, a.read("valid", 3, start, 2 * SR))  # splits hold different songs


def test_random_access_windows_agree_where_they_overlap():
    src = SyntheticSource()
    whole = src.read("train", 5, 30 * SR, 4 * SR)
    later = src.read("train", 5, 31 * SR + 123, 2 * SR)
    np.testing.assert_allclose(later, whole[SR + 123 : 3 * SR + 123], atol=1e-4 * np.abs(whole).max())


def test_has_transients_and_a_bass_register():
    src = SyntheticSource()
    x = src.read("train", 0, src.tracks("train")[0].num_samples // 3, 4 * SR)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    low = spec[(f > 30) & (f < 150)].sum() / spec.sum()
    assert low > 0.05  # bass and kick
    assert stats.onset_rate(x, SR) > 1.0


def _synthetic_clip_stats(n_clips: int, seconds: float) -> list[dict[str, float]]:
    src = SyntheticSource()
    rng = np.random.default_rng(123)
    length = int(seconds * SR)
    rows = []
    for k in range(n_clips):
        split = ("train", "valid", "test")[k % 3]
        i = int(rng.integers(len(src.tracks(split))))
        start = int(rng.integers(0, src.tracks(split)[i].num_samples - length))
        clip = src.read(split, i, start, length)
        if np.abs(clip).max() >= 1e-5:
            rows.append(stats.clip_stats(clip, SR))
    return rows


def test_synthetic_clips_are_inside_the_ranges_of_real_music():
    ref = stats.load_reference()
    rows = _synthetic_clip_stats(36, ref.clip_seconds)
    for name in stats.STATS:
        values = np.array([r[name] for r in rows])
        lo, hi = ref.ranges[name]
        inside = np.mean((values >= lo) & (values <= hi))
        assert inside >= 0.85, f"{name}: only {inside:.0%} of synthetic clips inside [{lo:.2f}, {hi:.2f}]: {values}"
        assert lo <= np.median(values) <= hi, name
        # Varied, not one timbre: the synthetic spread covers a fair part of the real one.
        spread = np.percentile(values, 90) - np.percentile(values, 10)
        assert spread >= 0.2 * (hi - lo), f"{name}: spread {spread:.2f} too narrow against [{lo:.2f}, {hi:.2f}]"


@pytest.mark.skipif(not REAL_MUSIC.is_dir(), reason="the real recordings (../shared/data/music) are not in this checkout")
def test_committed_reference_reproduces_from_the_real_recordings():
    ref = stats.load_reference()
    name = next((k for k in ref.collections if k.startswith("folder:") and k.endswith("music")), None)
    if name is None:
        pytest.skip("the committed reference has no folder:.../music collection")
    with pytest.warns(UserWarning, match="ranked by hash"):
        src = open_source(f"folder:{REAL_MUSIC}")
    rows = stats.measure_source(src, clip_seconds=ref.clip_seconds)
    assert len(rows) == ref.collections[name]["clips"]
    summary = stats.summarize(rows)
    for stat in stats.STATS:
        for q in ("p05", "p50", "p95"):
            assert summary[stat][q] == pytest.approx(ref.collections[name]["stats"][stat][q], abs=1e-3), (stat, q)
