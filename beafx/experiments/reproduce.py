"""Reproducibility check of the grid: rerun a finished declared run from scratch and compare its
metrics with the committed JSON (``beafx experiments --reproduce NAME``).

The rerun trains in a scratch results folder (nothing of the committed run is reused: no
checkpoint, no baseline cache), evaluates on the same fixed test set, and compares every number
of the two records' ``metrics`` (means, intervals, per-example and per-parameter values) plus the
best validation loss and the step count. The report says whether they are bit-identical and, if
not, the largest absolute and relative differences and whether they agree to three significant
digits (relative difference at most :data:`THREE_DIGITS`). It is written to
``results/<profile>/<source-slug>/reproduce/<name>.json``.

A CPU run is a function of its declaration *and of its number of torch threads*: another
thread count sums in another order, and 300 steps of training turn rounding differences into
different weights. The rerun therefore uses the committed run's thread count (from its
``hardware`` record); ``threads`` asks for another count, and the report is then written to
``reproduce/<name>--threads-<n>.json``: a measure of how far two equally valid runs drift apart.
"""
from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import torch

from ..files import write_json_atomic
from ..provenance import git_commit
from .plan import DEFAULT_ROOT, _same_config, make_plan, results_dir

PathLike = Union[str, Path]

#: Relative difference below which two values agree to three significant digits.
THREE_DIGITS = 5e-4
REPORT_FORMAT = "beafx-reproduce-1"
#: What a report records of both runs.
RECORDED = ("commit", "train_commit", "device", "hardware", "cpu_model", "wall_seconds")


def _numbers(a, b, path: str = "") -> Iterator[tuple[str, float, float]]:
    """Pairs of numbers at the same place of two nested records; raises when their shapes differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise ValueError(f"the records differ in their keys at {path or '/'}: {sorted(set(a) ^ set(b))}")
        for key in sorted(a):
            yield from _numbers(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise ValueError(f"the records differ in length at {path}: {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _numbers(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        yield path, float(a), float(b)
    elif a != b:
        raise ValueError(f"the records differ at {path}: {a!r} vs {b!r}")


def compare_records(committed: dict, rerun: dict) -> dict:
    """Compare the metrics, best validation loss and steps of two run records (as written by
    :func:`beafx.experiments.runner.execute_run`). Returns counts and the largest differences."""
    a = {"metrics": committed["metrics"], "best_val_loss": committed.get("best_val_loss"), "steps": committed.get("steps")}
    b = {"metrics": rerun["metrics"], "best_val_loss": rerun.get("best_val_loss"), "steps": rerun.get("steps")}
    n = identical = 0
    max_abs = max_rel = 0.0
    worst = None
    for where, x, y in _numbers(a, b):
        n += 1
        if x == y or (math.isnan(x) and math.isnan(y)):
            identical += 1
            continue
        diff = abs(x - y)
        rel = diff / max(abs(x), abs(y))
        if rel > max_rel:
            worst = where
        max_abs, max_rel = max(max_abs, diff), max(max_rel, rel)
    return {
        "values_compared": n,
        "values_identical": identical,
        "identical": identical == n,
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
        "largest_difference_at": worst,
        "three_significant_digits": max_rel <= THREE_DIGITS,
    }


def threads_of(hardware: Optional[str]) -> Optional[int]:
    """The torch thread count in a run's ``hardware`` record (``"1 x CPU (2 cores, 1 torch
    threads)"`` -> 1), or None when it does not say."""
    match = re.search(r"(\d+) torch threads", hardware or "")
    return int(match.group(1)) if match else None


def _rerun(profile: str, source: str, name: str, committed: dict, committed_path: Path,
           scratch: Optional[PathLike], log: Optional[Callable[[str], None]]) -> dict:
    """Train and evaluate the declared run ``name`` from nothing in a scratch results folder."""
    from .runner import execute_run

    with tempfile.TemporaryDirectory(prefix="beafx-reproduce-") as tmp:
        scratch_root = Path(scratch) if scratch is not None else Path(tmp)
        plan = make_plan(profile, source, root=scratch_root, gpu=True,
                         max_steps=committed.get("config", {}).get("max_steps"))
        match = [r for r in plan.runs if r.name == name]
        if not match:
            raise ValueError(f"{name} is not a declared run of the {profile} plan on {source}")
        run = match[0]
        if not _same_config(committed.get("config") or {}, run.config):
            raise ValueError(f"{committed_path} was made with another configuration than {name}'s declared one; "
                             "rerun it with beafx experiments first")
        if log:
            log(f"reproducing {name} from scratch in {scratch_root} ({torch.get_num_threads()} torch threads)")
        return execute_run(run, root=scratch_root, log=log)


