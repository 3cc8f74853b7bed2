"""Source specs, the folder source (split, cache, random access, bad files) and debian-music."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beafx.data import SPLITS, open_source, parse_source
from beafx.data.cache import audio_cache_dir, resampled_length
from beafx.data.folder import FolderSource, assign_splits

SR = 44100

# Small test folders trigger the "ranked by hash" fallback on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:only .* files.*ranked by hash:UserWarning")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_CACHE", str(tmp_path / "cache"))


def _tone(seconds: float, rate: int, channels: int, freq: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(t.size)
    return np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def _music_folder(root: Path, n: int = 12) -> Path:
    """n small files in wav/flac/ogg, mono and stereo, 44.1 and 48 kHz, plus non-audio files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    formats = [("wav", SR, 2), ("flac", 48000, 1), ("ogg", SR, 2), ("wav", 22050, 3)]
    for i in range(n):
        ext, rate, ch = formats[i % len(formats)]
        folder = root / "sub" if i % 3 == 0 else root
        sf.write(str(folder / f"track{i:02d}.{ext}"), _tone(1.0 + 0.1 * i, rate, ch, 110.0 * (1 + i % 5), i), rate)
    (root / "notes.txt").write_text("not audio")
    (root / "cover.png").write_bytes(b"\x89PNG not really")
    return root


# --------------------------------------------------------------------------------------------
# Specs


@pytest.mark.parametrize(
    "spec, expected",
    [("synthetic", ("synthetic", "")), ("debian-music", ("debian-music", "")), ("musdb:/data/m", ("musdb", "/data/m")),
     ("folder:~/music", ("folder", "~/music")), (" folder:/x ", ("folder", "/x"))],
)
def test_parse_source(spec, expected):
    assert parse_source(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [("", "non-empty"), ("mp3:/x", "unknown data source"), ("musdb:", "needs a path"), ("folder:  ", "needs a path"),
     ("synthetic:3", "takes no argument"), ("MUSDB", "unknown data source"), (None, "non-empty")],
)
def test_bad_specs_are_value_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        open_source(spec)


def test_a_bare_existing_path_suggests_the_folder_prefix(tmp_path):
    with pytest.raises(ValueError, match=f"folder:{tmp_path}"):
        parse_source(str(tmp_path))


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_source(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="not a folder"):
        open_source(f"folder:{tmp_path / 'a.wav'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no audio here")
    with pytest.raises(ValueError, match="no audio files"):
        open_source(f"folder:{tmp_path / 'empty'}")


# --------------------------------------------------------------------------------------------
# Folder source


def test_folder_source_reads_every_audio_file_once_into_the_cache(tmp_path):
    root = _music_folder(tmp_path / "music")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    src = open_source(f"folder:{root}")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the source
    names = sorted(t.name for s in SPLITS for t in src.tracks(s))
    assert names == sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".wav", ".flac", ".ogg"))
    cache = audio_cache_dir()
    assert cache.is_dir() and str(cache).startswith(os.environ["BEAFX_CACHE"])
    assert len(list(cache.glob("*.npy"))) == 12
    mtimes = {p: p.stat().st_mtime_ns for p in cache.glob("*.npy")}
    open_source(f"folder:{root}")  # a second opening decodes nothing
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.npy")} == mtimes


def test_folder_tracks_are_mono_44k1_and_crops_match_the_file(tmp_path):
    root = _music_folder(tmp_path / "music")
    src = FolderSource(root)
    for split in SPLITS:
        for i, track in enumerate(src.tracks(split)):
            path = src.path(split, i)
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            assert track.num_samples == resampled_length(data.shape[0], rate)
            if rate == SR and path.suffix == ".wav":  # lossless and not resampled: exact up to int16 caching
                mono = data.mean(axis=1)
                crop = src.read(split, i, 1000, 5000)
                assert crop.dtype == np.float32 and crop.shape == (5000,)
                np.testing.assert_allclose(crop, mono[1000:6000], atol=2 * np.abs(mono).max() / 32767)
    # Past the end: zeros.
    tail = src.read("train", 0, src.tracks("train")[0].num_samples - 10, 100)
    assert np.all(tail[10:] == 0)


