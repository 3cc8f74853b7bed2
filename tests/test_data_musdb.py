"""``musdb:PATH`` on small fake MUSDB18-HQ (wav) and MUSDB18 (stems) trees built here.

musdb needs the ffmpeg and ffprobe programs (even for wav: it probes every track);
``.ci/run`` installs them. Without them these tests are skipped, except the error-message
checks, which need no ffmpeg.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beafx.data import OFFICIAL_COUNTS, SPLITS, EffectDataset, open_source

SR = 44100
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="musdb needs ffmpeg and ffprobe"
)

#: Two of musdb's official validation tracks (musdb/configs/mus.yaml), so they form the valid split.
VALID_NAMES = ("Actions - One Minute Smile", "Triviul - Angelsaint")
TRAIN_NAMES = ("A Classic Education - NightOwl", "ANiMAL - Clinic A", "Aimee Norwich - Child")
TEST_NAMES = ("AM Contra - Heart Peripheral", "Al James - Schoolboy Facination")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_CACHE", str(tmp_path / "cache"))


def _audio(seconds: float, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    mono = 0.3 * np.sin(2 * np.pi * (100 + 37 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([mono * (1.0 - 0.25 * c) for c in range(channels)], axis=1).astype(np.float32)


def make_fake_musdb_hq(root: Path, seconds: float = 3.0) -> Path:
    """train/ (3 train + 2 official validation tracks) and test/ (2 tracks), wav, with one mono
    and one 3-channel mixture among them."""
    k = 0
    for subset, names in (("train", TRAIN_NAMES + VALID_NAMES), ("test", TEST_NAMES)):
        for name in names:
            folder = root / subset / name
            folder.mkdir(parents=True)
            channels = 1 if k == 1 else 3 if k == 5 else 2
            sf.write(str(folder / "mixture.wav"), _audio(seconds + 0.5 * k, channels, k), SR, subtype="PCM_16")
            for stem in ("vocals", "drums", "bass", "other"):
                sf.write(str(folder / f"{stem}.wav"), _audio(seconds + 0.5 * k, channels, k + 100) * 0.25, SR, subtype="PCM_16")
            k += 1
    return root


def test_missing_path_explains_how_to_get_musdb(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        open_source(f"musdb:{tmp_path / 'musdb18hq'}")
    text = str(err.value)
    for needle in ("zenodo.org", "MUSDB18-HQ", "drive.mount", "synthetic", "debian-music", "folder:PATH"):
        assert needle in text, needle


def test_malformed_trees_are_rejected_with_help(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "song.wav").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="train/ and test/"):
        open_source(f"musdb:{tmp_path / 'flat'}")
    (tmp_path / "empty" / "train" / "Some - Track").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no tracks found"):
        open_source(f"musdb:{tmp_path / 'empty'}")


@needs_ffmpeg
def test_fake_musdb18hq_gets_the_official_split_and_a_count_warning(tmp_path):
    root = make_fake_musdb_hq(tmp_path / "musdb18hq")
    with pytest.warns(UserWarning, match="not MUSDB18's 86/14/50"):
        src = open_source(f"musdb:{root}")
    assert src.is_wav
    assert [t.name for t in src.tracks("valid")] == sorted(VALID_NAMES)
    assert [t.name for t in src.tracks("train")] == sorted(TRAIN_NAMES)
    assert [t.name for t in src.tracks("test")] == sorted(TEST_NAMES)
    assert OFFICIAL_COUNTS == {"train": 86, "valid": 14, "test": 50}


@needs_ffmpeg
def test_musdb_reads_mono_mixes_of_any_channel_count(tmp_path):
    root = make_fake_musdb_hq(tmp_path / "musdb18hq")
    with pytest.warns(UserWarning):
        src = open_source(f"musdb:{root}")
    for split in SPLITS:
        for i, track in enumerate(src.tracks(split)):
            data, _ = sf.read(str(src.path(split, i)), dtype="float32", always_2d=True)
            assert track.num_samples == data.shape[0]
            np.testing.assert_allclose(src.read(split, i, 2000, 3000), data.mean(axis=1)[2000:5000], atol=1e-6)
    channels = {sf.info(str(src.path(s, i))).channels for s in SPLITS for i in range(len(src.tracks(s)))}
    assert channels == {1, 2, 3}


@needs_ffmpeg
def test_previews_shorter_than_the_clip_are_padded_with_a_warning(tmp_path):
    root = make_fake_musdb_hq(tmp_path / "previews", seconds=1.0)
    with pytest.warns(UserWarning):
        src = open_source(f"musdb:{root}")
    with pytest.warns(UserWarning, match="shorter than the 4.0 s clip"):
        ds = EffectDataset(src, "valid", "clipper", clip_samples=4 * SR, repeats=1)
    x, y, q = ds[0]
    n = src.tracks("valid")[0].num_samples
    assert x.shape == (1, 4 * SR) and float(x.abs().max()) == pytest.approx(1.0)
    assert bool((x[0, n:] == 0).all()) and bool((x[0, :n] != 0).any())


@needs_ffmpeg
def test_musdb18_stems_are_detected_and_decoded_once_into_the_cache(tmp_path):
    import stempeg

    root = tmp_path / "musdb18"
    for subset, names in (("train", ("Some - Train",) + VALID_NAMES[:1]), ("test", ("Some - Test",))):
        (root / subset).mkdir(parents=True)
        for k, name in enumerate(names):
            stems = np.stack([_audio(1.5, 2, k + j) for j in range(5)])  # mixture, drums, bass, other, vocals
            stempeg.write_stems(str(root / subset / f"{name}.stem.mp4"), stems, sample_rate=SR, writer=stempeg.StreamsWriter())
    with pytest.warns(UserWarning, match="1/1/1"):
        src = open_source(f"musdb:{root}")
    assert not src.is_wav
    assert [t.name for t in src.tracks("valid")] == [VALID_NAMES[0]]
    track = src.tracks("train")[0]
    assert abs(track.num_samples - int(1.5 * SR)) < 4096  # AAC adds some priming samples
    x = src.read("train", 0, 0, track.num_samples)
    assert x.dtype == np.float32 and np.abs(x).max() > 0.1
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 3
