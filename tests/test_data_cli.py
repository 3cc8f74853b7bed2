"""``beafx data``: listening files, printed statistics, errors and exit codes; the bench line."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from beafx.cli import main

SR = 44100


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAFX_CACHE", str(tmp_path / "cache"))


def test_listen_writes_dry_and_wet_clips_and_prints_statistics(tmp_path, capsys):
    out = tmp_path / "out.wav"
    rc = main(["data", "--source", "synthetic", "--listen", str(out), "--clips", "3", "--clip-seconds", "1.5", "--chain", "peq+clipper"])
    assert rc == 0
    text = capsys.readouterr().out
    for needle in ('"train"', '"tracks": 86', "crest_db", "onset_rate", "reference range", "peq.low_shelf.gain_db", "clipper.drive_db", "out.wet.wav"):
        assert needle in text, needle
    dry, rate = sf.read(str(out))
    wet, rate_wet = sf.read(str(tmp_path / "out.wet.wav"))
    assert rate == rate_wet == SR
    assert dry.shape == wet.shape == (3 * int(1.5 * SR) + 2 * SR // 2,)
    first = slice(0, int(1.5 * SR))
    assert np.abs(dry[first]).max() == pytest.approx(1.0, abs=1e-3)
    assert np.abs(wet[first]).max() == pytest.approx(1.0, abs=1e-3)
    assert np.abs(dry - wet).max() > 0.05  # an EQ with +-15 dB bands changes the waveform
    gap = slice(int(1.5 * SR) + 100, int(2.0 * SR) - 100)
    assert np.all(dry[gap] == 0)


@pytest.mark.filterwarnings("ignore:only 4 files:UserWarning")
def test_statistics_without_listening_for_a_folder_source(tmp_path, capsys):
    music = tmp_path / "music"
    music.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        sf.write(str(music / f"t{i}.flac"), 0.3 * rng.standard_normal((2 * SR, 2)), SR)
    rc = main(["data", "--source", f"folder:{music}", "--clips", "2", "--clip-seconds", "1", "--chain", "clipper"])
    assert rc == 0
    assert f"folder:{music}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source", "nonsense"], "unknown data source"),
        (["--source", "folder:/no/such/folder"], "does not exist"),
        (["--source", "musdb:/no/such/musdb"], "zenodo"),
        (["--clips", "0"], "--clips"),
        (["--listen", "out.mp3"], ".wav or .flac"),
        (["--listen", "/no/such/dir/out.wav"], "does not exist"),
        (["--split", "training"], "unknown split"),
        (["--chain", "reverb"], "unknown effect"),
        (["--clip-seconds", "0"], "--clip-seconds"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(["data", *argv]) == 2
    assert message in capsys.readouterr().err


def test_unparseable_arguments_exit_non_zero():
    result = subprocess.run([sys.executable, "-m", "beafx.cli", "data", "--clips", "many"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid int value" in result.stderr


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="musdb needs ffmpeg")
def test_listen_works_for_musdb(tmp_path, capsys):
    from test_data_musdb import make_fake_musdb_hq

    root = make_fake_musdb_hq(tmp_path / "musdb18hq")
    out = tmp_path / "m.wav"
    with pytest.warns(UserWarning):
        rc = main(["data", "--source", f"musdb:{root}", "--listen", str(out), "--clips", "2", "--clip-seconds", "1", "--chain", "clipper"])
    assert rc == 0
    assert sf.info(str(out)).duration == pytest.approx(2.5, abs=0.01)
    assert (tmp_path / "m.wet.wav").exists()


def test_bench_data_group_reports_examples_per_second(tmp_path, monkeypatch):
    from beafx.bench import run

    # Only the synthetic source: debian-music would be decoded into this test's empty cache.
    monkeypatch.setenv("BEAFX_DEBIAN_MUSIC_ROOT", str(tmp_path / "no-debian"))
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    monkeypatch.delenv("BEAFX_BENCH_FOLDER", raising=False)
    lines = run(["data"], quick=True)
    names = [ln.name for ln in lines]
    assert any(n.startswith("synthetic render") for n in names)
    example_lines = [ln for ln in lines if ln.name.startswith("examples, synthetic")]
    assert len(example_lines) == 1
    line = example_lines[0]
    assert line.seconds > 0 and line.ratio > 0 and "train step" in line.baseline
    assert line.extra["examples_per_s"] > 0