def test_resampled_tone_keeps_its_pitch(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    t = np.arange(48000) / 48000
    sf.write(str(root / "a.flac"), 0.5 * np.sin(2 * np.pi * 1000 * t), 48000)
    for name in ("b.wav", "c.wav"):
        sf.write(str(root / name), 0.1 * np.ones(4410), SR)
    src = FolderSource(root)
    split, i = next((s, k) for s in SPLITS for k, tr in enumerate(src.tracks(s)) if tr.name == "a.flac")
    x = src.read(split, i, 0, SR)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    assert np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(spec)] == pytest.approx(1000, abs=2)


def test_opus_and_mp3_files_are_decoded_too(tmp_path):
    root = tmp_path / "compressed"
    root.mkdir()
    def tone(rate):
        return (0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)

    sf.write(str(root / "a.opus"), tone(48000), 48000, format="OGG", subtype="OPUS")
    sf.write(str(root / "b.mp3"), tone(SR), SR, format="MP3")
    sf.write(str(root / "c.wav"), tone(SR), SR)
    src = FolderSource(root)
    found = {tr.name: (s, k) for s in SPLITS for k, tr in enumerate(src.tracks(s))}
    assert set(found) == {"a.opus", "b.mp3", "c.wav"}
    for name in ("a.opus", "b.mp3"):
        split, k = found[name]
        x = src.read(split, k, SR // 2, SR // 2)
        spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        assert np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(spec)] == pytest.approx(440, abs=3), name
        assert 0.3 < np.abs(x).max() < 0.7, name


def test_hash_split_is_seeded_deterministic_and_stable_when_files_are_added():
    names = [f"song{i:03d}.wav" for i in range(600)]
    a = assign_splits(names, seed=0)
    assert a == assign_splits(names, seed=0)
    assert a != assign_splits(names, seed=1)
    fractions = {s: len(v) / len(names) for s, v in a.items()}
    assert fractions["train"] == pytest.approx(86 / 150, abs=0.06)
    assert fractions["valid"] == pytest.approx(14 / 150, abs=0.04)
    more = assign_splits(names + [f"extra{i}.wav" for i in range(50)], seed=0)
    for split in SPLITS:  # the files already there keep their split
        assert [i for i in more[split] if i < len(names)] == a[split]


def test_tiny_folders_still_get_every_split_with_a_warning():
    with pytest.warns(UserWarning, match="ranked by hash"):
        out = assign_splits(["a.wav", "b.wav", "c.wav"], seed=0)
    assert sorted(len(v) for v in out.values()) == [1, 1, 1]


