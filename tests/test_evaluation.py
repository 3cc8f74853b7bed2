"""Evaluation (``beafx.evaluation``, ``beafx evaluate``): the JSON structure, every baseline
against values computed here from the examples, the exact oracle, nulls where a metric is
undefined, the track bootstrap against hand computations, the cache, and CLI errors.

A tiny untrained TE network on the ``smoke`` profile (4 synthetic test tracks x 1 repeat, 2 s
clips) stands in for a trained model: evaluation does not care how good it is.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from beafx import evaluation as ev
from beafx.data import EffectDataset, synthesis_chain
from beafx.effects import make
from beafx.losses import identifiable_mask, mel_loss, mse_y, per_param_errors
from beafx.training import MODEL_FORMAT, RunConfig, TrainedModel, build_network
from beafx.training.checkpoint import run_metadata

N_BOOT = 200
CFG = RunConfig(synthesis="peq", analysis="peq", encoder="te", loss="mel", profile="smoke", seed=3)


def _tiny_model(config: RunConfig = CFG) -> TrainedModel:
    torch.manual_seed(0)
    num_params = make(config.analysis).num_params
    return TrainedModel(build_network(config, num_params), config, {"path": "in-memory"})


def _export(model: TrainedModel, path) -> str:
    """Write ``model`` as an exported ``.pt`` (the record ``export_model`` writes)."""
    record = run_metadata(model.config, model.network.num_params, make(model.config.analysis).param_names)
    record.update({"format": MODEL_FORMAT, "state_dict": model.network.state_dict(), "fp16": False, "metrics": None})
    torch.save(record, path)
    return str(path)


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return _tiny_model()


@pytest.fixture(scope="module")
def result(model) -> dict:
    ev.clear_baseline_cache()
    return ev.evaluate(model, n_boot=N_BOOT, batch_size=3)


@pytest.fixture(scope="module")
def examples():
    ds = ev.eval_dataset(CFG)
    return [ds.example(i) for i in range(len(ds))]


def _summary_ok(s: dict) -> None:
    assert set(s) == {"mean", "ci"}
    lo, hi = s["ci"]
    assert lo <= s["mean"] + 1e-12 and s["mean"] <= hi + 1e-12


# ------------------------------------------------------------------------------ structure


def test_result_structure_and_run_record(result, model):
    assert set(result) == {"model", "baselines", "comparison", "run"}
    assert set(result["baselines"]) == {"random", "xy", "mean_q", "oracle"}
    for name, summ in [("model", result["model"]), *result["baselines"].items()]:
        for metric in ("mel", "mse_y", "mrstft"):
            _summary_ok(summ[metric])
        if name == "xy":
            assert summ["mse_q"] is None and summ["mse_q_identifiable"] is None and summ["per_param"] is None
            continue
        _summary_ok(summ["mse_q"])
        _summary_ok(summ["mse_q_identifiable"])
        assert list(summ["per_param"]) == make("peq").param_names
        for entry in summ["per_param"].values():
            _summary_ok(entry["mse_q"])
            _summary_ok(entry["mae"])
    assert result["model"]["per_param"]["peq.low_shelf.f0"]["unit"] == "Hz"
    assert result["model"]["per_param"]["peq.peak1.gain_db"]["unit"] == "dB"
    run = result["run"]
    # smoke: test 1 pass over <= 4 tracks (DESIGN.md)
    assert (run["n_examples"], run["n_tracks"], run["repeats"]) == (4, 4, 1)
    assert run["profile"] == "smoke" and run["seed"] == 3 and run["source"] == "synthetic" and run["split"] == "test"
    assert run["config"] == CFG.to_dict() and run["checkpoint"] == "in-memory"
    assert len(run["profile_hash"]) == 12
    json.dumps(result, allow_nan=False)  # strict JSON


def test_the_test_set_is_the_runs_fixed_set(examples):
    # same synthesis chain (exact IIR EQ) and seed as training: the dataset recomputes y
    ds = EffectDataset("synthetic", "test", synthesis_chain("peq"), profile="smoke", seed=3)
    again = ds.example(2)
    assert torch.equal(again.x, examples[2].x) and torch.equal(again.y, examples[2].y)
    # the cpu profile's test set: 50 synthetic test songs x 10 repeats (built, not rendered)
    cpu = ev.eval_dataset(RunConfig(profile="cpu"))
    assert (len(cpu), cpu.num_tracks, cpu.repeats, cpu.clip_samples) == (500, 50, 10, 3 * 44100)


# ------------------------------------------------------------------------------ values


def test_xy_and_mean_q_against_metrics_computed_here(result, examples):
    x = torch.stack([e.x for e in examples])
    y = torch.stack([e.y for e in examples])
    q = torch.stack([e.q for e in examples]).double()
    base = result["baselines"]
    assert base["xy"]["mel"]["mean"] == pytest.approx(float(mel_loss(x, y)), rel=1e-5)
    assert base["xy"]["mse_y"]["mean"] == pytest.approx(float(mse_y(x, y)), rel=1e-5)
    assert base["mean_q"]["mse_q"]["mean"] == pytest.approx(float(((q - 0.5) ** 2).mean()), rel=1e-6)
    # per parameter, against the losses helper's own implementation
    ref = per_param_errors(torch.full_like(q, 0.5).float(), q.float(), make("peq"))
    for name, entry in base["mean_q"]["per_param"].items():
        assert entry["mse_q"]["mean"] == pytest.approx(ref[name]["mse_q"], rel=1e-5)
        assert entry["mae"]["mean"] == pytest.approx(ref[name]["mae"], rel=1e-4)
    # a flat EQ (every gain at mid-range 0 dB) leaves x unchanged: mean_q equals xy for the PEQ
    assert base["mean_q"]["mel"]["mean"] == pytest.approx(base["xy"]["mel"]["mean"], rel=1e-4)


def test_model_row_against_its_own_predictions(result, model, examples):
    y = torch.stack([e.y for e in examples])
    q = torch.stack([e.q for e in examples])
    q_hat = model.predict(y)
    assert result["model"]["mse_q"]["mean"] == pytest.approx(float(((q_hat - q) ** 2).mean()), rel=1e-5)
    assert identifiable_mask(make("peq").param_names).all()  # PEQ: every parameter identifiable
    assert result["model"]["mse_q_identifiable"]["mean"] == pytest.approx(result["model"]["mse_q"]["mean"], rel=1e-9)


def test_per_example_values_in_test_set_order(result, model, examples):
    """Every estimator keeps its per-example values (paired comparisons): the model's MSE_q per
    example equals the one computed here, example by example, and the tracks line up."""
    y = torch.stack([e.y for e in examples])
    q = torch.stack([e.q for e in examples])
    per = ((model.predict(y) - q) ** 2).mean(dim=1).double().numpy()
    got = np.array(result["model"]["per_example"]["mse_q"])
    assert got.shape == per.shape and np.allclose(got, per, rtol=1e-5, atol=1e-9)
    assert len(result["run"]["example_tracks"]) == len(examples) == result["run"]["n_examples"]
    for name in ("xy", "mean_q", "random"):
        assert len(result["baselines"][name]["per_example"]["mel"]) == len(examples)
    assert np.mean(result["baselines"]["mean_q"]["per_example"]["mel"]) > 0


def test_random_baseline_is_seeded_per_example_not_per_batch(result, examples):
    # one generator per example index: the draws do not depend on how examples are batched
    rows = ev._random_q([0, 1, 2, 3], 15, CFG.seed)
    assert torch.equal(rows[2:3], ev._random_q([2], 15, CFG.seed))
    assert 0 <= float(rows.min()) and float(rows.max()) <= 1 and not torch.equal(rows[0], rows[1])
    assert not torch.equal(rows, ev._random_q([0, 1, 2, 3], 15, CFG.seed + 1))
    # the result (batches of 3) used exactly these draws
    q = torch.stack([e.q for e in examples]).double()
    expected = float(((rows.double() - q) ** 2).mean())
    assert result["baselines"]["random"]["mse_q"]["mean"] == pytest.approx(expected, rel=1e-6)


def test_oracle_is_zero_through_the_same_implementation():
    """The oracle's q through the synthesis chain itself (exact IIR EQ) reproduces y: Mel and
    MSE_y within 1e-6 (float32 rounding of identical computations; observed 0). Through the
    default analysis chain (the EQ's FFT path, max|y - y_exact| / max|y_exact| <= 1e-3 by
    design, ~1e-6 in practice) MSE_y stays below 1e-9 and the Mel loss, whose log magnitudes
    magnify relative errors in near-silent bins, below 1e-2, far below every blind baseline."""
    exact = ev.evaluate(None, config=CFG, baselines=["oracle"], analysis=synthesis_chain("peq"), n_boot=N_BOOT)
    oracle = exact["baselines"]["oracle"]
    assert oracle["mel"]["mean"] <= 1e-6 and oracle["mel"]["ci"][1] <= 1e-6
    assert oracle["mse_y"]["mean"] <= 1e-6
    assert oracle["mse_q"] == {"mean": 0.0, "ci": [0.0, 0.0]}


def test_oracle_through_the_fft_path_is_near_zero(result):
    oracle, xy = result["baselines"]["oracle"], result["baselines"]["xy"]
    assert oracle["mse_y"]["mean"] < 1e-9
    assert oracle["mel"]["mean"] < 1e-2 < xy["mel"]["mean"] / 10
    assert oracle["mse_q"]["mean"] == 0.0


def test_nulls_where_the_analysis_parameters_are_not_the_synthesis_parameters():
    cfg = RunConfig(synthesis="peq", analysis="geq", encoder="te", loss="mel", profile="smoke")
    res = ev.evaluate(_tiny_model(cfg), baselines=["oracle", "mean_q", "xy"], max_tracks=1, n_boot=N_BOOT)
    assert res["baselines"]["oracle"] is None
    for summ in (res["model"], res["baselines"]["mean_q"]):
        _summary_ok(summ["mel"])
        assert summ["mse_q"] is None and summ["mse_q_identifiable"] is None and summ["per_param"] is None
    assert res["run"]["same_parameters"] is False
    assert "undefined" in ev.format_table(res)


def test_shared_target_metrics_equal_the_losses_module():
    # evaluation computes the target's spectra once per batch; the values must be beafx.losses'
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(3, 2, 20_000, generator=gen)
    y_hat = y + 0.3 * torch.randn(3, 2, 20_000, generator=gen)
    y_hat[1] = 0.0  # an all-zero estimate: the guards keep every metric finite
    got = ev.TargetMetrics(y)(y_hat)
    from beafx.losses import mrstft

    ref = {"mel": mel_loss(y_hat, y, reduction="none"), "mse_y": mse_y(y_hat, y, reduction="none"),
           "mrstft": mrstft(y_hat, y, reduction="none")}
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        ev.TargetMetrics(y)(torch.full_like(y, float("nan")))


# ------------------------------------------------------------------------------ bootstrap


def test_bootstrap_zero_width_when_every_track_has_the_same_mean():
    values = np.array([1.0, 3.0, 2.0, 2.0, 0.0, 4.0])  # tracks a, b, c: each mean 2
    mean, lo, hi = ev.track_bootstrap(values, ["a", "a", "b", "b", "c", "c"], n_boot=500)
    assert mean == pytest.approx(2.0) and lo == pytest.approx(2.0) and hi == pytest.approx(2.0)


def test_bootstrap_resamples_tracks_not_examples():
    # two tracks of 10 examples: all 0 and all 1. Resampling the 2 tracks gives means 0, 1/2, 1
    # with probabilities 1/4, 1/2, 1/4, so the 95 % interval is [0, 1]; resampling the 20
    # examples would give about 0.5 +- 0.22.
    values = np.r_[np.zeros(10), np.ones(10)]
    tracks = ["a"] * 10 + ["b"] * 10
    mean, lo, hi = ev.track_bootstrap(values, tracks, n_boot=2000, seed=1)
    assert (float(mean), float(lo), float(hi)) == (0.5, 0.0, 1.0)


def test_bootstrap_averages_the_examples_of_the_drawn_tracks():
    # track a: 1 example (0), track b: 3 examples (1). A resample {a, b} averages 4 examples:
    # 3/4 (not the mean of track means, 1/2). Its probability is 1/2, covering the CDF from
    # 1/4 to 3/4, so the central 10 % interval (quantiles 0.45, 0.55) is [3/4, 3/4].
    values = np.array([0.0, 1.0, 1.0, 1.0])
    mean, lo, hi = ev.track_bootstrap(values, ["a", "b", "b", "b"], n_boot=4000, level=0.10, seed=2)
    assert float(mean) == 0.75 and float(lo) == 0.75 and float(hi) == 0.75


def test_bootstrap_several_columns_and_seeded():
    rng = np.random.default_rng(0)
    values = rng.random((30, 3))
    tracks = np.repeat(np.arange(10), 3)
    m1, lo1, hi1 = ev.track_bootstrap(values, tracks, n_boot=300, seed=5)
    m2, lo2, hi2 = ev.track_bootstrap(values, tracks, n_boot=300, seed=5)
    np.testing.assert_array_equal(lo1, lo2)
    np.testing.assert_allclose(m1, values.mean(axis=0))
    for j in range(3):
        mj, lj, hj = ev.track_bootstrap(values[:, j], tracks, n_boot=300, seed=5)
        assert (mj, lj, hj) == pytest.approx((m1[j], lo1[j], hi1[j]))
    with pytest.raises(ValueError, match="tracks has"):
        ev.track_bootstrap(values, tracks[:5])


# ------------------------------------------------------------------------------ cache, table


def test_baselines_are_cached_in_memory_and_on_disk(result, tmp_path):
    again = ev.evaluate(None, config=CFG, n_boot=N_BOOT, cache_dir=tmp_path)
    assert again["run"]["baselines_cached"] is True
    assert again["baselines"] == result["baselines"] and again["model"] is None
    files = list(tmp_path.glob("baselines-*.json"))
    assert len(files) == 1
    ev.clear_baseline_cache()
    from_disk = ev.evaluate_baselines(CFG, n_boot=N_BOOT, cache_dir=tmp_path)
    assert from_disk == result["baselines"]
    other_seed = ev.baseline_key(RunConfig(**{**CFG.to_dict(), "seed": 4}), n_boot=N_BOOT)
    assert other_seed != ev.baseline_key(CFG, n_boot=N_BOOT)


def test_table_marks_a_model_that_loses_to_the_constant_guess(result):
    fake = json.loads(json.dumps(result))
    fake["model"]["mel"] = {"mean": 10.0, "ci": [9.0, 11.0]}
    fake["comparison"] = ev.compare(fake["model"], fake["baselines"])
    assert fake["comparison"]["mel"]["beats"] is False
    table = ev.format_table(fake)
    model_line = next(line for line in table.splitlines() if line.startswith("model"))
    assert "10 [9, 11] !" in model_line
    assert "constant guess mean_q on: mel" in table
    good = json.loads(json.dumps(result))
    good["model"]["mel"] = {"mean": 1e-3, "ci": [5e-4, 2e-3]}
    comp = ev.compare(good["model"], good["baselines"])["mel"]
    assert comp["beats"] and comp["separated"]
    assert comp["ratio"] == pytest.approx(1e-3 / min(good["baselines"][b]["mel"]["mean"] for b in ("random", "xy", "mean_q")))


# ------------------------------------------------------------------------------ CLI


def test_cli_prints_exactly_one_json_object(result, model, tmp_path, capsys):
    from beafx.cli import main

    ckpt = _export(model, tmp_path / "tiny.pt")
    rc = main(["evaluate", ckpt, "--profile", "smoke", "--resamples", str(N_BOOT), "--workers", "0", "--batch-size", "3"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    parsed = json.loads(out)  # the whole of stdout is one object
    assert parsed["run"]["checkpoint"] == ckpt
    assert parsed["model"]["mel"]["mean"] == pytest.approx(result["model"]["mel"]["mean"], rel=1e-5)
    assert "estimator" in err and "oracle" in err  # the table goes to stderr


@pytest.mark.filterwarnings("ignore:only 3 files:UserWarning")
def test_cli_split_all_pools_every_track_of_a_folder(tmp_path, capsys, monkeypatch):
    from beafx.cli import main

    monkeypatch.setenv("BEAFX_CACHE", str(tmp_path / "cache"))
    music = tmp_path / "music"
    music.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(str(music / f"t{i}.wav"), (0.3 * rng.standard_normal(int(2.5 * 44100))).astype(np.float32), 44100)
    ckpt = _export(_tiny_model(), tmp_path / "tiny.pt")
    rc = main(["evaluate", ckpt, "--source", f"folder:{music}", "--split", "all", "--resamples", "50", "--workers", "0", "--no-baselines"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    run = json.loads(out)["run"]
    assert (run["n_tracks"], run["n_examples"], run["split"]) == (3, 3, "all")  # 1 train + 1 valid + 1 test file
    assert json.loads(out)["baselines"] == {}


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "no checkpoint"),
        ("garbage", "not a beafx checkpoint"),
        ("text", "not a beafx checkpoint"),
        ("torch", "not a beafx checkpoint"),
    ],
)
def test_cli_bad_checkpoints_give_one_line_and_exit_2(kind, message, tmp_path, capsys):
    from beafx.cli import main

    path = tmp_path / "model.pt"
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("this is not a model\n" * 20)
    elif kind == "torch":
        torch.save({"weights": torch.zeros(3)}, path)
    rc = main(["evaluate", str(path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--source", "nonsense"], "unknown data source"),
        (["--resamples", "0"], "--resamples"),
        (["--profile", "huge"], "unknown profile"),
        (["--json", "/no/such/folder/out.json"], "does not exist"),
    ],
)
def test_cli_bad_arguments_exit_2(extra, message, model, tmp_path, capsys):
    from beafx.cli import main

    ckpt = _export(model, tmp_path / "tiny.pt")
    rc = main(["evaluate", ckpt, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_unknown_split_is_a_usage_error(capsys):
    from beafx.cli import main

    with pytest.raises(SystemExit) as info:
        main(["evaluate", "run", "--split", "everything"])
    assert info.value.code == 2
    assert "--split" in capsys.readouterr().err


def test_baseline_key_tells_the_published_simplified_compressor_apart():
    fixed = RunConfig(synthesis="compressor", analysis="simple_compressor", encoder="te", loss="mel", profile="smoke")
    published = RunConfig(**{**fixed.to_dict(), "authors_time_constant_bug": True})
    assert ev.baseline_key(published, n_boot=N_BOOT) != ev.baseline_key(fixed, n_boot=N_BOOT)
    assert ev.baseline_key(fixed, n_boot=N_BOOT)[-1] != "authors_time_constant_bug"  # other keys unchanged
    # best_constant trains through the same analysis chain the run evaluates
    assert [e.authors_time_constant_bug for e in published.analysis_chain().effects.values()] == [True]
