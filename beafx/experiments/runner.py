"""The runner behind ``beafx experiments``: runs what is missing, resumes what was interrupted,
writes one JSON per finished run, and renders the tables from the JSON.

Per declared run whose JSON is missing (or stale): train into ``results/<profile>/runs/
<source-slug>/<name>/`` with ``resume=True`` (a fresh folder starts, an interrupted one
continues from its last checkpoint, a finished one, i.e. holding ``result.json``, is not
trained again), evaluate its best checkpoint on the fixed test set of seed :data:`EVAL_SEED`
(every run of a table on the same examples) with the baselines cached under
``results/<profile>/baselines/``, and write ``results/<profile>/<source-slug>/<name>.json``.
A run that fails is reported and the next one starts. Runs whose cells are GPU-only are
skipped on a machine without a GPU (``cpu`` profile).

Several GPUs: one child process per GPU (``CUDA_VISIBLE_DEVICES``), each running one run at a
time (``beafx experiments ... --run NAME``); the parent hands the next run to the first free
GPU. Baselines are computed by the parent first, so children only read them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch

from ..effects.proxy import proxy_weights_digest
from ..files import write_json_atomic, write_text_atomic
from ..provenance import git_commit
from ..training.config import RunConfig, profile_hash
from .costs import costs_path, default_note, load_costs, plan_cost
from .layout import BEST_CONSTANT_LR, BEST_CONSTANT_MAX_STEPS, BUDGET_HOURS
from .plan import (
    BLOCKED, DEFAULT_ROOT, DONE, EVAL_SEED, GPU_ONLY, STALE, TODO, BaselineJob, Plan, PlannedRun,
    baseline_cache_dir, make_plan, plan_sources, results_dir,
)
from .tables import BASELINES_FORMAT, BEST_CONSTANT_FORMAT, RUN_FORMAT, load_results, render_tables

PathLike = Union[str, Path]
Log = Callable[[str], None]


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _eval_config(config: RunConfig) -> RunConfig:
    return replace(config, seed=EVAL_SEED)


# ------------------------------------------------------------------------------------ one run


def _check_run_dir(run: PlannedRun) -> None:
    """A run folder made with another profile (or config) cannot be resumed: say so."""
    stored_path = run.run_dir / "config.json"
    if not stored_path.exists():
        return
    try:
        stored = json.loads(stored_path.read_text())
    except ValueError:
        raise ValueError(f"{stored_path} is damaged; delete {run.run_dir} to start the run again") from None
    mine = profile_hash(run.config.resolved_profile())
    try:  # from_dict fills the fields added since the folder was made with their defaults
        same_config = RunConfig.from_dict(stored.get("config") or {}) == run.config
    except (TypeError, ValueError):
        same_config = False
    if stored.get("profile_hash") != mine:
        what = f"another profile (profile hash {stored.get('profile_hash')}, now {mine})"
    elif not same_config:
        given = run.config.to_dict()
        diff = {k: (stored.get("config", {}).get(k), v) for k, v in given.items() if stored.get("config", {}).get(k) != v}
        what = f"another configuration (stored, declared: {diff})"
    else:
        return
    raise ValueError(f"{run.run_dir} holds a run of {what}; delete that folder to start {run.name} again")


def execute_run(run: PlannedRun, *, root: PathLike = DEFAULT_ROOT, log: Optional[Log] = None,
                progress: bool = False, num_workers: Optional[int] = None) -> dict:
    """Train (or resume) and evaluate ``run``; write and return its JSON record."""
    from .. import __version__
    from ..evaluation import evaluate
    from ..training import load_model, train

    if run.config is None:
        raise ValueError(f"{run.name} is blocked: {run.blocked}")
    _check_run_dir(run)
    result_path = run.run_dir / "result.json"
    if result_path.exists() and not (run.run_dir / "best.ckpt").exists():
        # finished elsewhere: its checkpoints were not committed. Training is deterministic
        # (a rerun gives bit-identical weights), so train it again; keep the old record aside.
        if log:
            log(f"{run.name}: result.json without best.ckpt (checkpoints are never committed): training it again")
        result_path.replace(run.run_dir / "result_without_checkpoint.json")
    if not result_path.exists():
        if log:
            log(f"training {run.name} -> {run.run_dir}")
        train(run.config, run.run_dir, resume=True, progress=progress, num_workers=num_workers)
    trained = json.loads(result_path.read_text())
    stored = json.loads((run.run_dir / "config.json").read_text())
    model = load_model(run.run_dir)
    model.network.to(_device())
    if log:
        log(f"evaluating {run.name}")
    t0 = time.perf_counter()
    evaluation = evaluate(model, config=_eval_config(run.config), cache_dir=baseline_cache_dir(root, run.profile),
                          checkpoint=trained.get("best_checkpoint"))
    eval_s = time.perf_counter() - t0
    profile = run.config.resolved_profile()
    train_s = float(trained.get("wall_seconds_total", trained.get("wall_seconds", 0.0)))
    record = {
        "format": RUN_FORMAT,
        "name": run.name,
        "cells": sorted(run.cells),
        "spec": asdict(run.spec),
        "config": run.config.to_dict(),
        "config_hash": run.config.hash(),
        "profile": run.profile,
        "profile_hash": profile_hash(profile),
        "proxy_weights": proxy_weights_digest(run.config.analysis),
        "profile_settings": asdict(profile),
        "source": run.source,
        "seed": run.config.seed,
        "eval_seed": EVAL_SEED,
        "device": trained.get("device"),
        "hardware": trained.get("hardware"),
        "cpu_model": trained.get("cpu_model"),
        "gpu_only": run.gpu_only,
        "steps": trained.get("global_step"),
        "total_steps": trained.get("total_steps"),
        "stopped_early": trained.get("stopped_early"),
        "best_val_loss": trained.get("best_val_loss"),
        "attempts": trained.get("attempts"),
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "wall_seconds": train_s + eval_s,
        "commit": git_commit(),
        "train_commit": stored.get("commit"),
        "beafx_version": __version__,
        "metrics": evaluation["model"],
        "baselines": evaluation["baselines"],
        "comparison": evaluation["comparison"],
        "evaluation": evaluation["run"],
    }
    write_json_atomic(run.json_path, record, indent=1)
    if log:
        mel = (record["metrics"] or {}).get("mel") or {}
        log(f"wrote {run.json_path} (Mel {mel.get('mean', float('nan')):.4g}, {record['steps']} steps, "
            f"{record['wall_seconds'] / 60:.1f} min)")
    return record


# ------------------------------------------------------------------------------------ baselines


def execute_baselines(job: BaselineJob, *, root: PathLike = DEFAULT_ROOT, log: Optional[Log] = None) -> dict:
    """The four evaluation baselines of ``job`` (cached in ``results/<profile>/baselines/``),
    written as ``results/<profile>/<slug>/baselines/<synth>--<anal>.json``."""
    from ..evaluation import evaluate

    if job.config is None:
        raise ValueError(f"{job.label} is blocked: {job.blocked}")
    if log:
        log(f"computing {job.label}")
    t0 = time.perf_counter()
    result = evaluate(None, config=job.config, baselines=True, cache_dir=baseline_cache_dir(root, job.profile))
    record = {
        "format": BASELINES_FORMAT,
        "synthesis": job.synthesis,
        "analysis": job.analysis,
        "authors_time_constant_bug": job.authors_time_constant_bug,
        "profile": job.profile,
        "profile_hash": profile_hash(job.config.resolved_profile()),
        "proxy_weights": proxy_weights_digest(job.analysis),
        "source": job.source,
        "eval_seed": EVAL_SEED,
        "commit": git_commit(),
        "seconds": time.perf_counter() - t0,
        "baselines": result["baselines"],
        "evaluation": result["run"],
    }
    write_json_atomic(job.json_path, record, indent=1)
    return record


class ConstantModel:
    """A bias-only estimator: ``q_hat = sigmoid(logits)`` for every input (duck-types the part
    of :class:`beafx.training.TrainedModel` that :func:`beafx.evaluation.evaluate` uses)."""

    def __init__(self, logits: torch.Tensor, config: RunConfig) -> None:
        self.logits = logits.detach().float().cpu()
        self.config = config
        self.metadata = {"path": "best_constant"}

    def q(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    @torch.no_grad()
    def predict(self, y: torch.Tensor) -> torch.Tensor:
        return self.q().expand(y.shape[0], -1).clone()


#: Where :func:`train_constant` starts: q_hat = 0.5, unless the loss's gradient is exactly zero
#: there (Taylor and Chebyshev clippers: q_hat = 0.5 gives all-zero coefficients, a silent output,
#: and the Mel loss is flat at silence), in which case it starts next to it: logits drawn from
#: N(0, START_SPREAD^2), seeded (Adam's steps do not depend on the gradient's scale, so a small
#: offset is enough to leave the flat point).
START_HALF = "q_hat = 0.5"
START_RANDOM = "near q_hat = 0.5 (seeded random logits): the gradient at q_hat = 0.5 is exactly zero"
START_SPREAD = 0.1


def train_constant(config: RunConfig, *, log: Optional[Log] = None,
                   num_workers: Optional[int] = 0) -> tuple[torch.Tensor, int, float, str]:
    """Train the bias of :class:`ConstantModel` with ``config``'s loss on its training stream:
    ``(logits (C,), steps, seconds, start)`` where ``start`` is :data:`START_HALF` or
    :data:`START_RANDOM`. The analysis chain is in train mode (the hybrid runs its proxy), as
    in a run."""
    from ..losses import training_loss
    from ..training.run import AnalysisData

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    data = AnalysisData(config, num_workers=num_workers)
    steps = min(data.total_steps, BEST_CONSTANT_MAX_STEPS)
    analysis = config.analysis_chain().train()  # with the authors' simplified-compressor switch when set
    for p in analysis.parameters():
        p.requires_grad_(False)
    logits = torch.zeros(analysis.num_params, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=BEST_CONSTANT_LR)
    loader = data.train_loader(start_step=0, rank=0, world_size=1)
    done, start = 0, START_HALF
    for x, y, q in loader:
        if done >= steps:
            break
        q_hat = torch.sigmoid(logits).expand(x.shape[0], -1)
        y_hat = analysis(x, q_hat) if config.loss == "mel" else None
        loss = training_loss(config.loss, y_hat=y_hat, y=y, q_hat=q_hat, q=q)
        opt.zero_grad()
        loss.backward()
        if done == 0 and torch.isfinite(loss) and not bool(logits.grad.any()):
            # a flat start (a stationary point, not a minimum): Adam would never leave it
            with torch.no_grad():
                logits.copy_(START_SPREAD * torch.randn(logits.shape, generator=torch.Generator().manual_seed(config.seed)))
            opt = torch.optim.Adam([logits], lr=BEST_CONSTANT_LR)
            start = START_RANDOM
        else:
            opt.step()
        done += 1
    if log:
        log(f"  best_constant: {done} steps from {start}, loss {float(loss.detach()):.4g}")
    return logits.detach(), done, time.perf_counter() - t0, start


def execute_best_constant(job: BaselineJob, *, root: PathLike = DEFAULT_ROOT, log: Optional[Log] = None) -> dict:
    """``best_constant`` of ``job``: train the bias, evaluate it like a model, write its JSON."""
    from ..evaluation import evaluate

    if job.config is None:
        raise ValueError(f"{job.label} is blocked: {job.blocked}")
    if log:
        log(f"computing {job.label}")
    logits, steps, train_s, start = train_constant(job.config, log=log)
    model = ConstantModel(logits, job.config)
    t0 = time.perf_counter()
    result = evaluate(model, config=job.config, baselines=False)
    record = {
        "format": BEST_CONSTANT_FORMAT,
        "synthesis": job.synthesis,
        "analysis": job.analysis,
        "authors_time_constant_bug": job.authors_time_constant_bug,
        "loss": job.loss,
        "profile": job.profile,
        "profile_hash": profile_hash(job.config.resolved_profile()),
        "proxy_weights": proxy_weights_digest(job.analysis),
        "source": job.source,
        "eval_seed": EVAL_SEED,
        "commit": git_commit(),
        "steps": steps,
        "lr": BEST_CONSTANT_LR,
        "start": start,
        "q_hat": [float(v) for v in model.q()],
        "train_seconds": train_s,
        "eval_seconds": time.perf_counter() - t0,
        "metrics": result["model"],
        "evaluation": result["run"],
    }
    write_json_atomic(job.json_path, record, indent=1)
    return record


# ------------------------------------------------------------------------------------ dry run


def _minutes(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


def spent_seconds(root: PathLike, profile: str, source: str) -> float:
    """Wall time recorded in the JSON of ``profile`` on ``source``: runs (training over all
    attempts + evaluation), baselines and best_constant (the budget of issue 10 sums these)."""
    folder = results_dir(root, profile, source)
    total = 0.0
    for path in [*folder.glob("*.json"), *folder.glob("baselines/*.json"), *folder.glob("best_constant/*.json")]:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("format") == RUN_FORMAT:
            total += float(record.get("wall_seconds") or 0.0)
        elif record.get("format") == BASELINES_FORMAT:
            total += float(record.get("seconds") or 0.0)
        elif record.get("format") == BEST_CONSTANT_FORMAT:
            total += float(record.get("train_seconds") or 0.0) + float(record.get("eval_seconds") or 0.0)
    return total


def format_dry_run(plan: Plan, costs: Optional[dict], *, root: PathLike = DEFAULT_ROOT) -> str:
    """What :func:`run_experiments` would do for ``plan``, with estimated costs."""
    counts = {s: sum(r.status == s for r in plan.runs) for s in (DONE, TODO, STALE, GPU_ONLY, BLOCKED)}
    head = (f"profile {plan.profile}, source {plan.source} -> {results_dir(root, plan.profile, plan.source)}: "
            f"{len(plan.runs)} declared runs: {counts[DONE]} done, {counts[TODO] + counts[STALE]} to do"
            + (f" ({counts[STALE]} stale)" if counts[STALE] else "")
            + f", {counts[GPU_ONLY]} GPU-only skipped, {counts[BLOCKED]} blocked; "
            f"{len(plan.baselines_todo())} of {len(plan.baselines)} baseline jobs to do")
    lines = [head, f"spent so far: {_minutes(spent_seconds(root, plan.profile, plan.source))} (wall time summed over the JSON)"]
    todo, base_todo = plan.todo(), plan.baselines_todo()
    if not todo and not base_todo:
        lines.append("nothing to do")
    else:
        cost = plan_cost(plan, costs)
        if costs is None:
            lines.append(f"costs: {costs_path(root, plan.profile)} is missing; estimated from plan_steps x "
                         f"{default_note(plan.profile)}")
        else:
            lines.append(f"costs: from {costs_path(root, plan.profile)} ({costs.get('machine', 'machine unknown')})")
        width = max(len(r.name) for r in todo) if todo else 0
        if todo:
            lines.append("to run:")
            for r in todo:
                seconds, how = cost["runs"][r.name]
                stale = " [stale: rerun]" if r.status == STALE else ""
                lines.append(f"  {r.name.ljust(width)}  {_minutes(seconds):>9}  {', '.join(r.cells)} ({how}){stale}")
        if base_todo:
            lines.append("baselines to compute:")
            for b in base_todo:
                lines.append(f"  {b.label}  {_minutes(cost['baselines'][b.label])}")
        lines.append(f"estimated total: {_minutes(cost['total'])} (an upper bound: early stopping ends runs sooner)")
    skipped = [r for r in plan.runs if r.status == GPU_ONLY]
    if skipped:
        lines.append("skipped, GPU only (no GPU here):")
        lines += [f"  {r.name}  {', '.join(r.cells)}" for r in skipped]
    blocked = [r for r in plan.runs if r.status == BLOCKED] + [b for b in plan.baselines if b.status == BLOCKED]
    if blocked:
        lines.append("blocked (not expressible yet):")
        for item in blocked:
            label = item.name if isinstance(item, PlannedRun) else item.label
            lines.append(f"  {label}: {item.blocked}")
    return "\n".join(lines)


def budget_line(profile: str, plans: Sequence[Plan], costs: Optional[dict], *, root: PathLike = DEFAULT_ROOT) -> str:
    """Spent (every source of ``profile``'s committed plan) plus the estimate of ``plans``
    against :data:`~beafx.experiments.layout.BUDGET_HOURS`."""
    budget = BUDGET_HOURS[profile] * 3600
    spent = sum(spent_seconds(root, profile, spec) for spec, _ in plan_sources(profile, None))
    estimate = sum(plan_cost(plan, costs)["total"] for plan in plans)
    total = spent + estimate
    verdict = ("fits" if total <= budget else f"EXCEEDS it by {_minutes(total - budget)}")
    return (f"budget ({profile}): {_minutes(budget)}; spent {_minutes(spent)} + estimated {_minutes(estimate)} "
            f"= {_minutes(total)}: {verdict}")


# ------------------------------------------------------------------------------------ the runner


def _child_command(plan: Plan, name: str, max_steps: Optional[int]) -> list[str]:
    cmd = [sys.executable, "-m", "beafx.cli", "experiments", "--profile", plan.profile, "--source", plan.source,
           "--results", str(plan.root), "--run", name]
    if max_steps is not None:
        cmd += ["--max-steps", str(max_steps)]
    return cmd


def _run_on_gpus(plan: Plan, runs: Sequence[PlannedRun], gpus: int, max_steps: Optional[int], log: Log) -> list[tuple[str, str]]:
    """One child process per GPU, the next run to the first free GPU; returns failures."""
    pending = list(runs)
    active: dict[int, tuple[subprocess.Popen, PlannedRun]] = {}
    failures = []
    while pending or active:
        for gpu in range(gpus):
            if gpu not in active and pending:
                run = pending.pop(0)
                env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(gpu))
                log(f"GPU {gpu}: {run.name}")
                active[gpu] = (subprocess.Popen(_child_command(plan, run.name, max_steps), env=env), run)
        time.sleep(2)
        for gpu, (proc, run) in list(active.items()):
            if proc.poll() is not None:
                del active[gpu]
                if proc.returncode != 0:
                    failures.append((run.name, f"exit code {proc.returncode}"))
    return failures


def write_tables(plan: Plan) -> Path:
    """Render every table from the JSON of ``plan``'s profile and source into ``tables.md``."""
    path = results_dir(plan.root, plan.profile, plan.source) / "tables.md"
    write_text_atomic(path, render_tables(load_results(plan.root, plan.profile, plan.source), plan.profile, plan.source))
    return path


def run_experiments(
    profile: str,
    *,
    source: Optional[str] = None,
    only: Optional[Sequence[str]] = None,
    dry_run: bool = False,
    root: PathLike = DEFAULT_ROOT,
    max_steps: Optional[int] = None,
    gpus: Optional[int] = None,
    progress: bool = False,
    log: Log = print,
) -> int:
    """Run (or, with ``dry_run``, list) what ``profile``'s plan lacks on ``source`` (default:
    every source of the committed plan). Returns the exit code: 0, or 1 when a run failed."""
    root = Path(root)
    plans = [make_plan(profile, spec, entry, only=only, root=root, max_steps=max_steps)
             for spec, entry in plan_sources(profile, source)]
    costs = load_costs(root, profile)
    if dry_run:
        for plan in plans:
            log(format_dry_run(plan, costs, root=root))
        if profile in BUDGET_HOURS:
            log(budget_line(profile, plans, costs, root=root))
        return 0
    gpus = torch.cuda.device_count() if gpus is None else gpus
    failures: list[tuple[str, str]] = []
    for plan in plans:
        for job in plan.baselines_todo():
            try:
                (execute_baselines if job.loss is None else execute_best_constant)(job, root=root, log=log)
            except Exception as err:  # noqa: BLE001 -- a failed job must not stop the grid
                failures.append((job.label, f"{type(err).__name__}: {err}"))
                log(f"FAILED {job.label}: {type(err).__name__}: {err}")
        todo = plan.todo()
        if gpus > 1 and len(todo) > 1:
            failures += _run_on_gpus(plan, todo, gpus, max_steps, log)
        else:
            for run in todo:
                try:
                    execute_run(run, root=root, log=log, progress=progress)
                except KeyboardInterrupt:
                    raise
                except Exception as err:  # noqa: BLE001
                    failures.append((run.name, f"{type(err).__name__}: {err}"))
                    log(f"FAILED {run.name}: {type(err).__name__}: {err}")
                    log("".join(traceback.format_exception(err)[-3:]).rstrip())
        path = write_tables(plan)
        skipped = [r.name for r in plan.runs if r.status in (GPU_ONLY, BLOCKED)]
        log(f"{plan.source}: {len(todo)} run(s) attempted, tables in {path}"
            + (f"; {len(skipped)} skipped (GPU-only or blocked: see --dry-run)" if skipped else ""))
    if failures:
        log(f"{len(failures)} failed: " + "; ".join(f"{n} ({e})" for n, e in failures))
        return 1
    return 0


def run_one(profile: str, source: str, name: str, *, root: PathLike = DEFAULT_ROOT, max_steps: Optional[int] = None,
            log: Log = print) -> int:
    """Run the declared run ``name`` alone (a child process of the multi-GPU runner)."""
    plan = make_plan(profile, source, root=root, max_steps=max_steps, gpu=True)
    match = [r for r in plan.runs if r.name == name]
    if not match:
        raise ValueError(f"{name} is not a declared run of the {profile} plan on {source}")
    if match[0].status == DONE:
        log(f"{name}: done already")
        return 0
    execute_run(match[0], root=root, log=log)
    return 0