def _bad_files(root: Path) -> list[str]:
    """A truncated wav (header cut before its data), random bytes named .wav and a text file
    named .mp3, next to whatever ``root`` holds; returns their relative names."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    good = root / "sub" / "whole.wav"
    sf.write(str(good), _tone(0.5, SR, 2, 220.0, 7), SR)
    (root / "truncated.wav").write_bytes(good.read_bytes()[:30])
    (root / "sub" / "garbage.wav").write_bytes(np.random.default_rng(1).bytes(5000))
    (root / "readme.mp3").write_text("these are the liner notes, not an mp3\n" * 20)
    good.unlink()
    return ["truncated.wav", "sub/garbage.wav", "readme.mp3"]


def _unreadable_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "cannot be read" in str(w.message)]


def test_unreadable_files_are_skipped_with_one_warning_that_lists_them(tmp_path):
    root = tmp_path / "music"
    bad = _bad_files(root)
    sf.write(str(root / "good.wav"), _tone(1.0, SR, 1, 440.0, 3), SR)
    with pytest.warns(UserWarning) as record:
        src = open_source(f"folder:{root}")
    messages = _unreadable_warnings(record)
    assert len(messages) == 1, messages
    assert "skipped 3 of 4 audio files" in messages[0] and str(root) in messages[0]
    for name in bad:
        assert f"  {name}: " in messages[0], name
    assert "good.wav" not in messages[0]
    assert [t.name for s in SPLITS for t in src.tracks(s)] == ["good.wav"]
    split = next(s for s in SPLITS if src.tracks(s))
    assert src.tracks(split)[0].num_samples == SR
    np.testing.assert_allclose(src.read(split, 0, 0, 100), _tone(1.0, SR, 1, 440.0, 3)[:100, 0], atol=1e-4)
    # the truncated file's reason is libsndfile's, the others say they are not audio it can decode
    assert "truncated.wav: Error in WAV file" in messages[0] and "readme.mp3: not audio" in messages[0]


def test_a_folder_with_no_readable_file_names_the_folder(tmp_path):
    root = tmp_path / "music"
    _bad_files(root)
    with pytest.raises(ValueError, match=rf"none of the 3 audio files under {root} can be read") as info:
        open_source(f"folder:{root}")
    assert "\n" not in str(info.value) and "readme.mp3" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_is_skipped(tmp_path):
    root = _music_folder(tmp_path / "music", n=4)
    locked = root / "locked.wav"
    sf.write(str(locked), _tone(0.5, SR, 1, 330.0, 5), SR)
    locked.chmod(0)
    try:
        with pytest.warns(UserWarning, match="locked.wav: Permission denied"):
            src = FolderSource(root)
    finally:
        locked.chmod(0o644)
    assert sum(len(src.tracks(s)) for s in SPLITS) == 4


def test_an_unwritable_cache_is_an_error_not_a_skipped_file(tmp_path, monkeypatch):
    root = _music_folder(tmp_path / "music", n=3)
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be made below a file")
    monkeypatch.setenv("BEAFX_CACHE", str(blocker / "cache"))
    with pytest.raises(OSError, match=r"^cannot write .*: Not a directory; set BEAFX_CACHE to a writable folder"):
        open_source(f"folder:{root}")


def test_the_cache_is_never_inside_the_source_folder(tmp_path, monkeypatch):
    root = _music_folder(tmp_path / "music", n=3)
    monkeypatch.setenv("BEAFX_CACHE", str(root / ".cache"))
    with pytest.raises(ValueError, match="BEAFX_CACHE"):
        open_source(f"folder:{root}")
    assert not (root / ".cache").exists()


def test_folder_source_pickles_without_its_open_memmaps(tmp_path):
    import pickle

    src = FolderSource(_music_folder(tmp_path / "music", n=6))
    x = src.read("train", 0, 0, 1000)
    clone = pickle.loads(pickle.dumps(src))
    assert clone._mmaps == {}
    np.testing.assert_array_equal(clone.read("train", 0, 0, 1000), x)


# --------------------------------------------------------------------------------------------
# debian-music


def test_debian_music_absent_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_DEBIAN_MUSIC_ROOT", str(tmp_path / "empty-root"))
    with pytest.raises(FileNotFoundError, match="apt-get install -y warzone2100-music") as err:
        open_source("debian-music")
    assert "make debian-music" in str(err.value) and "synthetic" in str(err.value)


def test_debian_music_reads_both_packages_and_keeps_fast_variants_together(tmp_path, monkeypatch):
    root = tmp_path / "root"
    wz = root / "usr/share/games/warzone2100/music"
    stk = root / "usr/share/games/supertuxkart/data/music"
    _music_folder(wz / "albums" / "x", n=5)
    stk.mkdir(parents=True)
    for i in range(6):
        for suffix in ("", "_fast"):
            sf.write(str(stk / f"piece{i}{suffix}.ogg"), _tone(0.5, SR, 2, 220 + 20 * i, i), SR)
    (stk / "piece0.music").write_text("<music/>")
    monkeypatch.setenv("BEAFX_DEBIAN_MUSIC_ROOT", str(root))
    src = open_source("debian-music")
    assert src.spec == "debian-music"
    split_of = {t.name: s for s in SPLITS for t in src.tracks(s)}
    assert len(split_of) == 5 + 12
    for i in range(6):
        assert split_of[f"music/piece{i}.ogg"] == split_of[f"music/piece{i}_fast.ogg"]


@pytest.mark.skipif(not Path("/usr/share/games/warzone2100/music").is_dir(), reason="warzone2100-music not installed")
def test_installed_debian_music_has_pieces_for_every_split(monkeypatch):
    # Listing and splitting only: opening the source would decode 4 h of Opus into the test's cache.
    from beafx.data.debian import FAST_VARIANT, music_folders
    from beafx.data.folder import list_audio_files, split_ignoring

    monkeypatch.delenv("BEAFX_DEBIAN_MUSIC_ROOT", raising=False)
    files = [p.relative_to(root).as_posix() for root in music_folders() for p in list_audio_files(root)]
    assert len(files) >= 30
    key = split_ignoring(FAST_VARIANT)
    groups = sorted({key(f) for f in files})
    assert all(assign_splits(groups, seed=0).values())
    hours = sum(sf.info(str(p)).duration for root in music_folders() for p in list_audio_files(root)) / 3600
    assert hours > 3


def test_import_beafx_data_does_not_import_musdb():
    code = "import sys, beafx, beafx.data; assert 'musdb' not in sys.modules and 'stempeg' not in sys.modules"
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)
