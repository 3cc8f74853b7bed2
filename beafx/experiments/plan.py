"""The plan: which declared runs and baselines a profile runs on a source, where their results
live, and which are done (book chapter "Reproducing the paper's experiments"; issue 10).

Results layout (``results/README.md``)::

    results/<profile>/<source-slug>/<run-name>.json                 one finished run (training + evaluation)
    results/<profile>/<source-slug>/baselines/<synth>--<anal>.json   random, xy, mean_q, oracle
    results/<profile>/<source-slug>/best_constant/<synth>--<anal>--<loss>.json
    results/<profile>/<source-slug>/tables.md                       the tables rendered from the JSON
    results/<profile>/runs/<source-slug>/<run-name>/                 the run folder (checkpoints not in git)
    results/<profile>/baselines/                                    evaluate_baselines' cache
    results/<profile>/costs.json                                    estimated cost per "encoder|chain"

A run is *done* when its JSON exists and records the declared config (source path aside) and
the profile's hash; a JSON with another config or profile hash is *stale* and runs again.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Sequence, Union

from ..data.sources import parse_source
from ..effects.proxy import proxy_weights_digest
from ..profiles import PROFILES
from ..training.config import RunConfig, profile_hash
from .layout import GPU_ONLY_PROFILES, PLANS, TABLES, PlanEntry, RunSpec

PathLike = Union[str, Path]
#: Default results folder (relative to the working directory).
DEFAULT_ROOT = Path("results")
#: The seed of every evaluation: all runs of a table are scored on the same test examples
#: (paired comparisons), whatever seed they were trained with.
EVAL_SEED = 0

# statuses
DONE, TODO, STALE, GPU_ONLY, BLOCKED = "done", "todo", "stale", "gpu-only", "blocked"


def source_slug(spec: str) -> str:
    """Folder name of a source: ``synthetic``, ``debian-music``, ``musdb`` (any MUSDB18 path),
    ``folder-<name of the folder>``."""
    kind, arg = parse_source(spec)
    if kind == "folder":
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(arg).expanduser().name or "root").strip("_") or "root"
        return f"folder-{name}"
    return kind


def chain_slug(chain: str, authors_time_constant_bug: bool = False) -> str:
    return chain.replace("+", "_") + ("-authorstc" if authors_time_constant_bug else "")


def _blocked_reason(err: Exception) -> str:
    return str(err).split(";")[0].strip()


def make_config(spec: RunSpec, profile: str, source: str, *, max_steps: Optional[int] = None) -> RunConfig:
    """The :class:`RunConfig` of ``spec``; ``ValueError`` when RunConfig cannot express it."""
    kwargs = dict(
        synthesis=spec.synthesis, analysis=spec.analysis, encoder=spec.encoder, loss=spec.loss, profile=profile,
        source=source, seed=spec.seed, max_steps=max_steps, authors_channel_bug=spec.authors_channel_bug,
    )
    if spec.authors_time_constant_bug:
        if "authors_time_constant_bug" not in {f.name for f in fields(RunConfig)}:
            raise ValueError("RunConfig has no field authors_time_constant_bug (SimpleCompressor's published switch)")
        kwargs["authors_time_constant_bug"] = True
    return RunConfig(**kwargs)


def _same_config(stored: dict, config: RunConfig) -> bool:
    mine = config.to_dict()
    return {k: v for k, v in stored.items() if k != "source"} == {k: v for k, v in mine.items() if k != "source"}


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class PlannedRun:
    """A declared run on one source: where it goes and whether it is done. ``cells``:
    ``"table/row/column"`` ids declaring it; ``config`` is None when ``blocked`` says why."""

    spec: RunSpec
    name: str
    profile: str
    source: str
    cells: list[str]
    gpu_only: bool
    config: Optional[RunConfig]
    blocked: Optional[str]
    json_path: Path
    run_dir: Path
    status: str = TODO


@dataclass
class BaselineJob:
    """Baselines of one (synthesis, analysis) pair on one source; ``loss`` is None for the
    evaluation baselines (``random``, ``xy``, ``mean_q``, ``oracle``) and the training loss for
    ``best_constant``."""

    synthesis: str
    analysis: str
    authors_time_constant_bug: bool
    loss: Optional[str]
    profile: str
    source: str
    config: Optional[RunConfig]
    blocked: Optional[str]
    json_path: Path
    status: str = TODO

    @property
    def kind(self) -> str:
        return "baselines" if self.loss is None else "best_constant"

    @property
    def label(self) -> str:
        extra = " (authors' time constant)" if self.authors_time_constant_bug else ""
        what = "baselines" if self.loss is None else f"best_constant ({self.loss})"
        return f"{what} {self.synthesis} -> {self.analysis}{extra}"


@dataclass
class Plan:
    """Everything one profile declares on one source."""

    profile: str
    source: str
    slug: str
    root: Path
    runs: list[PlannedRun]
    baselines: list[BaselineJob]

    def todo(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.status in (TODO, STALE)]

    def baselines_todo(self) -> list[BaselineJob]:
        return [b for b in self.baselines if b.status in (TODO, STALE)]


def results_dir(root: PathLike, profile: str, source: str) -> Path:
    return Path(root) / profile / source_slug(source)


def baseline_cache_dir(root: PathLike, profile: str) -> Path:
    """``evaluate_baselines``' cache folder of a profile."""
    return Path(root) / profile / "baselines"


