"""The paper's claims, each checked on the result JSON alone (book chapter "Reproducing the
paper's experiments", ``book/12_experiments``).

A claim is a declared comparison between two arms scored on the same test examples: the
trained runs of a table cell (:data:`~beafx.experiments.layout.TABLES`), or a baseline of that
cell's test set. Every run of a table is evaluated on the same examples (``EVAL_SEED``), and
its JSON keeps the value of every example for the model and for every baseline
(``metrics.per_example``, ``baselines.<name>.per_example``) with the examples' tracks
(``evaluation.example_tracks``). So a claim "A is lower than B" is tested on the *paired*
differences ``A_i - B_i`` of the same examples, with the track bootstrap of
:func:`beafx.evaluation.track_bootstrap` (the repeats of one track are not independent),
once per training seed that both arms have.

Verdicts (:data:`VERDICTS`):

- ``holds``: the 95 % interval of the mean paired difference lies on the claimed side of
  zero for every seed found;
- ``fails``: it lies on the other side for every seed found (the opposite is shown);
- ``inconclusive``: an interval contains zero, or the seeds disagree;
- ``not run``: no seed has both arms (the runs are missing, GPU-only or blocked).

A claim with several comparisons (a trained model against three baselines) holds when all
hold, fails when one fails, and is not run when none was run.

- :data:`CLAIMS`: the declared claims (a) the audio loss wins on Mel for the equalizer and the
  chain, (b) the parameter loss wins on Mel for the compressor and the clipper (Table 5),
  (c) the synthesis implementation is the best analysis implementation (Tables 2-4, on the
  Mel distance: the Taylor and Chebyshev clippers' MSE_y is sign and scale ambiguous), (d) the
  trained model beats the blind baselines;
- :func:`evaluate_claims`, :func:`findings_rows`, :func:`findings_html`: the verdicts, as data
  and as the book's table;
- :func:`paper_text`, :func:`side_by_side_html`: the paper's numbers beside ours.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .. import paper
from ..evaluation import track_bootstrap
from .layout import TABLES, Cell, TableLayout
from .tables import BASELINE_LABELS, METRIC_LABELS, Results, profile_labels, table_grid

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "fails", "inconclusive", "not run"
#: Every verdict, in the order the book explains them.
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
#: Baselines an arm may name (``oracle`` is a floor, not a competitor).
ARM_BASELINES = ("random", "xy", "mean_q", "best_constant")
#: Our baselines and the paper's rows of Tables 2-4 that hold the same estimator.
PAPER_BASELINE_ROWS = {"random": "random_q", "xy": "identity"}
#: Our columns whose paper column has another key: the paper's "Simpl. DSP" was computed with
#: the authors' time-constant bug, i.e. our "as published" column.
PAPER_COLUMNS = {"simple_compressor_authors": "simple_compressor"}


# ---------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the trained runs of the cell ``(table, row, column)`` of
    :data:`TABLES` (one per seed), or with ``baseline`` a baseline of that cell's test set
    (``xy``, ``mean_q``, ``random``, or ``best_constant`` trained with the cell's loss)."""

    table: str
    row: str
    column: str
    baseline: Optional[str] = None

    def __post_init__(self) -> None:
        layout = TABLES.get(self.table)
        if layout is None or layout.cell(self.row, self.column) is None:
            raise ValueError(f"no declared cell {self.table}/{self.row}/{self.column}")
        if self.baseline is not None and self.baseline not in ARM_BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; use one of {', '.join(ARM_BASELINES)}")

    @property
    def layout(self) -> TableLayout:
        return TABLES[self.table]

    @property
    def cell(self) -> Cell:
        return self.layout.cell(self.row, self.column)

    def label(self, profile: str = "cpu") -> str:
        """Readable name, e.g. ``TFE × Parametric`` or ``Eq., trained with Mel``."""
        if self.baseline is not None:
            return BASELINE_LABELS[self.baseline]
        rows, columns = dict(self.layout.rows), dict(self.layout.columns)
        row = profile_labels(profile).get(self.row, rows[self.row])
        if self.layout.baselines_by == "row":  # Table 5: effect, training loss
            return f"{row}, {columns[self.column]}"
        return f"{row} × {columns[self.column]}"


