"""The paper's claims checked on result JSON (``beafx.experiments.findings``): verdicts on small
Results built here with known per-example values (holds, fails, inconclusive when the seeds
disagree or the interval straddles zero, not run when runs are missing), the declared claims
against the paper's own numbers, the committed cpu results, and the committed ``tables.md``
against the tables rendered from the committed JSON.
"""
from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from beafx import paper
from beafx.experiments import TABLES, load_results, make_plan, render_tables
from beafx.experiments import runner
from beafx.experiments.findings import (
    CLAIMS, FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, VERDICTS, Arm, Claim, Comparison, evaluate_claim, evaluate_claims,
    findings_html, findings_rows, paper_text, side_by_side_html,
)
from beafx.experiments.tables import Results

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "cpu" / "synthetic"
N_TRACKS, REPEATS = 12, 5
TRACKS = [f"song-{i % N_TRACKS:03d}" for i in range(N_TRACKS * REPEATS)]


def _base(seed: int = 0) -> np.ndarray:
    """Per-example values with a large spread between tracks (as real ones have)."""
    rng = np.random.default_rng(seed)
    per_track = rng.uniform(0.2, 1.0, N_TRACKS)
    return np.array([per_track[i % N_TRACKS] for i in range(len(TRACKS))]) + rng.normal(0, 0.01, len(TRACKS))


def _record(values, *, baselines=None, tracks=TRACKS) -> dict:
    values = [float(v) for v in values]
    return {
        "profile": "cpu",
        "metrics": {"mel": {"mean": float(np.mean(values))}, "per_example": {"mel": values}},
        "baselines": {name: {"mel": {"mean": float(np.mean(v))}, "per_example": {"mel": [float(x) for x in v]}}
                      for name, v in (baselines or {}).items()},
        "evaluation": {"example_tracks": list(tracks)},
    }


def _put(results: Results, table: str, row: str, column: str, seed: int, values, **kw) -> None:
    spec = next(s for s in TABLES[table].cell(row, column).runs if s.seed == seed)
    results.runs[spec.name("cpu")] = _record(values, **kw)


def _claim(row: str = "equalizer") -> Claim:
    """Table 5: the Mel loss gives a lower Mel distance than MSE_q for ``row``."""
    return Claim("test", "a", "test", 5, (Comparison(Arm("table5", row, "mel"), Arm("table5", row, "params")),))


def _table5(shift_by_seed: dict[int, float]) -> Results:
    """Table 5's equalizer cells: the Mel-trained model's values are the MSE_q-trained one's
    plus ``shift`` (negative: the Mel loss wins) plus a little noise, per seed."""
    results = Results()
    for seed, shift in shift_by_seed.items():
        base = _base(seed)
        noise = np.random.default_rng(100 + seed).normal(0, 0.005, len(base))
        _put(results, "table5", "equalizer", "params", seed, base)
        _put(results, "table5", "equalizer", "mel", seed, base + shift + noise - noise.mean())
    return results


# ------------------------------------------------------------------------------ verdicts


def test_holds_when_every_seed_is_significantly_on_the_claimed_side():
    res = evaluate_claim(_claim(), _table5({0: -0.05, 1: -0.03}), "cpu")
    assert res.verdict == HOLDS
    (comp,) = res.comparisons
    assert [s.seed for s in comp.seeds] == [0, 1]
    for s, shift in zip(comp.seeds, (-0.05, -0.03)):
        assert s.difference == pytest.approx(shift, abs=1e-9)  # the noise has zero mean
        assert s.lo < s.difference < s.hi < 0
        assert s.n_examples == len(TRACKS)
        assert s.better == pytest.approx(s.worse + shift)


def test_fails_when_every_seed_is_significantly_on_the_other_side():
    res = evaluate_claim(_claim(), _table5({0: 0.04, 1: 0.02}), "cpu")
    assert res.verdict == FAILS
    assert all(s.lo > 0 for s in res.comparisons[0].seeds)


def test_inconclusive_when_the_seeds_disagree():
    res = evaluate_claim(_claim(), _table5({0: -0.05, 1: 0.05}), "cpu")
    assert res.verdict == INCONCLUSIVE
    assert "seeds disagree" in res.comparisons[0].note
    assert [s.verdict for s in res.comparisons[0].seeds] == [HOLDS, FAILS]


