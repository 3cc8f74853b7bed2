"""Tables 2-5 rendered from the result JSON alone (and the layout declared in code).

:func:`load_results` reads every JSON of ``results/<profile>/<source-slug>/``;
:func:`table_grid` puts the numbers of one :class:`~beafx.experiments.layout.TableLayout` in
a grid (mean over seeds, half range over seeds, best trained value per column and metric);
:func:`render_table` / :func:`render_tables` write it as Markdown. Nothing here trains or
evaluates, so a table rebuilt from the committed JSON is the table the runner wrote
(``results/<profile>/<source-slug>/tables.md``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from .layout import BASELINE_ROWS, TABLES, TableLayout
from .plan import DEFAULT_ROOT, results_dir

PathLike = Union[str, Path]
#: Labels of the metrics and baselines in the rendered tables.
METRIC_LABELS = {"mse_y": "MSE_y", "mel": "Mel", "mse_q": "MSE_q", "mrstft": "MR-STFT", "mse_q_identifiable": "MSE_q (identifiable)"}
BASELINE_LABELS = {"random": "random q̂", "xy": "(x, y)", "mean_q": "q̂ = 0.5", "oracle": "oracle (true q)",
                   "best_constant": "best constant"}


@dataclass
class Results:
    """The JSON of one profile and source: runs by name, baselines by ``(synthesis, analysis,
    authors_time_constant_bug)`` and ``best_constant`` summaries by that key plus the loss."""

    runs: dict[str, dict] = field(default_factory=dict)
    baselines: dict[tuple, dict] = field(default_factory=dict)
    best_constant: dict[tuple, dict] = field(default_factory=dict)


def _load(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_results(root: PathLike = DEFAULT_ROOT, profile: str = "cpu", source: str = "synthetic") -> Results:
    """Every result JSON of ``profile`` on ``source`` under ``root``."""
    folder = results_dir(root, profile, source)
    out = Results()
    for path in sorted(folder.glob("*.json")):
        record = _load(path)
        if record and record.get("format") == RUN_FORMAT:
            out.runs[record["name"]] = record
    for path in sorted((folder / "baselines").glob("*.json")):
        record = _load(path)
        if record and record.get("format") == BASELINES_FORMAT:
            out.baselines[(record["synthesis"], record["analysis"], record.get("authors_time_constant_bug", False))] = record["baselines"]
    for path in sorted((folder / "best_constant").glob("*.json")):
        record = _load(path)
        if record and record.get("format") == BEST_CONSTANT_FORMAT:
            key = (record["synthesis"], record["analysis"], record.get("authors_time_constant_bug", False), record["loss"])
            out.best_constant[key] = record["metrics"]
    return out


RUN_FORMAT = "beafx-experiment-run/1"
BASELINES_FORMAT = "beafx-experiment-baselines/1"
BEST_CONSTANT_FORMAT = "beafx-experiment-best-constant/1"


@dataclass
class Value:
    """One number of a table: ``mean`` over the seeds found (None: missing or undefined),
    ``spread`` half the range over seeds (None for one seed), ``found``/``declared`` seeds,
    ``best``: lowest trained value of its column and metric."""

    mean: Optional[float] = None
    spread: Optional[float] = None
    found: int = 0
    declared: int = 0
    best: bool = False
    undefined: bool = False

    def text(self) -> str:
        if self.undefined:
            return "n/a"
        if self.mean is None:
            return "–"
        out = f"{self.mean:.3g}"
        if self.spread is not None:
            out += f" ± {self.spread:.2g}"
        if self.found < self.declared:
            out += f" ({self.found}/{self.declared} seeds)"
        return f"**{out}**" if self.best else out


@dataclass
class Grid:
    """A rendered table: ``header`` ``(column key, metric)`` pairs, ``rows`` ``(key, label,
    kind, values)`` with kind ``run`` or ``baseline``."""

    layout: TableLayout
    header: list[tuple[str, str]]
    rows: list[tuple[str, str, str, list[Value]]]


def _metric(summary: Optional[dict], metric: str) -> tuple[Optional[float], bool]:
    """(mean, undefined) of ``metric`` in an evaluation summary."""
    if summary is None:
        return None, True
    value = summary.get(metric)
    if value is None:
        return None, True
    return float(value["mean"]), False


def _run_value(layout: TableLayout, row: str, column: str, metric: str, results: Results, profile: str) -> Optional[Value]:
    cell = layout.cell(row, column)
    if cell is None:
        return None
    means, undefined = [], False
    for spec in cell.runs:
        record = results.runs.get(spec.name(profile))
        if record is None:
            continue
        mean, undef = _metric(record.get("metrics"), metric)
        undefined = undefined or undef
        if mean is not None:
            means.append(mean)
    if undefined and not means:
        return Value(undefined=True, declared=len(cell.runs))
    if not means:
        return Value(declared=len(cell.runs))
    spread = (max(means) - min(means)) / 2 if len(means) > 1 else None
    return Value(sum(means) / len(means), spread, len(means), len(cell.runs))


def _baseline_value(layout: TableLayout, row: str, column: str, metric: str, name: str, results: Results) -> Value:
    cell = layout.cell(row, column)
    if cell is None:
        return Value()
    key = (cell.synthesis, cell.analysis, cell.runs[0].authors_time_constant_bug)
    if name == "best_constant":
        summary = results.best_constant.get(key + (cell.loss,))
        if summary is None:
            return Value()
    else:
        base = results.baselines.get(key)
        if base is None:
            return Value()
        summary = base.get(name)
    mean, undefined = _metric(summary, metric)
    return Value(mean, undefined=undefined and mean is None)


def _column_cell_row(layout: TableLayout, column: str) -> Optional[str]:
    """A row with a declared cell in ``column`` (baselines depend on the column only)."""
    for row in layout.row_keys():
        if layout.cell(row, column) is not None:
            return row
    return None


def table_grid(layout: TableLayout, results: Results, profile: str) -> Grid:
    """The numbers of ``layout`` from ``results``; the best trained value per column and metric
    (over the rows with a value) is marked."""
    header = [(c, m) for c in layout.column_keys() for m in layout.metrics]
    rows: list[tuple[str, str, str, list[Value]]] = []
    labels = dict(layout.rows)

    def run_row(row: str) -> list[Value]:
        return [_run_value(layout, row, c, m, results, profile) or Value() for c, m in header]

    def baseline_row(row_of, name: str) -> list[Value]:
        out = []
        for c, m in header:
            r = row_of(c)
            out.append(Value() if r is None else _baseline_value(layout, r, c, m, name, results))
        return out

    run_rows = []
    for row in layout.row_keys():
        values = run_row(row)
        run_rows.append(len(rows))
        rows.append((row, labels[row], "run", values))
        if layout.baselines_by == "row":
            for name in BASELINE_ROWS:
                rows.append((f"{row}/{name}", f"  {BASELINE_LABELS[name]}", "baseline", baseline_row(lambda c, r=row: r, name)))
    if layout.baselines_by == "column":
        for name in BASELINE_ROWS:
            rows.append((name, BASELINE_LABELS[name], "baseline", baseline_row(lambda c: _column_cell_row(layout, c), name)))
    if layout.baselines_by == "column":  # best per column and metric over the trained rows
        for j in range(len(header)):
            found = [(rows[i][3][j].mean, i) for i in run_rows if rows[i][3][j].mean is not None]
            if len(found) > 1:
                best = min(found)[0]
                for mean, i in found:
                    rows[i][3][j].best = mean == best
    else:  # Table 5: the better training loss per row and metric
        for i in run_rows:
            for metric in layout.metrics:
                js = [j for j, (_, m) in enumerate(header) if m == metric and rows[i][3][j].mean is not None]
                if len(js) > 1:
                    best = min(rows[i][3][j].mean for j in js)
                    for j in js:
                        rows[i][3][j].best = rows[i][3][j].mean == best
    return Grid(layout, header, rows)


def profile_labels(profile: str) -> dict[str, str]:
    """Row labels that depend on the profile (MEE at reduced width is "MEE-s")."""
    from ..profiles import get_profile

    width = get_profile(profile).mee_width
    return {"mee": "MEE-s" if width < 1 else "MEE"}


def render_table(layout: TableLayout, results: Results, profile: str, source: str = "") -> str:
    """One table as Markdown (a title line, the table, a note)."""
    grid = table_grid(layout, results, profile)
    columns = dict(layout.columns)
    extra = profile_labels(profile)
    head = ["", *[f"{columns[c]}{' *' if c in layout.ours else ''}: {METRIC_LABELS.get(m, m)}" for c, m in grid.header]]
    lines = [
        f"### {'Table ' + str(layout.paper) if layout.paper else layout.key}: {layout.title}"
        + (f" ({profile} profile, {source})" if source else f" ({profile} profile)"),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" + "---:|" * len(grid.header),
    ]
    for key, label, kind, values in grid.rows:
        label = extra.get(key, label) + (" *" if key in layout.ours else "")
        if kind == "baseline":
            label = f"_{label.strip()}_" if layout.baselines_by == "column" else f"↳ _{label.strip()}_"
        lines.append("| " + " | ".join([label, *(v.text() for v in values)]) + " |")
    lines += [
        "",
        "Mean over the test set (every run on the same test examples); `± x`: half the range over seeds; "
        "bold: the lowest trained value of its column (Table 5: of its row, between the two losses); `–`: not run yet; `n/a`: undefined; `*`: not in the paper.",
        "",
    ]
    return "\n".join(lines)


def render_tables(results: Results, profile: str, source: str = "") -> str:
    """Every table of :data:`TABLES` as one Markdown document."""
    parts = [f"# Tables 2-5 regenerated ({profile} profile{', ' + source if source else ''})",
             "", "Rendered by `beafx.experiments.render_tables` from the result JSON in this folder.", ""]
    for layout in TABLES.values():
        parts.append(render_table(layout, results, profile, source))
    return "\n".join(parts)
