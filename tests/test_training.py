"""Training (beafx.training): smoke runs per encoder and loss on the full chain, an exact mid-run
resume, DDP on two CPU processes (gloo), checkpoints, export and the CLI's errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from beafx import profiles
from beafx.cli import main
from beafx.training import RunConfig, export_model, load_model, train
from beafx.training.data import StepSampler, TrainStream
from beafx.training.run import read_curves

FULL = "peq+compressor+clipper"


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.network.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "encoder,loss", [("mee", "mel"), ("te", "mel"), ("tfe", "mel"), ("tfe", "params")]
)
def test_smoke_run_full_chain(tmp_path, encoder, loss):
    config = RunConfig(synthesis=FULL, analysis=FULL, encoder=encoder, loss=loss, profile="smoke")
    result = train(config, tmp_path / "run", progress=False, num_workers=0)
    assert result.global_step == 2 and result.total_steps == 2
    assert result.best_val_loss is not None and torch.isfinite(torch.tensor(result.best_val_loss))
    model = load_model(tmp_path / "run")
    assert model.config == config and not model.network.training
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["config"] == config.to_dict() and stored["profile"]["clip_seconds"] == 2.0
    rows = read_curves(tmp_path / "run")
    assert any("train_loss" in r for r in rows) and any("val_loss" in r for r in rows)
    assert any("val_mel" in r for r in rows)
    if loss == "params":
        assert any("val_mse_q" in r for r in rows)


class _Interrupt(RuntimeError):
    pass


class _StopAt:
    """A callback that crashes the run when it reaches ``step`` (after a checkpoint)."""

    def __new__(cls, step: int):
        import lightning.pytorch as pl

        class StopAt(pl.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                if trainer.global_step == step:
                    raise _Interrupt(f"interrupted at step {step}")

        return StopAt()


@pytest.mark.slow
def test_resume_mid_run_reaches_the_same_metrics(tmp_path, monkeypatch):
    # 8 steps, validation every 3: interrupted at step 5 (after the validation and checkpoint of
    # step 3, two steps into the next stretch), resumed, it must end exactly as an
    # uninterrupted run.
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(profiles.PROFILES["smoke"], max_steps=8, val_every_steps=3))
    config = RunConfig(synthesis="peq", analysis="peq", encoder="mee", loss="mel", profile="smoke", seed=3)
    whole = train(config, tmp_path / "whole", progress=False, num_workers=0)
    with pytest.raises(_Interrupt):
        train(config, tmp_path / "cut", progress=False, num_workers=0, callbacks=[_StopAt(5)])
    assert (tmp_path / "cut" / "checkpoints" / "last.ckpt").exists()
    with pytest.raises(ValueError, match="--resume"):
        train(config, tmp_path / "cut", progress=False, num_workers=0)
    resumed = train(config, tmp_path / "cut", resume=True, progress=False, num_workers=0)
    assert resumed.global_step == whole.global_step == 8 and resumed.attempts == 2
    a, b = load_model(tmp_path / "whole"), load_model(tmp_path / "cut")
    for key, value in _state(a).items():
        torch.testing.assert_close(_state(b)[key], value, rtol=0, atol=0, msg=key)
    val = lambda d: [(r["step"], r["val_loss"]) for r in read_curves(d) if "val_loss" in r]
    assert val(tmp_path / "cut") == val(tmp_path / "whole")
    assert len(val(tmp_path / "whole")) == 2  # after steps 3 and 6 (logged at steps 2 and 5)


def test_resume_refuses_another_config(tmp_path, monkeypatch):
    config = RunConfig(synthesis="peq", analysis="peq", encoder="tfe", profile="smoke")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    other = replace(config, seed=1)
    with pytest.raises(ValueError, match="different configuration"):
        train(other, tmp_path / "run", resume=True, progress=False)


def test_step_sampler_resumes_and_splits_over_ranks():
    full = list(StepSampler(4, 5))
    assert full == list(range(20))
    s = StepSampler(4, 5)
    s.start_step = 3
    assert list(s) == full[12:] and len(s) == 20
    r0, r1 = StepSampler(4, 5, rank=0, world_size=2), StepSampler(4, 5, rank=1, world_size=2)
    assert sorted(list(r0) + list(r1)) == full
    assert list(r0)[:2] == [0, 1] and list(r1)[:2] == [2, 3]
    with pytest.raises(ValueError, match="split evenly"):
        StepSampler(3, 5, world_size=2)


def test_train_stream_covers_each_epoch_once():
    from beafx.data import EffectDataset

    ds = EffectDataset("synthetic", "train", "peq", profile="smoke", max_tracks=3)
    stream = TrainStream(ds, 3 * len(ds))
    for epoch in range(3):
        seen = sorted(stream.locate(epoch * len(ds) + j)[1] for j in range(len(ds)))
        assert seen == list(range(len(ds)))
    assert [stream.locate(j)[1] for j in range(len(ds))] != list(range(len(ds)))  # shuffled


def test_config_errors():
    with pytest.raises(ValueError, match="unknown encoder"):
        RunConfig(encoder="resnet")
    with pytest.raises(ValueError, match="parameter loss"):
        RunConfig(synthesis="peq", analysis="geq", loss="params")
    with pytest.raises(ValueError, match="authors_channel_bug"):
        RunConfig(encoder="tfe", authors_channel_bug=True)
    with pytest.raises(ValueError, match="data source"):
        RunConfig(source="nowhere:at/all")


@pytest.mark.slow
def test_export_and_load_without_lightning_state(tmp_path):
    config = RunConfig(synthesis="peq", analysis="peq", encoder="tfe", loss="mel", profile="smoke")
    train(config, tmp_path / "run", progress=False, num_workers=0)
    path = export_model(tmp_path / "run", tmp_path / "model.pt", metrics={"mel": 0.5})
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"format", "config", "state_dict", "profile"} and "optimizer_states" not in raw
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    ckpt, exported = load_model(tmp_path / "run"), load_model(path)
    assert exported.metadata["metrics"] == {"mel": 0.5}
    y = torch.randn(2, 1, ckpt.clip_samples) * 0.1
    torch.testing.assert_close(exported.predict(y), ckpt.predict(y), atol=2e-2, rtol=0)


def test_bad_checkpoints_give_clear_errors(tmp_path, capsys):
    (tmp_path / "junk.ckpt").write_bytes(b"\x00\x01 not a checkpoint")
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"a": torch.zeros(2)}, tmp_path / "other.pt")
    for name in ("junk.ckpt", "text.pt", "other.pt"):
        with pytest.raises(ValueError, match="not a beafx checkpoint"):
            load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.ckpt")
    with pytest.raises(FileNotFoundError, match="best.ckpt"):
        load_model(tmp_path)
    assert main(["export", str(tmp_path / "junk.ckpt"), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "not a beafx checkpoint" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    cases = [
        ["train", "--chain", "peq", "--encoder", "nope", "--out", str(tmp_path / "a")],
        ["train", "--chain", "peq", "--out", str(tmp_path / "b"), "--max-steps", "0"],
        ["train", "--chain", "peq", "--synthesis", "peq", "--analysis", "peq", "--out", str(tmp_path / "c")],
        ["train", "--chain", "nosuch", "--out", str(tmp_path / "d")],
        ["train", "--chain", "peq", "--source", "nowhere:x", "--out", str(tmp_path / "e")],
        ["train", "--chain", "peq", "--devices", "zero", "--out", str(tmp_path / "f")],
    ]
    for argv in cases:
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    # and once as a user runs it, in a fresh process
    proc = subprocess.run([sys.executable, "-m", "beafx.cli", *cases[0]], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    env = dict(os.environ, BEAFX_PROGRESS="0")
    proc = subprocess.run(
        [sys.executable, "-m", "beafx.cli", "train", "--chain", "peq", "--encoder", "tfe", "--profile", "smoke",
         "--accelerator", "cpu", "--devices", "2", "--workers", "0", "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["global_step"] == 2 and result["hardware"].startswith("2 x CPU")
    assert load_model(tmp_path / "ddp").config.encoder == "tfe"


@pytest.mark.slow
def test_bench_training_group_reports_each_encoder():
    """The bench's own code path at smoke sizes; no speed is asserted."""
    from beafx.bench import run

    lines = run(["training"], quick=True)
    assert [ln.name.split(",")[0] for ln in lines] == ["train step MEE-s", "train step TE", "train step TFE"]
    for ln in lines:
        assert ln.seconds > 0 and ln.extra["examples_per_s"] > 0
        assert all(ln.extra[f"{k}_s"] > 0 for k in ("encoder", "chain", "loss")) and ln.extra["data_s_one_worker"] > 0


@pytest.mark.slow
def test_train_runs_inside_a_jupyter_kernel(tmp_path):
    """What a notebook (Jupyter, Colab) does: train in the kernel's own process on one device,
    twice in the same kernel (no relaunch), with notebook progress bars."""
    import nbformat
    from nbclient import NotebookClient

    run = tmp_path / "run"
    code = (
        "from beafx.training import RunConfig, train\n"
        f"config = RunConfig(synthesis='peq', analysis='peq', encoder='mee', profile='smoke')\n"
        f"first = train(config, {str(run)!r}, num_workers=0, progress=True)\n"
        f"again = train(config, {str(run)!r}, resume=True, num_workers=0, progress=True)\n"
        "print(first.global_step, again.global_step, again.device)"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert text.split() == ["2", "2", "cpu"], outputs
    assert not [o for o in outputs if o.output_type == "error"]