def test_inconclusive_when_the_interval_straddles_zero():
    results = Results()
    base = _base(0)
    # half the tracks better by 0.05, half worse by 0.05: a mean difference of exactly zero
    sign = np.array([1.0 if (i % N_TRACKS) % 2 else -1.0 for i in range(len(TRACKS))])
    for seed in (0, 1):
        _put(results, "table5", "equalizer", "params", seed, base)
        _put(results, "table5", "equalizer", "mel", seed, base + 0.05 * sign)
    res = evaluate_claim(_claim(), results, "cpu")
    assert res.verdict == INCONCLUSIVE
    for s in res.comparisons[0].seeds:
        assert s.difference == pytest.approx(0.0, abs=1e-9) and s.lo < 0 < s.hi
    assert "contains 0" in res.comparisons[0].note


def test_pairing_finds_a_small_consistent_difference_that_separate_intervals_miss():
    """Track-to-track spread dwarfs the difference between the two models; the paired
    differences remove it (the reason the runs share their test examples)."""
    from beafx.evaluation import track_bootstrap

    results = _table5({0: -0.01, 1: -0.01})
    res = evaluate_claim(_claim(), results, "cpu")
    assert res.verdict == HOLDS
    base = _base(0)
    _, lo_mel, hi_mel = track_bootstrap(base - 0.01, TRACKS)
    _, lo_par, hi_par = track_bootstrap(base, TRACKS)
    assert lo_par < hi_mel  # the two separate intervals overlap


def test_not_run_when_the_runs_are_missing_and_one_seed_is_enough_to_say_so():
    assert evaluate_claim(_claim(), Results(), "cpu").verdict == NOT_RUN
    only_one_arm = Results()
    _put(only_one_arm, "table5", "equalizer", "mel", 0, _base(0))
    res = evaluate_claim(_claim(), only_one_arm, "cpu")
    assert res.verdict == NOT_RUN and res.comparisons[0].note == "missing run"
    one_seed = _table5({1: -0.05})
    res = evaluate_claim(_claim(), one_seed, "cpu")
    assert res.verdict == HOLDS and "1/2 seeds" in res.comparisons[0].note
    assert [s.seed for s in res.comparisons[0].seeds] == [1]


def test_a_cell_with_one_declared_seed_is_judged_on_it():
    results = Results()
    base = _base(3)
    _put(results, "table4", "mee", "taylor", 0, base + 0.2)
    _put(results, "table4", "mee", "clipper", 0, base)
    claim = next(c for c in CLAIMS if c.key == "implementation_clipper_vs_taylor")
    res = evaluate_claim(claim, results, "cpu")
    assert res.verdict == HOLDS and res.comparisons[0].declared == 1 and res.comparisons[0].note == ""


def _baseline_results(model_shift: dict[str, float], *, best_constant: bool = True) -> Results:
    """Table 5's clipper, Mel loss, two seeds; the baselines are the model's values minus
    ``model_shift[name]`` (a positive shift: the model is better)."""
    results = Results()
    base = _base(5)
    baselines = {name: base - shift for name, shift in model_shift.items() if name != "best_constant"}
    for seed in (0, 1):
        _put(results, "table5", "clipper", "mel", seed, base, baselines=baselines)
    if best_constant:
        cell = TABLES["table5"].cell("clipper", "mel")
        results.best_constant[(cell.synthesis, cell.analysis, False, "mel")] = {
            "mel": {"mean": 0.0}, "per_example": {"mel": list(base - model_shift["best_constant"])}}
    return results


def test_the_model_against_the_baselines():
    claim = next(c for c in CLAIMS if c.key == "beats_baselines_clipper")
    beats = {"xy": -0.3, "mean_q": -0.1, "best_constant": -0.05}
    res = evaluate_claim(claim, _baseline_results(beats), "cpu")
    assert res.verdict == HOLDS and [c.verdict for c in res.comparisons] == [HOLDS] * 3
    assert res.shown.comparison.worse.baseline == "best_constant"  # the closest rival is shown
    loses_to_one = evaluate_claim(claim, _baseline_results({**beats, "mean_q": 0.05}), "cpu")
    assert loses_to_one.verdict == FAILS and loses_to_one.shown.comparison.worse.baseline == "mean_q"
    missing = evaluate_claim(claim, _baseline_results(beats, best_constant=False), "cpu")
    assert missing.verdict == INCONCLUSIVE
    assert [c.verdict for c in missing.comparisons] == [HOLDS, HOLDS, NOT_RUN]


def test_runs_scored_on_different_examples_are_refused():
    results = _table5({0: -0.05})
    spec = TABLES["table5"].cell("equalizer", "mel").runs[0]
    results.runs[spec.name("cpu")]["evaluation"]["example_tracks"] = list(reversed(TRACKS))
    with pytest.raises(ValueError, match="different test examples"):
        evaluate_claim(_claim(), results, "cpu")


