"""The experiments (``beafx.experiments``, ``beafx experiments``): the declared layout against
the paper's tables, a plan that covers every cell, statuses (done, stale, GPU-only, blocked),
the dry run's costs computed here by hand, the multi-GPU dispatch, one real smoke run whose
JSON holds every required field, whose rerun does nothing and whose rerun from scratch
(``--reproduce``) is bit-identical, and tables rebuilt from the JSON equal to the rendered ones.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from beafx import cli
from beafx import profiles
from beafx.experiments import TABLES, PlanEntry, make_plan, plan_sources, render_tables, source_slug
from beafx.experiments import layout, runner
from beafx.experiments.costs import load_costs, run_cost
from beafx.experiments.plan import BLOCKED, DONE, GPU_ONLY, STALE, TODO, make_config
from beafx.experiments.reproduce import (THREE_DIGITS, compare_records, load_reports, reports_markdown, reproduce_run,
                                         seed_spread_mel, threads_of)
from beafx.experiments.tables import RUN_FORMAT, Results, Value, load_results, render_table, table_grid
from beafx.training.config import RunConfig, profile_hash
from beafx.effects.proxy import proxy_weights_digest
from beafx.provenance import cpu_model


def _all_cells():
    for table in TABLES.values():
        for cell in table.cells:
            yield f"{table.key}/{cell.row}/{cell.column}", cell


# ------------------------------------------------------------------------------ the layout


def test_tables_2_to_4_have_every_cell_of_the_paper():
    from beafx import paper

    for number, synthesis in ((2, "peq"), (3, "compressor"), (4, "clipper")):
        ours, theirs = TABLES[f"table{number}"], paper.table(number)
        for row in ("mee", "te", "tfe"):
            for column in theirs.columns:
                cell = ours.cell(row, column)
                assert cell is not None, (number, row, column)
                (spec,) = cell.runs
                assert (spec.synthesis, spec.analysis, spec.encoder, spec.loss) == (synthesis, column, row, "mel")
                assert not spec.authors_channel_bug and not spec.authors_time_constant_bug
                assert row not in ours.ours and column not in ours.ours
        assert set(ours.metrics) >= set(theirs.metrics)
        # the TE as published: the same cells with the channel bug
        for column in theirs.columns:
            (spec,) = ours.cell("te_authors", column).runs
            assert spec.encoder == "te" and spec.authors_channel_bug and spec.analysis == column


def test_table3_our_columns():
    t3 = TABLES["table3"]
    for row in ("mee", "te", "tfe"):
        (spec,) = t3.cell(row, "compressor").runs
        assert (spec.synthesis, spec.analysis) == ("compressor", "compressor")
    legacy = [c for c in t3.cells if c.column == "simple_compressor_authors"]
    assert [c.row for c in legacy] == ["tfe"]
    assert legacy[0].runs[0].authors_time_constant_bug and legacy[0].runs[0].analysis == "simple_compressor"
    assert {"compressor", "simple_compressor_authors"} <= t3.ours


def test_table5_uses_the_papers_choices_with_two_seeds_and_both_losses():
    from beafx import paper

    t5 = TABLES["table5"]
    configurations = paper.table(5).configurations
    expected_analysis = {"equalizer": "peq", "compressor": "hybrid_compressor", "clipper": "clipper",
                         "chain": "peq+hybrid_compressor+clipper"}
    expected_synthesis = {"equalizer": "peq", "compressor": "compressor", "clipper": "clipper", "chain": "peq+compressor+clipper"}
    for row, conf in configurations.items():
        for loss in ("mel", "params"):
            cell = t5.cell(row, loss)
            assert [s.seed for s in cell.runs] == [0, 1]
            for spec in cell.runs:
                assert spec.encoder == conf["encoder"] and spec.loss == loss
                assert spec.analysis == (conf["analysis"] or expected_analysis[row]) == expected_analysis[row]
                assert spec.synthesis == expected_synthesis[row]
    assert t5.cell("chain_exact", "mel").runs[0].analysis == "peq+compressor+clipper"


def test_smoke_subset_has_each_analysis_effect_and_encoder():
    specs = [TABLES[t].cell(r, c).runs[0] for t, r, c in layout.SMOKE_CELLS]
    effects = {e for s in specs for e in s.analysis.split("+")}
    assert effects >= {"peq", "geq", "compressor", "simple_compressor", "np_compressor", "hybrid_compressor",
                       "clipper", "taylor", "chebyshev"}
    assert {s.encoder for s in specs} == {"mee", "te", "tfe"}


def test_run_names_are_runconfig_names():
    for _, cell in _all_cells():
        for spec in cell.runs:
            try:
                config = make_config(spec, "cpu", "synthetic")
            except ValueError:
                continue
            assert spec.name("cpu") == config.name()


# ------------------------------------------------------------------------------ the plan


def test_plan_covers_every_declared_cell(tmp_path):
    plan = make_plan("cpu", "synthetic", root=tmp_path, gpu=True)
    runs = {r.name: r for r in plan.runs}
    declared = set()
    for cid, cell in _all_cells():
        for spec in cell.runs:
            name = spec.name("cpu")
            declared.add(name)
            assert cid in runs[name].cells
    assert set(runs) == declared
    assert all(r.status in (TODO, BLOCKED) for r in plan.runs)
    pairs = {(j.synthesis, j.analysis, j.authors_time_constant_bug, j.loss) for j in plan.baselines}
    for _, cell in _all_cells():
        key = (cell.synthesis, cell.analysis, cell.runs[0].authors_time_constant_bug)
        assert key + (None,) in pairs and key + (cell.loss,) in pairs
    # one run declared by two cells is one run
    assert sorted(runs["compressor-hybrid_compressor-mee-mel-cpu-s0"].cells) == [
        "table3/mee/hybrid_compressor", "table5/compressor/mel"]


def test_gpu_only_cells_are_skipped_without_a_gpu(tmp_path):
    plan = make_plan("cpu", "synthetic", root=tmp_path, gpu=False)
    skipped = {r.name for r in plan.runs if r.status == GPU_ONLY}
    # Table 3's proxy cells with MEE-s and TE, less the MEE x hybrid cell that Table 5 runs on the CPU
    expected = {f"compressor-{a}-{e}-mel-cpu-s0" for a in ("np_compressor", "hybrid_compressor")
                for e in ("mee", "te", "te-authors")} - {"compressor-hybrid_compressor-mee-mel-cpu-s0"}
    assert skipped == expected
    assert not [r for r in make_plan("smoke", "synthetic", root=tmp_path, gpu=False).runs if r.status == GPU_ONLY]


def test_committed_plans(tmp_path):
    assert [s for s, _ in plan_sources("cpu", None)] == ["synthetic", "debian-music"]
    debian = make_plan("cpu", "debian-music", root=tmp_path, gpu=True)
    assert {c.split("/")[1] for r in debian.runs for c in r.cells} == {"equalizer", "chain"}
    assert {(j.synthesis, j.analysis) for j in debian.baselines} >= {(c.synthesis, c.analysis) for _, c in _all_cells()}
    with pytest.raises(ValueError, match="musdb:PATH"):
        plan_sources("paper", None)
    assert source_slug("musdb:/data/musdb18") == "musdb" and source_slug("folder:/x/My Music/") == "folder-My_Music"
    # a source outside the plan gets every cell
    assert len(make_plan("smoke", "folder:/nowhere", root=tmp_path, gpu=True).runs) == len(
        make_plan("cpu", "synthetic", root=tmp_path, gpu=True).runs)


def test_only_selects_cells_runs_and_baselines(tmp_path):
    plan = make_plan("cpu", "synthetic", only=["table3/tfe"], root=tmp_path, gpu=True)
    assert {r.spec.encoder for r in plan.runs} == {"tfe"} and all(any(c.startswith("table3/tfe/") for c in r.cells) for r in plan.runs)
    assert len(plan.runs) == len([c for c in TABLES["table3"].cells if c.row == "tfe"])
    assert {j.synthesis for j in plan.baselines} == {"compressor"}
    names = make_plan("cpu", "synthetic", only=["clipper-taylor-*"], root=tmp_path, gpu=True).runs
    assert {r.name for r in names} == {f"clipper-taylor-{e}-mel-cpu-s0" for e in ("mee", "te", "tfe", "te-authors")}
    base = make_plan("cpu", "synthetic", only=["baselines"], root=tmp_path, gpu=True)
    assert not base.runs and base.baselines
    with pytest.raises(ValueError, match="selects nothing"):
        make_plan("cpu", "synthetic", only=["table9"], root=tmp_path)


def test_published_simplified_compressor_runs_are_planned(tmp_path):
    # RunConfig has authors_time_constant_bug: the published simplified-compressor cells are
    # ordinary runs (nothing in the cpu plan is blocked any more)
    plan = make_plan("cpu", "synthetic", root=tmp_path, gpu=True)
    legacy = [r for r in plan.runs if r.spec.authors_time_constant_bug]
    assert legacy and all(r.status != BLOCKED and r.config.authors_time_constant_bug for r in legacy)
    assert all("-authorstc-" in r.name for r in legacy)
    for r in plan.runs:
        if r.status != BLOCKED:
            assert r.config == make_config(r.spec, "cpu", "synthetic")


def _fake_record(run) -> dict:
    return {"format": RUN_FORMAT, "name": run.name, "config": run.config.to_dict(),
            "profile_hash": profile_hash(run.config.resolved_profile()),
            "proxy_weights": proxy_weights_digest(run.config.analysis), "metrics": None}


def _complete(plan) -> None:
    """Write a minimal JSON for every run and baseline job of ``plan``."""
    for run in plan.runs:
        run.json_path.parent.mkdir(parents=True, exist_ok=True)
        run.json_path.write_text(json.dumps(_fake_record(run)))
    for job in plan.baselines:
        job.json_path.parent.mkdir(parents=True, exist_ok=True)
        job.json_path.write_text(json.dumps({"profile_hash": profile_hash(job.config.resolved_profile()),
                                             "proxy_weights": proxy_weights_digest(job.analysis)}))


def test_done_and_stale(tmp_path):
    plan = make_plan("smoke", "synthetic", root=tmp_path, gpu=False)
    _complete(plan)
    again = make_plan("smoke", "synthetic", root=tmp_path, gpu=False)
    assert {r.status for r in again.runs} == {DONE} and not again.baselines_todo()
    run = again.runs[0]
    record = _fake_record(run)
    record["profile_hash"] = "another"
    run.json_path.write_text(json.dumps(record))
    record = _fake_record(again.runs[1])
    record["config"]["seed"] = 7
    again.runs[1].json_path.write_text(json.dumps(record))
    stale = {r.name: r.status for r in make_plan("smoke", "synthetic", root=tmp_path, gpu=False).runs}
    assert stale[run.name] == STALE and stale[again.runs[1].name] == STALE
    assert sum(s == DONE for s in stale.values()) == len(stale) - 2


# ------------------------------------------------------------------------------ dry run and costs


def test_costs_from_parts_computed_by_hand(tmp_path):
    """smoke: 2 steps, validation after each on 2 examples (1 batch of 2), test 4 examples (2
    batches); parts: encoder 1.0 s, peq 0.5 s, Mel loss 0.5 s per batch."""
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "costs.json").write_text(json.dumps(
        {"runs": {}, "parts_s": {"encoder": {"tfe": 1.0}, "chain": {"peq": 0.5}, "mel_loss": 0.5}}))
    costs = load_costs(tmp_path, "smoke")
    plan = make_plan("smoke", "synthetic", PlanEntry("synthetic"), only=["table5/equalizer"], root=tmp_path, gpu=True)
    smoke_runs = {(r.spec.loss, r.spec.seed): r for r in plan.runs}
    full = 1.0 + 0.5 + 0.5
    validation, evaluation = 2 * 1 * full / 3, 2 * 2 * full / 3
    assert run_cost(smoke_runs[("mel", 0)], costs) == (pytest.approx(2 * full + validation + evaluation), "costs.json parts")
    assert run_cost(smoke_runs[("params", 0)], costs)[0] == pytest.approx(2 * 1.0 + validation + evaluation)
    # a chain made of measured effects is their sum; an unknown one falls back to the default
    chain_costs = {"runs": {}, "parts_s": {"encoder": {"tfe": 1.0}, "chain": {"peq": 0.5, "hybrid_compressor": 2.0, "clipper": 0.25},
                                          "mel_loss": 0.5}}
    run = make_plan("smoke", "synthetic", only=["table5/chain"], root=tmp_path, gpu=True).runs[0]
    full = 1.0 + 2.75 + 0.5
    assert run_cost(run, chain_costs)[0] == pytest.approx(2 * full + 2 * 1 * full / 3 + 2 * 2 * full / 3)
    assert "default" in run_cost(run, {"runs": {}})[1]


def test_dry_run_lists_runs_with_costs_then_nothing_to_do(tmp_path):
    lines = []
    assert runner.run_experiments("smoke", dry_run=True, root=tmp_path, log=lines.append) == 0
    text = "\n".join(lines)
    plan = make_plan("smoke", "synthetic", root=tmp_path)
    assert "costs.json is missing" in text and "estimated total" in text
    for run in plan.runs:
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(run.name + " "))
        assert " min" in line or " h" in line
    assert not (tmp_path / "smoke" / "synthetic").exists()  # a dry run writes nothing
    _complete(plan)
    lines.clear()
    runner.run_experiments("smoke", dry_run=True, root=tmp_path, log=lines.append)
    assert "nothing to do" in "\n".join(lines)
    assert not any(ln.startswith("budget") for ln in lines)  # smoke declares no budget


def test_dry_run_checks_the_budget(tmp_path, monkeypatch):
    """Spent (the JSON's wall times, every source of the plan) plus the estimate, against the
    profile's budget; the sum is computed here by hand."""
    plans = [make_plan("cpu", spec, entry, root=tmp_path) for spec, entry in plan_sources("cpu", None)]
    estimate = sum(runner.plan_cost(p, None)["total"] for p in plans)
    run = plans[1].runs[0]  # a debian-music run: spent time counts over every source
    run.json_path.parent.mkdir(parents=True)
    run.json_path.write_text(json.dumps({"format": RUN_FORMAT, "wall_seconds": 7200.0}))
    lines = []
    runner.run_experiments("cpu", dry_run=True, root=tmp_path, log=lines.append)
    budget = lines[-1]
    assert budget.startswith("budget (cpu): 16.0 h; spent 2.0 h + estimated")
    total = (7200 + estimate) / 3600
    assert (f"= {total:.1f} h: fits" in budget) == (total <= 16)
    monkeypatch.setitem(layout.BUDGET_HOURS, "cpu", 1.0)
    lines.clear()
    runner.run_experiments("cpu", dry_run=True, root=tmp_path, log=lines.append)
    assert f"EXCEEDS it by {total - 1:.1f} h" in lines[-1]


# ------------------------------------------------------------------------------ multi-GPU dispatch


def test_runs_are_spread_over_gpus_one_at_a_time(tmp_path, monkeypatch):
    plan = make_plan("smoke", "synthetic", root=tmp_path, gpu=True)
    launched, busy = [], set()

    class FakeProcess:
        def __init__(self, cmd, env):
            gpu = env["CUDA_VISIBLE_DEVICES"]
            assert gpu not in busy
            busy.add(gpu)
            self.gpu, self.polls, self.first = gpu, 0, not launched
            self.returncode = None
            launched.append((cmd[cmd.index("--run") + 1], gpu, cmd))

        def poll(self):
            self.polls += 1
            if self.polls >= 2:
                busy.discard(self.gpu)
                self.returncode = 1 if self.first else 0
            return self.returncode

    monkeypatch.setattr(runner.subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(runner.time, "sleep", lambda s: None)
    failures = runner._run_on_gpus(plan, plan.runs, 2, None, lambda m: None)
    assert sorted(n for n, _, _ in launched) == sorted(r.name for r in plan.runs)
    assert {g for _, g, _ in launched} == {"0", "1"}
    assert [n for n, _ in failures] == [launched[0][0]]
    cmd = launched[0][2]
    assert cmd[cmd.index("--profile") + 1] == "smoke" and cmd[cmd.index("--results") + 1] == str(tmp_path)


# ------------------------------------------------------------------------------ rendering


def _record(name: str, **metrics) -> dict:
    return {"format": RUN_FORMAT, "name": name,
            "metrics": {k: (None if v is None else {"mean": v, "ci": [v, v]}) for k, v in metrics.items()}}


def test_table5_cells_average_seeds_and_bold_the_better_loss():
    t5 = TABLES["table5"]
    names = {(loss, seed): spec.name("cpu") for loss in ("mel", "params") for spec in t5.cell("equalizer", loss).runs
             for seed in [spec.seed]}
    results = Results(runs={
        names[("mel", 0)]: _record(names[("mel", 0)], mse_y=0.2, mel=0.30, mse_q=0.1),
        names[("mel", 1)]: _record(names[("mel", 1)], mse_y=0.2, mel=0.34, mse_q=0.1),
        names[("params", 0)]: _record(names[("params", 0)], mse_y=0.3, mel=0.5, mse_q=None),
    })
    grid = table_grid(t5, results, "cpu")
    row = next(values for key, _, kind, values in grid.rows if key == "equalizer")
    cells = dict(zip(grid.header, row))
    assert cells[("mel", "mel")].mean == pytest.approx(0.32) and cells[("mel", "mel")].spread == pytest.approx(0.02)
    assert cells[("mel", "mel")].text() == "**0.32 ± 0.02**"
    assert cells[("params", "mel")].text() == "0.5 (1/2 seeds)"
    assert cells[("params", "mse_q")].text() == "n/a"
    assert cells[("mel", "mse_y")].best and not cells[("params", "mse_y")].best
    assert Value().text() == "–"


def test_table_baseline_rows_come_from_the_baseline_json():
    t2 = TABLES["table2"]
    summary = {m: {"mean": v, "ci": [v, v]} for m, v in (("mse_y", 0.48), ("mel", 0.64))}
    results = Results(baselines={("peq", "peq", False): {"xy": summary, "oracle": None}},
                      best_constant={("peq", "peq", False, "mel"): {"mel": {"mean": 0.6, "ci": [0.6, 0.6]}, "mse_y": None}})
    text = render_table(t2, results, "cpu")
    xy = next(ln for ln in text.splitlines() if "(x, y)" in ln).split("|")
    assert [c.strip() for c in xy[2:6]] == ["0.48", "0.64", "–", "–"]
    oracle = next(ln for ln in text.splitlines() if "oracle" in ln).split("|")
    assert [c.strip() for c in oracle[2:4]] == ["n/a", "n/a"]
    best = next(ln for ln in text.splitlines() if "best constant" in ln).split("|")
    assert [c.strip() for c in best[2:4]] == ["n/a", "0.6"]
    assert "| MEE-s |" in text and "TE (as published) *" in text


# ------------------------------------------------------------------------------ one real smoke run

CELL = "table2/tfe/peq"
REQUIRED = {"metrics", "commit", "profile", "profile_hash", "source", "device", "seed", "steps", "wall_seconds",
            "train_seconds", "eval_seconds", "config", "baselines", "name", "cells", "cpu_model"}


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """``beafx experiments --profile smoke --only table2/tfe/peq`` (2 steps, 2 test tracks)."""
    root = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(profiles.PROFILES, "smoke", replace(profiles.PROFILES["smoke"], test_max_tracks=2))
        if "beafx.experiments_cli" not in cli.SUBCOMMAND_MODULES:
            mp.setattr(cli, "SUBCOMMAND_MODULES", [*cli.SUBCOMMAND_MODULES, "beafx.experiments_cli"])
        code = cli.main(["experiments", "--profile", "smoke", "--only", CELL, "--results", str(root)])
        plan = make_plan("smoke", "synthetic", only=[CELL], root=root)
        snapshot = {p: p.read_bytes() for p in (root / "smoke" / "synthetic").rglob("*.json")}
        rerun_lines: list[str] = []
        rerun = runner.run_experiments("smoke", only=[CELL], root=root, log=rerun_lines.append)
        dry: list[str] = []
        runner.run_experiments("smoke", only=[CELL], root=root, dry_run=True, log=dry.append)
        after_rerun = {p: p.read_bytes() for p in (root / "smoke" / "synthetic").rglob("*.json")}
        reproduced = reproduce_run("smoke", "synthetic", plan.runs[0].name, root=root,
                                   scratch=tmp_path_factory.mktemp("scratch"))
        yield {"reproduced": reproduced, "after_rerun": after_rerun, "root": root, "code": code, "plan": plan, "snapshot": snapshot, "rerun": rerun,
               "rerun_lines": rerun_lines, "dry": "\n".join(dry)}


def test_smoke_run_writes_a_complete_json(smoke_results):
    assert smoke_results["code"] == 0
    (run,) = smoke_results["plan"].runs
    assert run.status == DONE
    record = json.loads(run.json_path.read_text())
    assert REQUIRED <= set(record)
    assert record["steps"] == record["total_steps"] == 2
    assert record["profile"] == "smoke" and record["source"] == "synthetic" and record["device"] == "cpu"
    assert record["cpu_model"] == cpu_model()
    assert record["profile_hash"] == profile_hash(profiles.get_profile("smoke"))
    assert record["profile_settings"]["test_max_tracks"] == 2  # the patched profile is the one recorded
    assert RunConfig.from_dict(record["config"]) == run.config and record["cells"] == [CELL]
    trained = json.loads((run.run_dir / "result.json").read_text())
    assert record["train_seconds"] == trained["wall_seconds_total"]
    assert record["wall_seconds"] == pytest.approx(record["train_seconds"] + record["eval_seconds"])
    assert record["evaluation"]["n_tracks"] == 2 and record["evaluation"]["seed"] == 0
    for metric in ("mel", "mse_y", "mrstft", "mse_q"):
        lo, hi = record["metrics"][metric]["ci"]
        assert lo <= record["metrics"][metric]["mean"] <= hi
    assert set(record["baselines"]) == {"random", "xy", "mean_q", "oracle"}
    base = json.loads((smoke_results["root"] / "smoke" / "synthetic" / "baselines" / "peq--peq.json").read_text())
    assert base["baselines"] == record["baselines"]  # computed once, reused by the run
    best = json.loads((smoke_results["root"] / "smoke" / "synthetic" / "best_constant" / "peq--peq--mel.json").read_text())
    assert best["start"] == runner.START_HALF  # the equalizer's loss is not flat at q_hat = 0.5
    assert best["steps"] == 2 and len(best["q_hat"]) == 15 and best["metrics"]["mel"]["mean"] > 0
    spent = record["wall_seconds"] + base["seconds"] + best["train_seconds"] + best["eval_seconds"]
    assert runner.spent_seconds(smoke_results["root"], "smoke", "synthetic") == pytest.approx(spent)


def test_rerun_does_nothing(smoke_results):
    assert smoke_results["rerun"] == 0
    assert "0 run(s) attempted" in "\n".join(smoke_results["rerun_lines"])
    assert smoke_results["after_rerun"] == smoke_results["snapshot"]
    assert "nothing to do" in smoke_results["dry"]


def test_a_run_rerun_from_scratch_is_bit_identical(smoke_results):
    report = smoke_results["reproduced"]
    assert report["identical"] and report["values_compared"] == report["values_identical"] > 100
    assert report["max_rel_diff"] == 0.0 and report["three_significant_digits"]
    (run,) = smoke_results["plan"].runs
    path = smoke_results["root"] / "smoke" / "synthetic" / "reproduce" / f"{run.name}.json"
    assert json.loads(path.read_text()) == report
    assert run.json_path.read_bytes() == smoke_results["snapshot"][run.json_path]  # the committed record is kept
    assert load_reports(smoke_results["root"], "smoke", "synthetic") == [report]
    assert report["threads"]["committed"] == report["threads"]["rerun"] == threads_of(report["committed"]["hardware"])
    assert report["same_cpu_model"] is True and report["committed"]["cpu_model"] == cpu_model()
    header, _, row = reports_markdown([report]).splitlines()
    assert "same CPU model" in header and "| yes |" in row and run.name in row and "bit-identical" in row and f"{report['values_compared']} of {report['values_compared']}" in row


def test_best_constant_leaves_the_flat_start_of_the_taylor_clipper():
    """q_hat = 0.5 gives the Taylor clipper all-zero coefficients: a silent output where the Mel
    loss's gradient is exactly zero, so Adam would stay there forever (the committed cpu
    best constant of Taylor/Chebyshev once did). train_constant starts next to it instead."""
    config = RunConfig(synthesis="clipper", analysis="taylor", encoder="mee", loss="mel", profile="smoke",
                       source="synthetic", seed=0)
    logits, steps, _, start = runner.train_constant(config)
    assert start == runner.START_RANDOM and steps >= 1
    assert 0 < float(logits.abs().max()) < 1  # moved, and still near q_hat = 0.5


def test_seed_spread_mel_is_the_largest_gap_to_another_seed(tmp_path):
    folder = tmp_path / "cpu" / "synthetic"
    folder.mkdir(parents=True)
    for name, mel in [("peq-peq-tfe-mel-cpu-s0", 0.50), ("peq-peq-tfe-mel-cpu-s1", 0.47), ("peq-peq-tfe-mel-cpu-s2", 0.52),
                      ("peq-peq-tfe-mel-cpu-s0x", 0.1), ("peq-peq-tfe-params-cpu-s0", 0.9)]:
        (folder / f"{name}.json").write_text(json.dumps({"metrics": {"mel": {"mean": mel}}}))
    assert seed_spread_mel(tmp_path, "cpu", "synthetic", "peq-peq-tfe-mel-cpu-s0") == pytest.approx(0.03)
    assert seed_spread_mel(tmp_path, "cpu", "synthetic", "peq-peq-tfe-mel-cpu-s1") == pytest.approx(0.05)
    assert seed_spread_mel(tmp_path, "cpu", "synthetic", "peq-peq-tfe-params-cpu-s0") is None  # one seed only
    assert seed_spread_mel(tmp_path, "cpu", "synthetic", "peq-peq-tfe-mel-cpu-s9") is None  # not run
    report = {"name": "peq-peq-tfe-mel-cpu-s0", "identical": False, "three_significant_digits": False, "max_rel_diff": 0.5,
              "threads": {"committed": 1, "rerun": 1}, "mel": {"committed": 0.50, "rerun": 0.502},
              "values_identical": 1, "values_compared": 10, "same_cpu_model": False}
    header, _, row = reports_markdown([report], {"peq-peq-tfe-mel-cpu-s0": 0.03}).splitlines()
    assert "Mel spread over seeds" in header and "| +0.002 | 0.03 |" in row and "| no |" in row
    assert "| one seed only |" in reports_markdown([report], {}).splitlines()[2]


def _metrics_record(mel_mean: float, per_example: list) -> dict:
    return {"metrics": {"mel": {"mean": mel_mean, "ci": [0.1, 0.3], "per_example": per_example}},
            "best_val_loss": 0.2, "steps": 300}


def test_compare_records_counts_and_tolerances():
    same = compare_records(_metrics_record(0.2, [0.1, 0.3]), _metrics_record(0.2, [0.1, 0.3]))
    assert same["identical"] and same["values_compared"] == 7 and same["max_rel_diff"] == 0.0
    close = compare_records(_metrics_record(0.2, [0.1, 0.3]), _metrics_record(0.2, [0.1, 0.3 * (1 + THREE_DIGITS / 2)]))
    assert not close["identical"] and close["values_identical"] == 6 and close["three_significant_digits"]
    assert close["largest_difference_at"] == "/metrics/mel/per_example[1]"
    assert close["max_abs_diff"] == pytest.approx(0.3 * THREE_DIGITS / 2)
    far = compare_records(_metrics_record(0.2, [0.1, 0.3]), _metrics_record(0.21, [0.1, 0.3]))
    assert not far["three_significant_digits"] and far["max_rel_diff"] == pytest.approx(0.01 / 0.21)
    with pytest.raises(ValueError, match="length"):
        compare_records(_metrics_record(0.2, [0.1, 0.3]), _metrics_record(0.2, [0.1]))


def test_threads_of_reads_the_hardware_record():
    assert threads_of("1 x CPU (2 cores, 1 torch threads)") == 1
    assert threads_of("2 x CPU (16 cores, 12 torch threads)") == 12
    assert threads_of("1 x NVIDIA H100") is None and threads_of(None) is None


def test_reproduce_with_another_thread_count_is_reported_apart(tmp_path, monkeypatch):
    """--threads N other than the committed run's: the rerun runs with N torch threads and its
    report goes to NAME--threads-N.json (training replaced by a stub that records the count)."""
    import torch

    from beafx.experiments import reproduce

    (run,) = make_plan("smoke", "synthetic", only=[CELL], root=tmp_path).runs
    committed = {"config": run.config.to_dict(), "hardware": "1 x CPU (2 cores, 1 torch threads)", "steps": 2,
                 "best_val_loss": 0.5, "metrics": {"mel": {"mean": 0.25, "ci": [0.2, 0.3]}}}
    run.json_path.parent.mkdir(parents=True)
    run.json_path.write_text(json.dumps(committed))
    seen = []

    def fake_rerun(*args):
        seen.append(torch.get_num_threads())
        return {**committed, "hardware": f"1 x CPU (2 cores, {torch.get_num_threads()} torch threads)"}

    monkeypatch.setattr(reproduce, "_rerun", fake_rerun)
    before = torch.get_num_threads()
    report = reproduce_run("smoke", "synthetic", run.name, root=tmp_path, threads=3)
    assert seen == [3] and torch.get_num_threads() == before
    assert report["threads"] == {"committed": 1, "rerun": 3} and report["identical"]
    assert report["same_cpu_model"] is None  # the committed record names no CPU model
    assert "not recorded" in reports_markdown([report])
    assert (run.json_path.parent / "reproduce" / f"{run.name}--threads-3.json").exists()
    reproduce_run("smoke", "synthetic", run.name, root=tmp_path)  # default: the committed count
    assert seen == [3, 1] and (run.json_path.parent / "reproduce" / f"{run.name}.json").exists()


def test_reproduce_needs_a_finished_run(beafx, capsys, tmp_path):
    code = beafx(["experiments", "--profile", "smoke", "--reproduce", "peq-peq-tfe-mel-smoke-s0", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no finished run peq-peq-tfe-mel-smoke-s0" in err and len(err.strip().splitlines()) == 1


def test_tables_rebuilt_from_the_json_equal_the_rendered_ones(smoke_results):
    root = smoke_results["root"]
    written = (root / "smoke" / "synthetic" / "tables.md").read_text()
    assert written == render_tables(load_results(root, "smoke", "synthetic"), "smoke", "synthetic")
    record = json.loads(smoke_results["plan"].runs[0].json_path.read_text())
    tfe = next(ln for ln in written.splitlines() if ln.startswith("| TFE |")).split("|")
    assert tfe[2].strip() == f"{record['metrics']['mse_y']['mean']:.3g}"
    assert tfe[3].strip() == f"{record['metrics']['mel']['mean']:.3g}"
    rnd = next(ln for ln in written.splitlines() if "random" in ln).split("|")
    assert rnd[3].strip() == f"{record['baselines']['random']['mel']['mean']:.3g}"


def test_a_run_folder_older_than_a_config_field_is_accepted(tmp_path):
    """A folder made before RunConfig gained a field (here authors_time_constant_bug) records
    the same run when the field has its default: it is not refused."""
    (run,) = make_plan("smoke", "synthetic", only=[CELL], root=tmp_path).runs
    run.run_dir.mkdir(parents=True)
    old = {k: v for k, v in run.config.to_dict().items() if k != "authors_time_constant_bug"}
    stored = {"config": old, "profile_hash": profile_hash(run.config.resolved_profile())}
    (run.run_dir / "config.json").write_text(json.dumps(stored))
    runner._check_run_dir(run)  # no error
    stored["config"] = {**old, "seed": 7}
    (run.run_dir / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="delete that folder"):
        runner._check_run_dir(run)


def test_a_run_folder_of_another_profile_is_refused(tmp_path):
    (run,) = make_plan("smoke", "synthetic", only=[CELL], root=tmp_path).runs
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "config.json").write_text(json.dumps({"config": run.config.to_dict(), "profile_hash": "old"}))
    with pytest.raises(ValueError, match="delete that folder"):
        runner.execute_run(run, root=tmp_path)


# ------------------------------------------------------------------------------ CLI


@pytest.fixture
def beafx(monkeypatch):
    if "beafx.experiments_cli" not in cli.SUBCOMMAND_MODULES:
        monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", [*cli.SUBCOMMAND_MODULES, "beafx.experiments_cli"])

    def main(argv):
        try:
            return cli.main(argv)
        except SystemExit as exit_:  # argparse's own errors
            return exit_.code

    return main


@pytest.mark.parametrize("args, message", [
    (["--profile", "paper", "--dry-run"], "--source musdb:PATH"),
    (["--profile", "smoke", "--only", "table9", "--dry-run"], "selects nothing"),
    (["--profile", "smoke", "--source", "nowhere", "--dry-run"], "unknown data source"),
    (["--profile", "smoke", "--max-steps", "0", "--dry-run"], "--max-steps"),
    (["--profile", "smoke", "--threads", "2", "--dry-run"], "--threads goes with --reproduce"),
    (["--profile", "smoke", "--reproduce", "x", "--only", "table2"], "--reproduce takes neither"),
])
def test_cli_usage_errors_are_one_line(beafx, capsys, tmp_path, args, message):
    assert beafx(["experiments", *args, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_dry_run_paper_on_musdb_estimates_without_the_data(beafx, capsys, tmp_path):
    assert beafx(["experiments", "--profile", "paper", "--source", "musdb:/no/such/musdb", "--only", "table5/equalizer",
                  "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "peq-peq-tfe-mel-paper-s0" in out and "assumed track counts" in out and "P100" in out
    assert str(tmp_path / "paper" / "musdb") in out


def test_proxy_results_go_stale_with_other_weights(tmp_path):
    """A result made through the proxy records the shipped weights' digest; another digest is stale,
    while runs without the proxy do not depend on it."""
    plan = make_plan("smoke", "synthetic", root=tmp_path, gpu=False)
    _complete(plan)
    proxied = [r for r in plan.runs if proxy_weights_digest(r.config.analysis)]
    plain = [r for r in plan.runs if not proxy_weights_digest(r.config.analysis)]
    assert proxied and plain
    assert proxy_weights_digest("peq+hybrid_compressor+clipper") == proxy_weights_digest("np_compressor")
    assert len(proxy_weights_digest("np_compressor")) == 12 and proxy_weights_digest("peq+compressor") is None
    for run in proxied:
        record = _fake_record(run)
        record["proxy_weights"] = "0" * 12
        run.json_path.write_text(json.dumps(record))
    status = {r.name: r.status for r in make_plan("smoke", "synthetic", root=tmp_path, gpu=False).runs}
    assert all(status[r.name] == STALE for r in proxied)
    assert all(status[r.name] == DONE for r in plain)
