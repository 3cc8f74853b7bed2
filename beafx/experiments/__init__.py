"""The paper's experiments: Tables 2-5 as declared run grids, a cached and resumable runner,
and the tables rendered from the result JSON (book chapter "Reproducing the paper's
experiments"; issue 10; ``results/README.md`` documents the results layout).

- :mod:`.layout`: :data:`TABLES` (rows, columns, metrics, every cell as :class:`RunSpec`) and
  :data:`PLANS` (what each profile runs on which source);
- :mod:`.plan`: :func:`make_plan` (declared runs and baseline jobs with their status);
- :mod:`.costs`: estimated cost for the dry run;
- :mod:`.runner`: :func:`run_experiments` (``beafx experiments``);
- :mod:`.tables`: :func:`load_results`, :func:`render_table`, :func:`render_tables`;
- :mod:`.findings`: the paper's claims judged from the JSON (paired intervals, verdicts);
- :mod:`.book`: :func:`book_results` (what a chapter shows: load, or compute what fits the build).
"""
from __future__ import annotations

from .book import BookResults, book_results
from .layout import PLANS, TABLES, Cell, PlanEntry, RunSpec, TableLayout
from .plan import EVAL_SEED, Plan, PlannedRun, make_plan, plan_sources, source_slug
from .tables import Results, load_results, render_table, render_tables, table_grid

__all__ = [
    "EVAL_SEED", "PLANS", "BookResults", "book_results", "TABLES", "Cell", "Plan", "PlanEntry", "PlannedRun", "Results", "RunSpec", "TableLayout",
    "load_results", "make_plan", "plan_sources", "render_table", "render_tables", "run_experiments", "source_slug",
    "table_grid",
]


def __getattr__(name: str):
    if name == "run_experiments":
        from .runner import run_experiments

        return run_experiments
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