def reproduce_run(profile: str, source: str, name: str, *, root: PathLike = DEFAULT_ROOT,
                  scratch: Optional[PathLike] = None, threads: Optional[int] = None,
                  log: Optional[Callable[[str], None]] = None) -> dict:
    """Rerun the finished declared run ``name`` of ``profile`` on ``source`` from scratch (in
    ``scratch``, default a temporary folder) with ``threads`` torch threads (default: as the
    committed run) and compare it with its committed JSON under ``root``; writes and returns
    the report."""
    root = Path(root)
    committed_path = results_dir(root, profile, source) / f"{name}.json"
    if not committed_path.exists():
        raise ValueError(f"{name} has no result in {committed_path.parent}: only a finished run can be reproduced "
                         f"(see beafx experiments --profile {profile} --dry-run)")
    committed = json.loads(committed_path.read_text())
    committed_threads = threads_of(committed.get("hardware"))
    target = threads or committed_threads or torch.get_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(target)
    try:
        rerun = _rerun(profile, source, name, committed, committed_path, scratch, log)
    finally:
        torch.set_num_threads(before)
    comparison = compare_records(committed, rerun)
    report = {
        "format": REPORT_FORMAT,
        "name": name,
        "profile": profile,
        "source": source,
        "committed": {key: committed.get(key) for key in RECORDED},
        "rerun": {key: rerun.get(key) for key in RECORDED},
        "threads": {"committed": committed_threads, "rerun": threads_of(rerun.get("hardware"))},
        "same_hardware": committed.get("hardware") == rerun.get("hardware"),
        # None: the committed run predates the CPU model record (its machine is unknown)
        "same_cpu_model": (committed["cpu_model"] == rerun.get("cpu_model")) if committed.get("cpu_model") else None,
        "mel": {"committed": committed["metrics"]["mel"]["mean"], "rerun": rerun["metrics"]["mel"]["mean"]},
        **comparison,
    }
    suffix = "" if target == committed_threads else f"--threads-{target}"
    path = results_dir(root, profile, source) / "reproduce" / f"{name}{suffix}.json"
    write_json_atomic(path, report, indent=1)
    if log:
        verdict = ("bit-identical" if report["identical"] else
                   f"differs (largest relative difference {report['max_rel_diff']:.2g} at {report['largest_difference_at']}; "
                   f"{'within' if report['three_significant_digits'] else 'NOT within'} three significant digits)")
        log(f"{name}: {report['values_identical']} of {report['values_compared']} values identical: {verdict}; "
            f"Mel {report['mel']['committed']:.6g} committed, {report['mel']['rerun']:.6g} rerun; committed on "
            f"{committed.get('cpu_model') or 'an unrecorded CPU'}, rerun on {rerun.get('cpu_model')} "
            f"({report['threads']['rerun']} torch threads); report in {path}")
    return report


def load_reports(root: PathLike, profile: str, source: str) -> list[dict]:
    """The reproducibility reports of ``profile`` on ``source`` (sorted by run name)."""
    folder = results_dir(root, profile, source) / "reproduce"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _spread(value: Optional[float]) -> str:
    return "one seed only" if value is None else f"{value:.2g}"


def _machine(report: dict) -> str:
    same = report.get("same_cpu_model")
    return "yes" if same else "no" if same is False else "not recorded"


_SEED = re.compile(r"-s(\d+)$")


def seed_spread_mel(root: PathLike, profile: str, source: str, name: str) -> Optional[float]:
    """The largest difference of test-set mean Mel between run ``name`` (``...-sN``) and its
    other seeds whose JSON exists, or ``None`` when no other seed has run: the yardstick for a
    rerun's drift (two seeds are two equally valid runs too)."""
    match = _SEED.search(name)
    folder = results_dir(root, profile, source)
    path = folder / f"{name}.json"
    if match is None or not path.exists():
        return None
    mine = json.loads(path.read_text())["metrics"]["mel"]["mean"]
    stem = name[:match.start()]
    others = [json.loads(p.read_text())["metrics"]["mel"]["mean"]
              for p in sorted(folder.glob(f"{stem}-s*.json"))
              if p != path and _SEED.sub("", p.stem) == stem]
    return max((abs(mine - other) for other in others), default=None)


def reports_markdown(reports: list[dict], spreads: Optional[dict[str, Optional[float]]] = None) -> str:
    """A Markdown table of reproducibility reports: run, CPU (same model or not), torch threads
    (committed, rerun), Mel committed and rerun, values identical, verdict; with ``spreads``
    (run name -> :func:`seed_spread_mel`) also the rerun's Mel drift beside the seeds' spread."""
    spread_cols = spreads is not None
    lines = ["| run | same CPU model | torch threads (committed, rerun) | Mel (committed) | Mel (rerun) "
             + ("| Mel drift (rerun − committed) | Mel spread over seeds " if spread_cols else "")
             + "| values identical | verdict |", "|---|---|---|---|---|" + ("---|---|" if spread_cols else "") + "---|---|"]
    for r in reports:
        verdict = ("bit-identical" if r["identical"] else
                   "agrees to three significant digits" if r["three_significant_digits"] else
                   f"differs (largest relative difference {r['max_rel_diff']:.2g})")
        threads = r.get("threads") or {}
        lines.append(f"| `{r['name']}` | {_machine(r)} | {threads.get('committed', '?')}, {threads.get('rerun', '?')} | "
                     f"{r['mel']['committed']:.6g} | {r['mel']['rerun']:.6g} | "
                     + (f"{r['mel']['rerun'] - r['mel']['committed']:+.2g} | {_spread(spreads.get(r['name']))} | "
                        if spread_cols else "")
                     + f"{r['values_identical']} of {r['values_compared']} | {verdict} |")
    return "\n".join(lines)