def test_rows_and_html():
    results = _table5({0: -0.05, 1: -0.04})
    claim = next(c for c in CLAIMS if c.key == "audio_loss_equalizer")
    (row,) = findings_rows(results, "cpu", [claim])
    assert row["verdict"] == HOLDS and row["table"] == "Table 5"
    assert row["paper"] == f"{paper.text(5, 'equalizer', 'mel', 'mel')} vs {paper.text(5, 'equalizer', 'params', 'mel')}"
    assert "seed 0" in row["difference"] and "seed 1" in row["difference"]
    text = findings_html([row])
    assert text.startswith("<table") and HOLDS in text


# ------------------------------------------------------------------------------ the declared claims


def test_every_claim_of_the_paper_agrees_with_the_papers_own_numbers():
    groups = {c.group for c in CLAIMS}
    assert groups == {"a", "b", "c", "d"}
    assert len({c.key for c in CLAIMS}) == len(CLAIMS)
    for claim in CLAIMS:
        for comp in claim.comparisons:
            for arm in (comp.better, comp.worse):
                assert arm.cell is not None
            better, worse = paper_text(comp.better, comp.metric), paper_text(comp.worse, comp.metric)
            if claim.ours:
                continue
            assert better is not None, claim.key
            if worse is not None:
                assert float(better) < float(worse), claim.key
    # the clipper claims are judged on Mel only (the Taylor/Chebyshev MSE_y is sign and scale ambiguous)
    assert all(comp.metric == "mel" for c in CLAIMS if c.table == 4 for comp in c.comparisons)


def test_paper_numbers_sit_where_the_paper_has_them():
    assert paper_text(Arm("table2", "tfe", "peq"), "mel") == paper.text(2, "tfe", "peq", "mel")
    assert paper_text(Arm("table2", "te_authors", "peq"), "mel") is None  # our row
    assert paper_text(Arm("table3", "tfe", "simple_compressor_authors"), "mel") == paper.text(3, "tfe", "simple_compressor", "mel")
    assert paper_text(Arm("table3", "mee", "compressor"), "mel") is None  # our column
    assert paper_text(Arm("table5", "clipper", "params"), "mse_q") == paper.text(5, "clipper", "params", "mse_q")
    assert paper_text(Arm("table5", "compressor_exact", "mel"), "mel") is None
    # Table 5's baselines: the paper's L(x, y) of the same configuration in Tables 2-4
    assert paper_text(Arm("table5", "equalizer", "mel", "xy"), "mel") == paper.text(2, "identity", "peq", "mel")
    assert paper_text(Arm("table5", "compressor", "mel", "random"), "mel") == paper.text(3, "random_q", "hybrid_compressor", "mel")
    assert paper_text(Arm("table5", "chain", "mel", "xy"), "mel") is None
    assert paper_text(Arm("table4", "mee", "clipper", "mean_q"), "mel") is None
    assert paper_text(Arm("table5", "equalizer", "mel"), "mrstft") is None
    with pytest.raises(ValueError):
        Arm("table2", "tfe", "hybrid_compressor")
    with pytest.raises(ValueError):
        Arm("table2", "tfe", "peq", "oracle")


def test_side_by_side_shows_ours_and_the_papers_numbers():
    results = _table5({0: -0.05, 1: -0.04})
    text = side_by_side_html(TABLES["table5"], results, "cpu")
    assert f"| {paper.text(5, 'equalizer', 'mel', 'mel')}<" in text
    assert f"| {paper.text(5, 'chain', 'params', 'mse_q')}<" in text
    assert text.count("<b>") >= 1  # the better loss of the equalizer row
    t2 = side_by_side_html(TABLES["table2"], Results(), "cpu")
    assert f"| {paper.text(2, 'identity', 'geq', 'mel')}<" in t2 and "MEE-s" in t2


# ------------------------------------------------------------------------------ the committed results


def _committed() -> Results:
    if not COMMITTED.is_dir():
        pytest.skip("no committed cpu results")
    return load_results(ROOT / "results", "cpu", "synthetic")


def _comparison_exists(comp: Comparison, results: Results) -> bool:
    """Some seed has every trained arm's run (baselines come inside the runs' JSON)."""
    trained = [a for a in (comp.better, comp.worse) if a.baseline is None]
    seeds = set.intersection(*({s.seed for s in a.cell.runs} for a in trained))
    return any(all(next(s for s in a.cell.runs if s.seed == seed).name("cpu") in results.runs for a in trained)
               for seed in seeds)