@dataclass(frozen=True)
class Comparison:
    """The claim that ``better`` has a lower mean ``metric`` than ``worse`` on the same examples."""

    better: Arm
    worse: Arm
    metric: str = "mel"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper (or ours, ``ours=True``: about our rows or columns): ``key``,
    ``group`` (``a``-``d``), the claim in words, the paper's ``table`` it comes from and its
    comparisons (all must hold)."""

    key: str
    group: str
    text: str
    table: int
    comparisons: tuple[Comparison, ...]
    ours: bool = False


def _t5(row: str, loss: str, baseline: Optional[str] = None) -> Arm:
    return Arm("table5", row, loss, baseline)


def _loss_claim(key: str, group: str, row: str, text: str, *, audio_wins: bool, ours: bool = False) -> Claim:
    mel, params = _t5(row, "mel"), _t5(row, "params")
    better, worse = (mel, params) if audio_wins else (params, mel)
    return Claim(key, group, text, 5, (Comparison(better, worse, "mel"),), ours)


def _beats_baselines(row: str, label: str) -> Claim:
    model = _t5(row, "mel")
    return Claim(
        f"beats_baselines_{row}", "d",
        f"{label}: the model trained with the Mel loss beats the blind baselines (x, y), q̂ = 0.5 and the best constant",
        5, tuple(Comparison(model, _t5(row, "mel", b), "mel") for b in ("xy", "mean_q", "best_constant")),
    )


#: The declared claims, in the book's order.
CLAIMS: tuple[Claim, ...] = (
    # (a) the audio loss gives the better sound for the equalizer and the chain (Table 5)
    _loss_claim("audio_loss_equalizer", "a", "equalizer",
                "Equalizer: training with the Mel loss gives a lower Mel distance than training with MSE_q", audio_wins=True),
    _loss_claim("audio_loss_chain", "a", "chain",
                "Chain: training with the Mel loss gives a lower Mel distance than training with MSE_q", audio_wins=True),
    _loss_claim("audio_loss_chain_exact", "a", "chain_exact",
                "Chain with the exact DSP compressor: the Mel loss gives a lower Mel distance than MSE_q",
                audio_wins=True, ours=True),
    # (b) the counter-intuitive result: the parameter loss wins on Mel for compressor and clipper
    _loss_claim("param_loss_compressor", "b", "compressor",
                "Compressor: training with MSE_q gives a lower Mel distance than training with the Mel loss", audio_wins=False),
    _loss_claim("param_loss_clipper", "b", "clipper",
                "Clipper: training with MSE_q gives a lower Mel distance than training with the Mel loss", audio_wins=False),
    _loss_claim("param_loss_compressor_exact", "b", "compressor_exact",
                "Exact DSP compressor: training with MSE_q gives a lower Mel distance than the Mel loss",
                audio_wins=False, ours=True),
    # (c) the synthesis implementation is the best analysis implementation (Tables 2-4, Mel)
    Claim("implementation_equalizer", "c",
          "Equalizer (TFE): the parametric EQ (the synthesis one) beats the graphic EQ", 2,
          (Comparison(Arm("table2", "tfe", "peq"), Arm("table2", "tfe", "geq")),)),
    Claim("implementation_hybrid_vs_np", "c",
          "Compressor (MEE): the hybrid (DSP forward, proxy gradients) beats the neural proxy alone", 3,
          (Comparison(Arm("table3", "mee", "hybrid_compressor"), Arm("table3", "mee", "np_compressor")),)),
    # the same comparison with the TFE: the paper's Table 3 has it too, and both cells run on a CPU
    # (the MEE's NP cell is GPU only in the `cpu` profile)
    Claim("implementation_hybrid_vs_np_tfe", "c",
          "Compressor (TFE): the hybrid beats the neural proxy alone", 3,
          (Comparison(Arm("table3", "tfe", "hybrid_compressor"), Arm("table3", "tfe", "np_compressor")),)),
    Claim("implementation_hybrid_vs_simple", "c",
          "Compressor (MEE): the hybrid beats the simplified DSP compressor (ours without the authors' bug)", 3,
          (Comparison(Arm("table3", "mee", "hybrid_compressor"), Arm("table3", "mee", "simple_compressor")),)),
    Claim("implementation_hybrid_vs_simple_published", "c",
          "Compressor (TFE): the hybrid beats the simplified DSP compressor as published (with the bug)", 3,
          (Comparison(Arm("table3", "tfe", "hybrid_compressor"), Arm("table3", "tfe", "simple_compressor_authors")),)),
    Claim("implementation_exact_vs_simple", "c",
          "Compressor (MEE): the exact DSP compressor (the synthesis one) beats the simplified one", 3,
          (Comparison(Arm("table3", "mee", "compressor"), Arm("table3", "mee", "simple_compressor")),), ours=True),
    Claim("implementation_exact_vs_hybrid", "c",
          "Compressor (MEE, Mel loss): the exact DSP compressor beats the hybrid", 3,
          (Comparison(_t5("compressor_exact", "mel"), _t5("compressor", "mel")),), ours=True),
    Claim("implementation_clipper_vs_taylor", "c",
          "Clipper (MEE): the parametric clipper (the synthesis one) beats the Taylor clipper", 4,
          (Comparison(Arm("table4", "mee", "clipper"), Arm("table4", "mee", "taylor")),)),
    Claim("implementation_clipper_vs_chebyshev", "c",
          "Clipper (MEE): the parametric clipper beats the Chebyshev clipper", 4,
          (Comparison(Arm("table4", "mee", "clipper"), Arm("table4", "mee", "chebyshev")),)),
    # (d) training beats the blind baselines
    _beats_baselines("equalizer", "Equalizer (TFE)"),
    _beats_baselines("compressor", "Compressor (MEE, hybrid)"),
    _beats_baselines("clipper", "Clipper (MEE)"),
    _beats_baselines("chain", "Chain (TFE)"),
)


# ---------------------------------------------------------------------------------- the paper's numbers


def _paper_location(layout: TableLayout, row: str, column: str, baseline: Optional[str]) -> Optional[tuple[int, str, str]]:
    """``(table, row, column)`` of the paper holding the value of our row/column (or baseline)."""
    if layout.paper is None:
        return None
    if layout.baselines_by == "row":  # Table 5: the paper has no baselines there; Tables 2-4 do
        if baseline is None:
            t = paper.table(layout.paper)
            return (layout.paper, row, column) if row in t.rows and column in t.columns else None
        config = paper.table(5).configurations.get(row) or {}
        analysis = config.get("analysis")
        for number in (2, 3, 4):
            if analysis in paper.table(number).columns and baseline in PAPER_BASELINE_ROWS:
                return number, PAPER_BASELINE_ROWS[baseline], analysis
        return None
    t = paper.table(layout.paper)
    column = PAPER_COLUMNS.get(column, column)
    row = PAPER_BASELINE_ROWS.get(baseline) if baseline is not None else row
    if row in t.rows and column in t.columns:
        return layout.paper, row, column
    return None


def paper_text(arm: Arm, metric: str) -> Optional[str]:
    """The paper's number for ``arm`` and ``metric`` as printed (None where the paper has no
    such cell: our rows and columns, our baselines, MSE_q outside Table 5)."""
    where = _paper_location(arm.layout, arm.row, arm.column, arm.baseline)
    if where is None or metric not in paper.table(where[0]).metrics:
        return None
    return paper.text(where[0], where[1], where[2], metric)


def paper_cell_text(layout: TableLayout, row: str, column: str, metric: str, baseline: Optional[str] = None) -> Optional[str]:
    """The paper's number for a cell of ``layout`` (``row`` a row key, ``baseline`` a baseline
    name for a baseline row), as printed; None where the paper has none."""
    where = _paper_location(layout, row, column, baseline)
    if where is None or metric not in paper.table(where[0]).metrics:
        return None
    return paper.text(where[0], where[1], where[2], metric)


# ---------------------------------------------------------------------------------- evaluation


@dataclass
class SeedDifference:
    """One training seed of a comparison: the two means over the examples and the mean paired
    difference ``better - worse`` with its 95 % track-bootstrap interval."""

    seed: int
    better: float
    worse: float
    difference: float
    lo: float
    hi: float
    n_examples: int

    @property
    def verdict(self) -> str:
        if self.hi < 0:
            return HOLDS
        if self.lo > 0:
            return FAILS
        return INCONCLUSIVE


@dataclass
class ComparisonResult:
    """A comparison evaluated: per seed, the seeds declared, the verdict and a note."""

    comparison: Comparison
    seeds: list[SeedDifference] = field(default_factory=list)
    declared: int = 0
    verdict: str = NOT_RUN
    note: str = ""

    def mean(self, side: str) -> Optional[float]:
        """Mean of ``better`` or ``worse`` over the seeds found."""
        if not self.seeds:
            return None
        return float(np.mean([getattr(s, side) for s in self.seeds]))

    @property
    def upper(self) -> float:
        """The least favourable end of the intervals (the highest ``hi``; inf when not run)."""
        return max((s.hi for s in self.seeds), default=math.inf)


@dataclass
class ClaimResult:
    """A claim evaluated: its verdict and its comparisons."""

    claim: Claim
    verdict: str
    comparisons: list[ComparisonResult]

    @property
    def shown(self) -> ComparisonResult:
        """The comparison that decides the verdict: the first that fails, else the least
        favourable of those run, else the first."""
        failing = [c for c in self.comparisons if c.verdict == FAILS]
        if failing:
            return failing[0]
        run = [c for c in self.comparisons if c.seeds]
        return max(run, key=lambda c: c.upper) if run else self.comparisons[0]


def _per_example(summary: Optional[dict], metric: str) -> Optional[np.ndarray]:
    if not summary:
        return None
    values = (summary.get("per_example") or {}).get(metric)
    return None if values is None else np.asarray(values, dtype=np.float64)


def _tracks(record: dict) -> Optional[list]:
    return (record.get("evaluation") or {}).get("example_tracks")


def arm_values(arm: Arm, seed: int, metric: str, results: Results, profile: str) -> tuple[Optional[np.ndarray], Optional[list], str]:
    """The per-example values of ``arm`` (its run of ``seed``, or the baseline) on ``metric``:
    ``(values, tracks, why)``: ``values`` None when missing (``why`` says what is missing),
    ``tracks`` the examples' tracks (None for a baseline read outside a run's JSON)."""
    cell = arm.cell
    if arm.baseline is None:
        specs = [s for s in cell.runs if s.seed == seed]
        record = results.runs.get(specs[0].name(profile)) if specs else None
        if record is None:
            return None, None, "missing run"
        values = _per_example(record.get("metrics"), metric)
        return values, _tracks(record), "" if values is not None else "no per-example values"
    tc_bug = cell.runs[0].authors_time_constant_bug
    if arm.baseline == "best_constant":
        summary = results.best_constant.get((cell.synthesis, cell.analysis, tc_bug, cell.loss))
        values = _per_example(summary, metric)
        return values, None, "" if values is not None else "best constant missing"
    for spec in cell.runs:  # the baselines inside a run's JSON: the same examples, with their tracks
        record = results.runs.get(spec.name(profile))
        if record is not None:
            values = _per_example((record.get("baselines") or {}).get(arm.baseline), metric)
            if values is not None:
                return values, _tracks(record), ""
    base = results.baselines.get((cell.synthesis, cell.analysis, tc_bug)) or {}
    values = _per_example(base.get(arm.baseline), metric)
    return values, None, "" if values is not None else "baselines missing"


def _seeds(comparison: Comparison) -> list[int]:
    """The training seeds both arms declare (a baseline does not depend on the seed)."""
    sets = [{s.seed for s in arm.cell.runs} for arm in (comparison.better, comparison.worse) if arm.baseline is None]
    if not sets:
        return [0]
    return sorted(set.intersection(*sets))


def evaluate_comparison(comparison: Comparison, results: Results, profile: str, *, n_boot: int = 2000,
                        boot_seed: int = 0) -> ComparisonResult:
    """The paired differences of ``comparison`` per seed, and its verdict."""
    out = ComparisonResult(comparison, declared=len(_seeds(comparison)))
    reasons = []
    names = comparison.better.label(profile), comparison.worse.label(profile)
    for seed in _seeds(comparison):
        (a, ta, why_a), (b, tb, why_b) = (arm_values(arm, seed, comparison.metric, results, profile)
                                          for arm in (comparison.better, comparison.worse))
        if a is None or b is None:
            reasons.append(why_a or why_b)
            continue
        if len(a) != len(b):
            raise ValueError(f"{names[0]} and {names[1]} were scored on {len(a)} and {len(b)} examples: not the same test set")
        if ta is not None and tb is not None and list(ta) != list(tb):
            raise ValueError(f"{names[0]} and {names[1]} were scored on different test examples (their example_tracks differ)")
        tracks = ta if ta is not None else tb
        if tracks is None or len(tracks) != len(a):
            raise ValueError(f"{names[0]} against {names[1]}: no example_tracks matching the per-example values")
        diff, lo, hi = track_bootstrap(a - b, tracks, n_boot=n_boot, seed=boot_seed)
        out.seeds.append(SeedDifference(seed, float(a.mean()), float(b.mean()), float(diff), float(lo), float(hi), len(a)))
    verdicts = {s.verdict for s in out.seeds}
    if not out.seeds:
        out.verdict = NOT_RUN
        out.note = reasons[0] if reasons else "missing run"
    elif verdicts == {HOLDS}:
        out.verdict = HOLDS
    elif verdicts == {FAILS}:
        out.verdict = FAILS
    else:
        out.verdict = INCONCLUSIVE
        out.note = "the seeds disagree" if len(out.seeds) > 1 and len(verdicts) > 1 else "the interval contains 0"
    if out.seeds and len(out.seeds) < out.declared:
        out.note = "; ".join(n for n in (out.note, f"{len(out.seeds)}/{out.declared} seeds") if n)
    return out


def _combine(results: Sequence[ComparisonResult]) -> str:
    verdicts = [c.verdict for c in results]
    if all(v == NOT_RUN for v in verdicts):
        return NOT_RUN
    if FAILS in verdicts:
        return FAILS
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    return INCONCLUSIVE


def evaluate_claim(claim: Claim, results: Results, profile: Optional[str] = None, *, n_boot: int = 2000,
                   boot_seed: int = 0) -> ClaimResult:
    """``claim`` evaluated on ``results`` of ``profile`` (default: the profile the runs record)."""
    profile = profile or results_profile(results)
    comparisons = [evaluate_comparison(c, results, profile, n_boot=n_boot, boot_seed=boot_seed) for c in claim.comparisons]
    return ClaimResult(claim, _combine(comparisons), comparisons)


def evaluate_claims(results: Results, profile: Optional[str] = None, claims: Sequence[Claim] = CLAIMS, *,
                    n_boot: int = 2000, boot_seed: int = 0) -> list[ClaimResult]:
    """Every claim of ``claims`` evaluated on ``results``."""
    profile = profile or results_profile(results)
    return [evaluate_claim(c, results, profile, n_boot=n_boot, boot_seed=boot_seed) for c in claims]


def results_profile(results: Results, default: str = "cpu") -> str:
    """The profile the runs of ``results`` record (``default`` when there is none)."""
    for record in results.runs.values():
        if record.get("profile"):
            return str(record["profile"])
    return default


# ---------------------------------------------------------------------------------- rows and HTML


def _g(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.3g}"


def _signed(x: float) -> str:
    return f"{x:+.2g}".replace("-", "−")


def _difference_text(result: ComparisonResult) -> str:
    parts = [f"{_signed(s.difference)} [{_signed(s.lo)}, {_signed(s.hi)}] (seed {s.seed})" for s in result.seeds]
    return "; ".join(parts) if parts else "–"


def _paper_numbers(res: ClaimResult, shown: ComparisonResult, profile: str) -> str:
    """The paper's two numbers of the comparison shown, else of another comparison of the claim
    that the paper has (named), else what the paper has."""
    for r in [shown, *(r for r in res.comparisons if r is not shown)]:
        c = r.comparison
        pb, pw = paper_text(c.better, c.metric), paper_text(c.worse, c.metric)
        if pb is not None and pw is not None:
            return f"{pb} vs {pw}" + ("" if r is shown else f", against {c.worse.label(profile)}")
    c = shown.comparison
    pb, pw = paper_text(c.better, c.metric), paper_text(c.worse, c.metric)
    return f"{pb or '–'} vs {pw or '–'}" if (pb or pw) else "–"


def findings_rows(results: Results, profile: Optional[str] = None, claims: Sequence[Claim] = CLAIMS, *,
                  evaluated: Optional[Sequence[ClaimResult]] = None) -> list[dict]:
    """One row per claim, usable as a table: ``key``, ``group``, ``claim`` (words, ``(ours)``
    for our rows), ``table`` (the paper's table), ``comparison`` (the one shown: ``A < B`` on a
    metric), ``paper`` (its two numbers as printed, ``–`` where the paper has none), ``ours``
    (the two means over the seeds found), ``difference`` (mean paired difference ``A - B`` and
    its 95 % interval per seed), ``verdict`` and ``note``."""
    evaluated = list(evaluated) if evaluated is not None else evaluate_claims(results, profile, claims)
    profile = profile or results_profile(results)
    rows = []
    for res in evaluated:
        shown = res.shown
        c = shown.comparison
        paper_numbers = _paper_numbers(res, shown, profile)
        note = shown.note
        if len(res.comparisons) > 1:
            others = [f"{r.comparison.worse.label(profile)}: {r.verdict}" for r in res.comparisons if r is not shown]
            note = "; ".join(n for n in (note, "also " + ", ".join(others)) if n)
        rows.append({
            "key": res.claim.key,
            "group": res.claim.group,
            "claim": res.claim.text + (" (ours)" if res.claim.ours else ""),
            "table": f"Table {res.claim.table}",
            "comparison": f"{c.better.label(profile)} < {c.worse.label(profile)} ({METRIC_LABELS.get(c.metric, c.metric)})",
            "paper": paper_numbers,
            "ours": f"{_g(shown.mean('better'))} vs {_g(shown.mean('worse'))}" if shown.seeds else "–",
            "difference": _difference_text(shown),
            "verdict": res.verdict,
            "note": note,
        })
    return rows


VERDICT_COLOURS = {HOLDS: "#1a7f37", FAILS: "#cf222e", INCONCLUSIVE: "#9a6700", NOT_RUN: "#6e7781"}


def findings_html(rows: Sequence[dict]) -> str:
    """The rows of :func:`findings_rows` as an HTML table (verdicts coloured)."""
    head = ("<th>claim</th><th>table</th><th>compared (lower is better)</th><th>paper</th><th>ours (means)</th>"
            "<th>paired difference, 95 % interval</th><th>verdict</th>")
    body = []
    for r in rows:
        verdict = r["verdict"]
        note = f"<br><small>{html.escape(r['note'])}</small>" if r.get("note") else ""
        body.append(
            f"<tr><td>{html.escape(r['claim'])}</td><td>{html.escape(r['table'])}</td>"
            f"<td><small>{html.escape(r['comparison'])}</small></td><td>{html.escape(r['paper'])}</td>"
            f"<td>{html.escape(r['ours'])}</td><td><small>{html.escape(r['difference'])}</small></td>"
            f"<td style=\"color:{VERDICT_COLOURS.get(verdict, 'inherit')}\"><b>{html.escape(verdict)}</b>{note}</td></tr>"
        )
    return (f'<table class="table beafx-findings" style="font-size:0.85em"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def side_by_side_html(layout: TableLayout, results: Results, profile: str, *, source: str = "") -> str:
    """``layout`` rendered from ``results`` (as :func:`~beafx.experiments.render_table`: mean over
    seeds, ``± half range``, bold the best trained value) with the paper's number beside ours in
    every cell the paper has (grey, after the bar)."""
    grid = table_grid(layout, results, profile)
    columns = dict(layout.columns)
    extra = profile_labels(profile)
    metrics = layout.metrics
    head1 = "<th></th>" + "".join(
        f'<th colspan="{len(metrics)}" style="text-align:center">{html.escape(columns[c])}{" *" if c in layout.ours else ""}</th>'
        for c in layout.column_keys())
    head2 = "<th></th>" + "".join(f"<th>{html.escape(METRIC_LABELS.get(m, m))}</th>" for _ in layout.column_keys() for m in metrics)
    body = []
    current_row = None
    for key, label, kind, values in grid.rows:
        if kind == "run":
            current_row = key
            name = html.escape(extra.get(key, label) + (" *" if key in layout.ours else ""))
            baseline = None
        else:
            baseline = key.split("/")[-1]
            name = ("↳ " if layout.baselines_by == "row" else "") + f"<i>{html.escape(label.strip())}</i>"
        cells = []
        for (column, metric), value in zip(grid.header, values):
            ours = html.escape(value.text().replace("**", ""))
            ours = f"<b>{ours}</b>" if value.best else ours
            row = current_row if (kind == "baseline" and layout.baselines_by == "row") else key
            if kind == "baseline" and layout.baselines_by == "column":
                row = next((r for r in layout.row_keys() if layout.cell(r, column) is not None), key)
            theirs = None if (kind == "run" and key in layout.ours) else paper_cell_text(layout, row, column, metric, baseline)
            if theirs is not None:
                ours += f' <span style="color:#6e7781">| {html.escape(theirs)}</span>'
            cells.append(f'<td style="text-align:right;white-space:nowrap">{ours}</td>')
        style = ' style="border-top:2px solid #999"' if kind == "run" and layout.baselines_by == "row" else ""
        body.append(f"<tr{style}><th style=\"text-align:left;white-space:nowrap\">{name}</th>{''.join(cells)}</tr>")
    title = f"Table {layout.paper}" if layout.paper else layout.key
    caption = (f"{title}: {html.escape(layout.title)} ({profile} profile{', ' + html.escape(source) if source else ''}). "
               "Each cell: ours | the paper's (grey, where the paper has the cell).")
    return (f'<div style="overflow-x:auto"><table class="table beafx-side-by-side" style="font-size:0.8em">'
            f"<caption>{caption}</caption><thead><tr>{head1}</tr><tr>{head2}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


__all__ = [
    "ARM_BASELINES", "CLAIMS", "FAILS", "HOLDS", "INCONCLUSIVE", "NOT_RUN", "VERDICTS", "Arm", "Claim", "ClaimResult",
    "Comparison", "ComparisonResult", "SeedDifference", "arm_values", "evaluate_claim", "evaluate_claims", "evaluate_comparison",
    "findings_html", "findings_rows", "paper_cell_text", "paper_text", "results_profile", "side_by_side_html",
]
