"""``beafx experiments``: the paper's Tables 2-5 as run grids (:mod:`beafx.experiments`).

Runs every declared run of the profile's plan whose result JSON is missing, resumes
interrupted ones, computes the baselines once, and renders the tables from the JSON;
``--dry-run`` lists what it would do with its estimated cost, or says "nothing to do".
"""
from __future__ import annotations

import argparse
import sys

from .data.sources import SPEC_FORMS
from .profiles import PROFILES, env_max_steps
from .training.cli import _positive

COMMAND = "experiments"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``experiments`` subcommand to ``beafx``'s subparsers."""
    p = subparsers.add_parser(
        COMMAND,
        help="run the paper's Tables 2-5 (what is missing; resumes interrupted runs), or list it with --dry-run",
        description="Train and evaluate every declared run of the profile's plan (beafx.experiments.layout) whose "
        "result JSON is missing under RESULTS/<profile>/<source>/, resume interrupted runs, compute the baselines "
        "once, and render the tables (tables.md) from the JSON. See results/README.md.",
    )
    p.add_argument("--profile", choices=list(PROFILES), help="run size (default: $BEAFX_PROFILE or cpu)")
    p.add_argument("--source", help=f"one data source ({', '.join(SPEC_FORMS)}); default: every source of the "
                   "profile's committed plan (a source outside it gets every cell)")
    p.add_argument("--only", nargs="+", metavar="SEL", help="cells (table3, table3/tfe, table5/chain/mel, globs), "
                   "run names (globs), or 'baselines'")
    p.add_argument("--dry-run", action="store_true", help="print what would run and its estimated cost, run nothing")
    p.add_argument("--results", default="results", metavar="DIR", help="results folder (default: ./results)")
    p.add_argument("--max-steps", type=_positive, help="cap every run's steps (recorded in each config; or $BEAFX_MAX_STEPS)")
    p.add_argument("--progress", action="store_true", help="progress bars while training")
    p.add_argument("--reproduce", nargs="+", metavar="NAME", help="rerun these finished runs from scratch (in a "
                   "temporary folder) and compare their metrics with the committed JSON; report in "
                   "RESULTS/<profile>/<source>/reproduce/NAME.json; exit 1 unless bit-identical")
    p.add_argument("--threads", type=_positive, help="with --reproduce: torch threads of the rerun (default: as the "
                   "committed run; another count is reported as NAME--threads-N.json)")
    p.add_argument("--run", help=argparse.SUPPRESS)  # one declared run (children of the multi-GPU runner)
    p.set_defaults(func=run)
    return p


def _log(message: str) -> None:
    print(message, flush=True)


def _reproduce(profile: str, args: argparse.Namespace, log) -> int:
    from pathlib import Path

    from .experiments.plan import plan_sources, results_dir
    from .experiments.reproduce import reproduce_run

    if args.only or args.dry_run or args.max_steps is not None:
        raise ValueError("--reproduce takes neither --only, --dry-run nor --max-steps (a run is rerun as it was made)")
    sources = [spec for spec, _ in plan_sources(profile, args.source)]
    code = 0
    for name in args.reproduce:
        found = [s for s in sources if (results_dir(Path(args.results), profile, s) / f"{name}.json").exists()]
        if not found:
            raise ValueError(f"no finished run {name} of the {profile} profile in {args.results} "
                             f"(sources: {', '.join(sources)})")
        report = reproduce_run(profile, found[0], name, root=args.results, threads=args.threads, log=log)
        code = code or (0 if report["identical"] else 1)
    return code


def run(args: argparse.Namespace) -> int:
    import os

    from .experiments.runner import run_experiments, run_one

    profile = args.profile or os.environ.get("BEAFX_PROFILE", "cpu")
    max_steps = args.max_steps if args.max_steps is not None else env_max_steps()
    only = [t for item in (args.only or []) for t in item.split(",") if t.strip()]
    if args.reproduce:
        return _reproduce(profile, args, log=_log)
    if args.threads is not None:
        raise ValueError("--threads goes with --reproduce (a grid run uses torch's threads: set OMP_NUM_THREADS)")
    if args.run:
        if not args.source:
            raise ValueError("--run needs --source")
        return run_one(profile, args.source, args.run, root=args.results, max_steps=max_steps, log=_log)
    return run_experiments(profile, source=args.source, only=only or None, dry_run=args.dry_run, root=args.results,
                           max_steps=max_steps, progress=args.progress, log=_log)


if __name__ == "__main__":  # pragma: no cover
    from .cli import main

    sys.exit(main([COMMAND, *sys.argv[1:]]))
