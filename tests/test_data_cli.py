"""``beafx data``: listening files, printed statistics, errors and exit codes; the bench line."""
from __future__ import annotations

import os
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


def _beafx_data(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``beafx data ARGV`` in a fresh process (a traceback would show on its stderr)."""
    return subprocess.run([sys.executable, "-m", "beafx.cli", "data", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def _assert_one_line_exit_2(result: subprocess.CompletedProcess, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith("beafx data: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


LISTEN = ["--source", "synthetic", "--clips", "1", "--clip-seconds", "0.5", "--chain", "clipper", "--listen"]


def test_listen_into_a_missing_folder_is_a_one_line_error(tmp_path):
    out = tmp_path / "no" / "such" / "folder" / "out.wav"
    _assert_one_line_exit_2(_beafx_data(*LISTEN, str(out)), f"cannot write {out}", "does not exist")
    assert not out.parent.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_listen_into_a_read_only_folder_is_a_one_line_error(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = _beafx_data(*LISTEN, str(folder / "out.wav"))
    finally:
        folder.chmod(0o755)
    _assert_one_line_exit_2(result, f"cannot write {folder / 'out.wav'}: Permission denied")
    assert not any(folder.iterdir())


def test_listen_onto_a_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "out.wet.wav").mkdir()  # the second file's name is taken by a folder
    _assert_one_line_exit_2(_beafx_data(*LISTEN, str(tmp_path / "out.wav")),
                            f"cannot write {tmp_path / 'out.wet.wav'}: it is a folder")


def test_a_write_that_fails_after_the_early_checks_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import beafx.data.cli as data_cli

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out.wav"
    monkeypatch.setattr(data_cli, "_check_writable", lambda out: None)  # as if the folder vanished meanwhile
    assert main(["data", *LISTEN, str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"beafx data: error: cannot write {out}: Not a directory"]


def test_an_unwritable_cache_is_a_one_line_error(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    sf.write(str(music / "t.wav"), np.zeros((SR, 1), dtype=np.float32) + 0.1, SR)
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache cannot be made below a file")
    result = _beafx_data("--source", f"folder:{music}", "--clips", "1", env={"BEAFX_CACHE": str(blocker / "cache")})
    _assert_one_line_exit_2(result, "cannot write", "set BEAFX_CACHE to a writable folder")


def test_write_audio_reports_the_reason_and_writes_wav_and_flac(tmp_path):
    from beafx.data.cli import write_audio

    taken = tmp_path / "taken.wav"
    taken.mkdir()
    with pytest.raises(OSError, match=r"^cannot write .*taken\.wav: Is a directory$"):
        write_audio(taken, np.zeros(10, dtype=np.float32), SR)
    for name in ("ok.wav", "ok.flac"):
        write_audio(tmp_path / name, np.full(100, 0.25, dtype=np.float32), SR)
        data, rate = sf.read(str(tmp_path / name))
        assert rate == SR and data.shape == (100,) and np.allclose(data, 0.25, atol=1e-4)
    assert sf.info(str(tmp_path / "ok.flac")).format == "FLAC"


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
