"""The book's access to the experiments: load what exists, compute what fits the build.

The policy of DESIGN.md ("The book"): a chapter that shows results calls :func:`book_results`,
which reads ``results/<profile>/<source-slug>/`` for the active profile (``$BEAFX_PROFILE``,
default ``cpu``). When runs of the profile's plan are missing it runs them only if they fit a
book build (the ``smoke`` profile: minutes); for ``cpu`` and ``paper`` it returns what exists
and names the missing runs with the command that makes them (``make book-regenerate`` runs
``beafx experiments`` for the profile, then builds the book).

The execution cache of the book is keyed by the chapters' code, not by the results they read;
``book/_tools/results_cache.py`` (run by ``make book``) clears the cached chapters whose results
changed.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from ..profiles import get_profile
from .layout import PLANS
from .plan import BLOCKED, GPU_ONLY, make_plan, plan_sources
from .tables import Results, load_results

PathLike = Union[str, Path]
#: Profiles whose missing runs a book build computes (they take minutes on a 2-core CPU).
COMPUTED_IN_BUILD = ("smoke",)


def default_results_root() -> Path:
    """``$BEAFX_RESULTS``, else the first existing ``results`` folder of the working directory
    or its parent (chapters run in ``book/``), else ``./results``."""
    env = os.environ.get("BEAFX_RESULTS")
    if env:
        return Path(env)
    for candidate in (Path("results"), Path("..") / "results"):
        if candidate.is_dir():
            return candidate
    return Path("results")


@dataclass
class BookResults:
    """What a chapter shows: ``results`` of ``profile`` on ``source``; ``missing`` names the
    declared runs without a current result (GPU-only and blocked ones in ``skipped``);
    ``computed`` says whether this call ran anything; ``command`` makes what is missing."""

    profile: str
    source: str
    root: Path
    results: Results
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    computed: bool = False

    @property
    def command(self) -> str:
        return f"beafx experiments --profile {self.profile} --source {self.source}"

    def status_markdown(self) -> str:
        """One paragraph for the page: complete, or what is missing and how to make it."""
        done = len(self.results.runs)
        text = f"Profile `{self.profile}`, source `{self.source}`: {done} finished run(s) read from `{self.root}`."
        if self.computed:
            text += " The missing runs of this profile were computed during this build."
        if self.missing:
            shown = ", ".join(f"`{m}`" for m in self.missing[:8]) + (" ..." if len(self.missing) > 8 else "")
            text += (f" {len(self.missing)} declared run(s) have no result yet ({shown}); `{self.command}` makes"
                     " them (or `make book-regenerate`, which then rebuilds the book); their cells show `–`.")
        if self.skipped:
            text += f" {len(self.skipped)} GPU-only or blocked run(s) are skipped on this machine."
        return text


def _status(profile: str, source: str, root: Path) -> tuple[list[str], list[str]]:
    missing, skipped = [], []
    for spec, entry in plan_sources(profile, source):
        plan = make_plan(profile, spec, entry, root=root)
        missing += [r.name for r in plan.todo()]
        missing += [f"baselines: {b.label}" for b in plan.baselines_todo()]
        skipped += [r.name for r in plan.runs if r.status in (GPU_ONLY, BLOCKED)]
    return missing, skipped


def book_results(source: str = "synthetic", *, profile: Optional[str] = None, root: Optional[PathLike] = None,
                 compute: Optional[bool] = None) -> BookResults:
    """The results a chapter shows for ``source`` under ``profile`` (default ``$BEAFX_PROFILE``
    or ``cpu``). ``compute`` (default: only for the ``smoke`` profile, on a source of its
    committed plan) runs the missing runs
    and baselines first, quietly (their log is kept in ``<results>/<profile>/book_build.log``)."""
    profile = get_profile(profile, env=False).name
    root = default_results_root() if root is None else Path(root)
    if compute is None:  # only the profile's own plan, and only where it fits a build
        planned = {entry.source for entry in PLANS.get(profile, ())}
        compute = profile in COMPUTED_IN_BUILD and source in planned
    missing, skipped = _status(profile, source, root)
    computed = False
    if missing and compute:
        from .runner import run_experiments

        log_path = root / profile / "book_build.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        with contextlib.redirect_stderr(buffer):
            code = run_experiments(profile, source=source, root=root, log=lambda line: buffer.write(f"{line}\n"))
        log_path.write_text(buffer.getvalue())
        if code != 0:
            raise RuntimeError(f"the {profile} experiments failed while building the book; see {log_path}")
        computed = True
        missing, skipped = _status(profile, source, root)
    return BookResults(profile, source, root, load_results(root, profile, source), missing, skipped, computed)