def plan_sources(profile: str, source: Optional[str]) -> list[tuple[str, PlanEntry]]:
    """``(source spec, plan entry)`` pairs: every source of the committed plan, or ``source``
    alone (a source outside the plan gets every cell of every table)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    entries = PLANS.get(profile, ())
    if source is None:
        out = []
        for entry in entries:
            if entry.source in ("musdb", "folder"):
                raise ValueError(
                    f"the {profile} profile's plan runs on {entry.source}:PATH; pass --source {entry.source}:PATH"
                )
            out.append((entry.source, entry))
        if not out:
            raise ValueError(f"the {profile} profile has no committed plan; pass --source")
        return out
    kind, _ = parse_source(source)
    for entry in entries:
        if entry.source == source or entry.source == kind:
            return [(source, entry)]
    return [(source, PlanEntry(source, baselines=tuple(TABLES)))]


def _cell_selected(entry: PlanEntry, table: str, row: str, column: str) -> bool:
    if entry.cells is None:
        return True
    return any(t == table and r in ("*", row) and c in ("*", column) for t, r, c in entry.cells)


def _matches(tokens: Sequence[str], cell_ids: Sequence[str], name: str) -> bool:
    for token in tokens:
        for cid in cell_ids:
            if fnmatch.fnmatchcase(cid, token) or fnmatch.fnmatchcase(cid, token + "/*") or fnmatch.fnmatchcase(cid, token + "/*/*"):
                return True
        if fnmatch.fnmatchcase(name, token):
            return True
    return False


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def make_plan(
    profile: str,
    source: str,
    entry: Optional[PlanEntry] = None,
    *,
    only: Optional[Sequence[str]] = None,
    root: PathLike = DEFAULT_ROOT,
    max_steps: Optional[int] = None,
    gpu: Optional[bool] = None,
) -> Plan:
    """The plan of ``profile`` on ``source`` with statuses read from ``root``. ``entry``: the
    plan entry (default: the committed one, or every cell for a source outside the plan);
    ``only``: tokens selecting cells (``table3``, ``table3/tfe``, ``table5/chain/mel``, globs)
    or run names (globs), or ``baselines`` for the baseline jobs alone; ``gpu``: whether a GPU
    is present (default: ask torch)."""
    parse_source(source)
    if entry is None:
        entry = plan_sources(profile, source)[0][1]
    root = Path(root)
    gpu = _has_gpu() if gpu is None else gpu
    tokens = [t for t in (only or []) if t]
    want_runs = not tokens or any(t != "baselines" for t in tokens)
    run_tokens = [t for t in tokens if t != "baselines"]
    out_dir = results_dir(root, profile, source)
    slug = source_slug(source)

    by_name: dict[str, PlannedRun] = {}
    gpu_flags: dict[str, list[bool]] = {}
    pairs: dict[tuple[str, str, bool], set[str]] = {}  # (synth, anal, tc bug) -> losses
    for table in TABLES.values():
        for cell in table.cells:
            cid = f"{table.key}/{cell.row}/{cell.column}"
            if table.key in entry.baselines:
                pairs.setdefault((cell.synthesis, cell.analysis, cell.runs[0].authors_time_constant_bug), set()).add(cell.loss)
            if not _cell_selected(entry, table.key, cell.row, cell.column):
                continue
            for spec in cell.runs:
                if entry.seeds is not None and spec.seed not in entry.seeds:
                    continue
                name = spec.name(profile)
                if not want_runs or (run_tokens and not _matches(run_tokens, [cid], name)):
                    continue
                pairs.setdefault((spec.synthesis, spec.analysis, spec.authors_time_constant_bug), set()).add(spec.loss)
                if name not in by_name:
                    try:
                        config, blocked = make_config(spec, profile, source, max_steps=max_steps), None
                    except ValueError as err:
                        config, blocked = None, _blocked_reason(err)
                    by_name[name] = PlannedRun(
                        spec, name, profile, source, [], False, config, blocked,
                        out_dir / f"{name}.json", root / profile / "runs" / slug / name,
                    )
                by_name[name].cells.append(cid)
                gpu_flags.setdefault(name, []).append(cell.gpu_only)
    if tokens and not by_name and "baselines" not in tokens:
        raise ValueError(f"--only {' '.join(tokens)} selects nothing in the {profile} plan on {source}")
    runs = list(by_name.values())
    for run in runs:
        run.gpu_only = all(gpu_flags[run.name])
        run.status = _run_status(run, gpu)
    if tokens and "baselines" not in tokens:  # only the pairs of the selected runs
        pairs = {}
        for run in runs:
            pairs.setdefault((run.spec.synthesis, run.spec.analysis, run.spec.authors_time_constant_bug), set()).add(run.spec.loss)
    jobs = []
    for (synthesis, analysis, tc_bug), losses in sorted(pairs.items()):
        for loss in [None, *sorted(losses)]:
            jobs.append(_baseline_job(synthesis, analysis, tc_bug, loss, profile, source, out_dir, max_steps))
    return Plan(profile, source, slug, root, runs, jobs)


def _run_status(run: PlannedRun, gpu: bool) -> str:
    if run.blocked:
        return BLOCKED
    record = _read_json(run.json_path) if run.json_path.exists() else None
    if record is not None:
        same = (_same_config(record.get("config", {}), run.config)
                and record.get("profile_hash") == profile_hash(run.config.resolved_profile())
                and record.get("proxy_weights") == proxy_weights_digest(run.config.analysis))
        return DONE if same else STALE
    if run.gpu_only and run.profile in GPU_ONLY_PROFILES and not gpu:
        return GPU_ONLY
    return TODO


def _baseline_job(synthesis: str, analysis: str, tc_bug: bool, loss: Optional[str], profile: str, source: str,
                  out_dir: Path, max_steps: Optional[int]) -> BaselineJob:
    spec = RunSpec(synthesis, analysis, "tfe", loss or "mel", EVAL_SEED, authors_time_constant_bug=tc_bug)
    try:
        config, blocked = make_config(spec, profile, source, max_steps=max_steps), None
    except ValueError as err:
        config, blocked = None, _blocked_reason(err)
    stem = f"{chain_slug(synthesis)}--{chain_slug(analysis, tc_bug)}"
    path = out_dir / ("baselines" if loss is None else "best_constant") / (stem + ("" if loss is None else f"--{loss}") + ".json")
    job = BaselineJob(synthesis, analysis, tc_bug, loss, profile, source, config, blocked, path)
    if blocked:
        job.status = BLOCKED
    elif path.exists():
        record = _read_json(path) or {}
        same = (record.get("profile_hash") == profile_hash(config.resolved_profile())
                and record.get("proxy_weights") == proxy_weights_digest(analysis))
        job.status = DONE if same else STALE
    return job
