"""Estimation for real use (``beafx.estimate``, ``beafx estimate``): windows, the median and
its spread in physical units, other sample rates, stereo, padding, the applied chain written
to disk, and one-line errors with exit code 2.

The model is a tiny untrained TE network (``smoke`` profile: 2 s windows, 1 s hop); what is
tested is the plumbing around it, against values computed here.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from beafx.data import open_source, synthesis_chain
from beafx.effects import make
from beafx.estimate import OUTPUT_PEAK_DBFS, Estimator, window_starts
from beafx.training import MODEL_FORMAT, RunConfig, TrainedModel, build_network
from beafx.training.checkpoint import run_metadata

SR = 44100
CFG = RunConfig(synthesis="peq", analysis="peq", encoder="te", loss="mel", profile="smoke")


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    torch.manual_seed(0)
    return TrainedModel(build_network(CFG, 15), CFG)


@pytest.fixture(scope="module")
def ckpt(model, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    record = run_metadata(CFG, 15, make("peq").param_names)
    record.update({"format": MODEL_FORMAT, "state_dict": model.network.state_dict(), "fp16": False, "metrics": None})
    torch.save(record, path)
    return str(path)


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    """5 s of a synthetic test song, stereo (the right channel is a delayed, quieter copy)."""
    mono = open_source("synthetic").read("test", 0, 10 * SR, 5 * SR)
    right = 0.6 * np.roll(mono, 441)
    return np.stack([mono, right]).astype(np.float32)


@pytest.fixture(scope="module")
def files(music, tmp_path_factory):
    """A reference mastered by a known PEQ (stereo, written at 48 kHz) and the dry mix (stereo,
    written at 22,050 Hz)."""
    root = tmp_path_factory.mktemp("audio")
    q = torch.rand(1, 15, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        master = synthesis_chain("peq")(torch.from_numpy(music)[None], q)[0]
    master = 0.9 * master / master.abs().max()
    ref = root / "master48k.wav"
    sf.write(str(ref), AF.resample(master, SR, 48000).numpy().T, 48000, subtype="FLOAT")
    mix = root / "mix22k.flac"
    sf.write(str(mix), AF.resample(torch.from_numpy(music), SR, 22050).numpy().T.clip(-1, 1), 22050)
    return {"ref": str(ref), "mix": str(mix), "root": root}


def _main(argv):
    from beafx.cli import main

    return main(argv)


# ------------------------------------------------------------------------------ windows


def test_window_starts_hop_half_a_window_and_cover_the_end():
    assert window_starts(10, 4) == [0, 2, 4, 6]
    assert window_starts(11, 4) == [0, 2, 4, 6, 7]  # one more window ending at the last sample
    assert window_starts(4, 4) == [0]
    with pytest.raises(ValueError, match="at least 4"):
        window_starts(3, 4)


def test_estimate_median_and_spread_over_windows(model, music):
    est = Estimator(model).estimate(music, SR)
    # 5 s with 2 s windows every 1 s: starts 0, 1, 2, 3 s
    assert est.windows == 4 and est.q_windows.shape == (4, 15) and not est.padded
    np.testing.assert_allclose(est.q.numpy(), np.median(est.q_windows.numpy(), axis=0), rtol=1e-6)
    d = est.to_dict()
    assert d["channels"] == 2 and d["resampled_to"] is None and d["seconds"] == pytest.approx(5.0)
    specs = make("peq").param_specs
    for i, (name, entry) in enumerate(d["parameters"].items()):
        phys = specs[i].to_physical(est.q_windows[:, i].double()).numpy()
        assert entry["value"] == pytest.approx(float(specs[i].to_physical(float(est.q[i]))), rel=1e-6)
        assert entry["iqr"] == pytest.approx(list(np.percentile(phys, [25, 75])), rel=1e-6)
        assert entry["iqr"][0] - 1e-9 <= entry["value"] <= entry["iqr"][1] + 1e-9
        assert entry["unit"] == specs[i].unit
    json.dumps(d, allow_nan=False)


def test_model_is_used_in_eval_mode(model, music):
    model.network.train()
    est = Estimator(model)
    assert not model.network.training
    model.network.train()
    first = est.estimate(music, SR)
    assert not model.network.training
    second = est.estimate(music, SR)
    assert torch.equal(first.q, second.q)


def test_other_rates_short_files_and_silence(model, music):
    est = Estimator(model)
    # 1 s at 22,050 Hz: shorter than the 2 s window, longer than TE's minimum (16,385 samples)
    short = AF.resample(torch.from_numpy(music[0, :SR]), SR, 22050)
    res = est.estimate(short, 22050)
    assert res.padded and res.windows == 1 and "zero-padded" in res.notes[0]
    assert res.to_dict()["resampled_to"] == SR and res.sample_rate == 22050
    with pytest.raises(ValueError, match="at least"):
        est.estimate(music[:, : SR // 4], SR)  # 0.25 s < TE's 0.37 s
    quiet = np.concatenate([np.zeros((2, 3 * SR), np.float32), music[:, : 2 * SR]], axis=1)
    res = est.estimate(quiet, SR)
    assert res.skipped_silent == 2 and res.windows == 2  # windows at 0 and 1 s are digital silence
    with pytest.raises(ValueError, match="silent"):
        est.estimate(np.zeros(3 * SR, np.float32), SR)
    with pytest.raises(ValueError, match="channels, samples"):
        est.estimate(music.T, SR)


# ------------------------------------------------------------------------------ CLI


def test_cli_estimate_and_apply_writes_json_and_audio(ckpt, files, capsys):
    out = files["root"] / "out.wav"
    rc = _main(["estimate", "--checkpoint", ckpt, files["ref"], "--apply-to", files["mix"], "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    result = json.loads(stdout)
    est = result["estimate"]
    assert est["sample_rate"] == 48000 and est["resampled_to"] == SR and est["channels"] == 2
    assert est["windows"] == 4 and len(est["q"]) == 15 and set(est["parameters"]) == set(make("peq").param_names)
    applied = result["applied"]
    audio, rate = sf.read(str(out), always_2d=True)
    assert rate == SR and audio.shape[1] == 2 and sf.info(str(out)).subtype == "PCM_24"
    mix, mix_rate = sf.read(files["mix"], dtype="float32", always_2d=True)
    assert audio.shape[0] == mix.shape[0] * 2  # 22,050 Hz -> 44,100 Hz
    peak_db = 20 * np.log10(np.abs(audio).max())
    assert peak_db == pytest.approx(OUTPUT_PEAK_DBFS, abs=1e-3) and applied["peak_dbfs"] == OUTPUT_PEAK_DBFS
    # the written audio is the analysis chain with the printed q, scaled by the printed gain
    x = AF.resample(torch.from_numpy(mix.T.copy()), mix_rate, SR)
    with torch.no_grad():
        expected = make("peq").eval()(x[None], torch.tensor([est["q"]], dtype=torch.float32))[0].numpy()
    expected *= 10 ** (applied["gain_db"] / 20)
    assert np.abs(audio.T - expected).max() < 1e-4
    assert np.abs(audio[:, 0] - audio[:, 1]).max() > 0.05  # stereo kept, not averaged
    assert "wrote" in stderr


def test_cli_estimate_json_only(ckpt, files, tmp_path, capsys):
    rc = _main(["estimate", "--checkpoint", ckpt, files["mix"], "--json", str(tmp_path / "e.json")])
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr
    assert json.loads(stdout) == json.loads((tmp_path / "e.json").read_text())
    assert json.loads(stdout)["applied"] is None


def _bad_inputs(tmp_path, files):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(2048))
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    fake_wav = tmp_path / "fake.wav"
    fake_wav.write_text("RIFF but not really\n")
    tiny = tmp_path / "tiny.wav"
    sf.write(str(tiny), np.zeros(1000, np.float32) + 0.1, SR)
    return {"garbage": str(garbage), "text": str(text), "other": str(other), "fake_wav": str(fake_wav), "tiny": str(tiny)}


@pytest.mark.parametrize(
    "case, message",
    [
        ("garbage checkpoint", "not a beafx checkpoint"),
        ("text checkpoint", "not a beafx checkpoint"),
        ("non-beafx torch file", "not a beafx checkpoint"),
        ("missing checkpoint", "no checkpoint"),
        ("missing reference", "no audio file"),
        ("unreadable audio", "cannot read audio"),
        ("too short", "at least"),
        ("apply without out", "go together"),
        ("out in a missing folder", "does not exist"),
        ("out is a folder", "is a folder"),
        ("out with an unknown extension", "unknown audio extension"),
        ("out under a file", "is not a folder"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(case, message, ckpt, files, tmp_path, capsys):
    bad = _bad_inputs(tmp_path, files)
    ref, mix = files["ref"], files["mix"]
    argv = {
        "garbage checkpoint": ["--checkpoint", bad["garbage"], ref],
        "text checkpoint": ["--checkpoint", bad["text"], ref],
        "non-beafx torch file": ["--checkpoint", bad["other"], ref],
        "missing checkpoint": ["--checkpoint", str(tmp_path / "nope.pt"), ref],
        "missing reference": ["--checkpoint", ckpt, str(tmp_path / "nope.wav")],
        "unreadable audio": ["--checkpoint", ckpt, bad["fake_wav"]],
        "too short": ["--checkpoint", ckpt, bad["tiny"]],
        "apply without out": ["--checkpoint", ckpt, ref, "--apply-to", mix],
        "out in a missing folder": ["--checkpoint", ckpt, ref, "--apply-to", mix, "--out", str(tmp_path / "no" / "o.wav")],
        "out is a folder": ["--checkpoint", ckpt, ref, "--apply-to", mix, "--out", str(tmp_path)],
        "out with an unknown extension": ["--checkpoint", ckpt, ref, "--apply-to", mix, "--out", str(tmp_path / "o.xyz")],
        "out under a file": ["--checkpoint", ckpt, ref, "--apply-to", mix, "--out", str(tmp_path / "notes.txt" / "o.wav")],
    }[case]
    rc = _main(["estimate", *argv])
    stdout, stderr = capsys.readouterr()
    assert rc == 2, stderr
    assert message in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert stdout == ""


def test_missing_checkpoint_flag_is_a_usage_error(files, capsys):
    with pytest.raises(SystemExit) as info:
        _main(["estimate", files["ref"]])
    assert info.value.code == 2 and "--checkpoint" in capsys.readouterr().err


def test_process_exit_code_and_no_traceback(files, tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00\x01not torch" * 50)
    proc = subprocess.run(
        [sys.executable, "-m", "beafx.cli", "estimate", "--checkpoint", str(garbage), files["ref"]],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not a beafx checkpoint" in proc.stderr