def test_the_committed_results_give_a_verdict_for_every_claim_whose_runs_exist():
    results = _committed()
    evaluated = evaluate_claims(results, "cpu")
    assert len(evaluated) == len(CLAIMS)
    judged = 0
    for res in evaluated:
        assert res.verdict in VERDICTS
        for comp in res.comparisons:
            exists = _comparison_exists(comp.comparison, results)
            if exists and not (comp.comparison.worse.baseline == "best_constant" and comp.note == "best constant missing"):
                assert comp.verdict != NOT_RUN, (res.claim.key, comp.note)
                judged += 1
                for s in comp.seeds:
                    assert s.lo <= s.difference <= s.hi and s.n_examples > 0
            elif not exists:
                assert comp.verdict == NOT_RUN
    assert judged > 0
    rows = findings_rows(results, "cpu", evaluated=evaluated)
    assert [r["key"] for r in rows] == [c.key for c in CLAIMS]
    assert {"claim", "table", "paper", "ours", "difference", "verdict"} <= set(rows[0])


# ------------------------------------------------------------------------------ the committed tables.md


def _copy_results(dest: Path) -> None:
    target = dest / "cpu" / "synthetic"
    target.mkdir(parents=True)
    for path in COMMITTED.glob("*.json"):
        shutil.copy(path, target / path.name)
    for sub in ("baselines", "best_constant"):
        if (COMMITTED / sub).is_dir():
            shutil.copytree(COMMITTED / sub, target / sub)


def test_the_runner_writes_the_tables_rendered_from_the_json(tmp_path):
    """The file the runner writes (``write_tables``) is ``render_tables(load_results(...))``,
    deterministic (rendered twice, same text) and independent of where the JSON lie."""
    results = _committed()
    _copy_results(tmp_path)
    plan = make_plan("cpu", "synthetic", root=tmp_path, gpu=False)
    written = runner.write_tables(plan).read_text()
    again = render_tables(load_results(tmp_path, "cpu", "synthetic"), "cpu", "synthetic")
    assert written == again
    assert written == render_tables(results, "cpu", "synthetic")


def _cells(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]


def _lagging_cells(committed: str, fresh: str) -> int:
    """How many cells of ``committed`` lag ``fresh`` (still ``–`` or with fewer seeds); an
    AssertionError for any other difference (another number, row, title or note)."""
    old, new = _cells(committed), _cells(fresh)
    assert [c[0] for c in old] == [c[0] for c in new], "the tables' rows differ: not rendered by render_tables"
    assert [ln for ln in committed.splitlines() if not ln.startswith("|")] == \
        [ln for ln in fresh.splitlines() if not ln.startswith("|")], "titles or notes differ"
    lagging = 0
    for row_old, row_new in zip(old, new):
        assert len(row_old) == len(row_new)
        for a, b in zip(row_old, row_new):
            a, b = a.replace("**", ""), b.replace("**", "")
            if a == b:
                continue
            assert a == "–" or re.search(r"\(\d+/\d+ seeds\)$", a), f"tables.md shows {a!r} where the JSON give {b!r}"
            lagging += 1
    return lagging


def test_the_lag_check_accepts_only_a_lag():
    results = _committed()
    fresh = render_tables(results, "cpu", "synthetic")
    assert _lagging_cells(fresh, fresh) == 0
    # an earlier rendering, with one run fewer, only lags
    name = next(n for n in sorted(results.runs) if "table2/" in " ".join(results.runs[n]["cells"]))
    fewer = Results({k: v for k, v in results.runs.items() if k != name}, results.baselines, results.best_constant)
    assert _lagging_cells(render_tables(fewer, "cpu", "synthetic"), fresh) >= 1
    # a number that is not the JSON's is caught
    mean = results.runs[name]["metrics"]["mel"]["mean"]
    wrong = fresh.replace(f"{mean:.3g}", f"{mean * 1.5:.3g}", 1)
    assert wrong != fresh
    with pytest.raises(AssertionError):
        _lagging_cells(wrong, fresh)


def test_the_committed_tables_md_is_the_rendering_of_the_committed_json():
    """``tables.md`` equals the tables rendered from the JSON beside it. While ``beafx
    experiments`` is adding runs, the file is rewritten only after each source, so it may lag
    the JSON: then every number it shows must still be the number rendered now; only cells
    still empty (``–``) or with fewer seeds, and bold marks, may differ (and a warning says so)."""
    results = _committed()
    path = COMMITTED / "tables.md"
    if not path.exists():
        pytest.skip("no committed tables.md")
    committed, fresh = path.read_text(), render_tables(results, "cpu", "synthetic")
    if committed == fresh:
        return
    lagging = _lagging_cells(committed, fresh)
    warnings.warn(f"results/cpu/synthetic/tables.md lags the JSON by {lagging} cell(s): rerun `beafx experiments "
                  "--profile cpu` (or beafx.experiments.runner.write_tables) before committing", stacklevel=1)
