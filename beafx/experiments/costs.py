"""Estimated cost of the planned runs, for ``beafx experiments --dry-run``.

``results/<profile>/costs.json`` is written by :func:`beafx.bench.training.run_costs`
(``beafx bench costs``): ``runs["<encoder>|<analysis chain>"]`` with ``step_s``, ``run_s``,
``eval_s``, ``steps`` and ``measured_run_s`` (a whole run actually timed), and ``parts_s``
(seconds per batch of the encoder, of each chain and of the Mel loss, forward+backward). In
order of preference a run costs: its measured run; the sum of its parts (any chain made of
measured effects; a parameter-loss step is the encoder alone, validation runs everything); its
entry's ``run_s`` + ``eval_s``. Without the file, or for a chain it lacks, a run costs ``total
steps x a default step time`` (:data:`DEFAULT_STEP_SECONDS` on CPU,
:data:`PAPER_P100_STEP_SECONDS` for the ``paper`` profile), the steps from
:func:`beafx.training.run.plan_steps`. All are upper bounds: early stopping ends runs sooner.

An evaluation is the test batches at a forward each for the model and one for the baselines
(a forward taken as a third of a forward+backward step).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from ..training.config import RunConfig
from .layout import BEST_CONSTANT_MAX_STEPS
from .plan import BaselineJob, Plan, PlannedRun

#: Seconds per optimiser step of a batch of 16 x 3 s clips (the ``cpu`` profile) with the
#: Mel loss and a single effect, measured with :func:`beafx.bench.training.step_parts` on one
#: torch thread of this project's 2-core machine (2026-11; MEE at quarter width). Scaled
#: linearly by batch size x clip length for other profiles: a CPU figure, not a GPU one.
DEFAULT_STEP_SECONDS = {"mee": 5.9, "te": 3.0, "tfe": 5.5}
DEFAULT_STEP_EXAMPLE_SECONDS = 16 * 3.0
#: The authors' one surviving training log (AUTHORS_CODE.md section 8: PEQ + TFE + parameter
#: loss on a P100): training time, epochs, mean time per epoch, steps per epoch. Quoted, not ours.
AUTHORS_P100_LOG = {"gpu": "P100", "hours": 15.43, "epochs": 363, "seconds_per_epoch": 153.04, "steps_per_epoch": 30}
#: The ``paper`` profile's default: seconds per step on the authors' P100, validation and data
#: included (AUTHORS_CODE.md section 8: TFE, 153 s per epoch of 30 steps and 70 validation
#: examples). TE shares TFE's CQT front end; MEE has no published figure and is assumed twice
#: TFE (its forward has ~3.6x TFE's multiply-adds). Estimates, not measurements.
PAPER_P100_STEP_SECONDS = {"mee": 10.2, "te": 5.1, "tfe": 5.1}
#: Chains missing from a costs file are looked up as these (training the hybrid runs the proxy).
EQUIVALENT_CHAINS = {"np_compressor": "hybrid_compressor"}
#: Train/test track counts assumed when a source cannot be opened for the dry run (MUSDB18).
FALLBACK_TRACKS = {"train": 86, "valid": 14, "test": 50}


def costs_path(root: Union[str, Path], profile: str) -> Path:
    return Path(root) / profile / "costs.json"


def load_costs(root: Union[str, Path], profile: str) -> Optional[dict]:
    """The profile's costs file, or None when it is missing or unreadable."""
    path = costs_path(root, profile)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data.get("runs"), dict) else None


@lru_cache(maxsize=64)
def _counts(source: str, synthesis: str, profile: str, max_steps: Optional[int]) -> tuple[int, int, int, bool]:
    """(training examples per epoch, validation examples, test examples, True when counted
    from the source rather than assumed)."""
    from ..data import EffectDataset
    from ..profiles import get_profile

    prof = get_profile(profile, max_steps=max_steps)
    try:
        train = len(EffectDataset(source, "train", synthesis, profile=prof))
        valid = len(EffectDataset(source, "valid", synthesis, profile=prof))
        test = len(EffectDataset(source, "test", synthesis, profile=prof, repeats=prof.test_repeats))
        return train, valid, test, True
    except (FileNotFoundError, ValueError, ImportError, OSError):
        def cap(n: int, limit: Optional[int]) -> int:
            return n if limit is None else min(n, limit)

        return (FALLBACK_TRACKS["train"] * prof.repeats_per_track,
                cap(FALLBACK_TRACKS["valid"], prof.val_max_tracks) * prof.val_repeats,
                cap(FALLBACK_TRACKS["test"], prof.test_max_tracks) * prof.test_repeats, False)


def default_step_seconds(encoder: str, config: RunConfig) -> float:
    """The default seconds per step (:data:`PAPER_P100_STEP_SECONDS` for the ``paper``
    profile, validation included; else :data:`DEFAULT_STEP_SECONDS` scaled)."""
    profile = config.resolved_profile()
    if config.profile == "paper":
        return PAPER_P100_STEP_SECONDS[encoder]
    return DEFAULT_STEP_SECONDS[encoder] * profile.batch_size * profile.clip_seconds / DEFAULT_STEP_EXAMPLE_SECONDS


def default_note(profile: str) -> str:
    """How the default step time was obtained (for the dry run)."""
    if profile == "paper":
        return ("a P100 step time from the authors' log (" + ", ".join(f"{k} {v:g} s" for k, v in PAPER_P100_STEP_SECONDS.items())
                + " per step with validation; beafx.experiments.costs.PAPER_P100_STEP_SECONDS)")
    return ("a CPU step time (" + ", ".join(f"{k} {v:g} s" for k, v in DEFAULT_STEP_SECONDS.items())
            + " per batch of 16 x 3 s on one thread of this 2-core machine, scaled by batch x clip length; "
            "beafx.experiments.costs.DEFAULT_STEP_SECONDS)")


def _chain_seconds(chain_parts: dict, analysis: str) -> Optional[float]:
    """A chain's forward+backward from ``parts_s["chain"]``: its own entry, else the sum of its
    effects' entries (with :data:`EQUIVALENT_CHAINS`), else None."""
    if analysis in chain_parts:
        return float(chain_parts[analysis])
    total = 0.0
    for name in analysis.split("+"):
        name = name if name in chain_parts else EQUIVALENT_CHAINS.get(name, name)
        if name not in chain_parts:
            return None
        total += float(chain_parts[name])
    return total


def _from_costs(config: RunConfig, costs: dict, total: int, every: int, valid: int, test: int) -> Optional[tuple[float, str]]:
    """``(seconds, how)`` from a costs file, or None when it has nothing for this run."""
    batch = config.resolved_profile().batch_size
    runs = costs.get("runs", {})
    swapped = "+".join(EQUIVALENT_CHAINS.get(p, p) for p in config.analysis.split("+"))
    entry = next((runs[k] for k in (f"{config.encoder}|{config.analysis}", f"{config.encoder}|{swapped}") if k in runs), None)
    parts = costs.get("parts_s") or {}
    enc_s = (parts.get("encoder") or {}).get(config.encoder)
    chain_s = _chain_seconds(parts.get("chain") or {}, config.analysis) if parts else None
    full = enc_s + chain_s + float(parts.get("mel_loss", 0.0)) if enc_s is not None and chain_s is not None else None
    if entry is not None and entry.get("measured_run_s"):
        scale = total / float(entry.get("steps") or total)
        step = full if full is not None else float(entry["step_s"])
        return float(entry["measured_run_s"]) * scale + eval_cost(step, test, batch), "measured run (costs.json)"
    if full is not None:  # a parameter-loss step runs the encoder only; validation runs everything
        step = full if config.loss == "mel" else enc_s
        train_s = total * step + (total // every) * math.ceil(valid / batch) * full / 3
        train_s *= float(costs.get("calibration", 1.0))  # parts -> whole runs, from a run actually timed
        return train_s + eval_cost(full, test, batch), "costs.json parts"
    if entry is not None:
        scale = total / float(entry.get("steps") or total)
        step = float(entry["step_s"])
        eval_s = entry.get("eval_s")
        eval_s = float(eval_s) if eval_s is not None else eval_cost(step, test, batch)
        return float(entry["run_s"]) * scale + eval_s, "costs.json"
    return None


def run_cost(run: PlannedRun, costs: Optional[dict]) -> tuple[float, str]:
    """``(seconds, how)``: the estimated wall time of training and evaluating ``run``."""
    from ..training.run import plan_steps

    config = run.config
    profile = config.resolved_profile()
    train_examples, valid_examples, test_examples, counted = _counts(run.source, config.synthesis, config.profile, config.max_steps)
    total, every = plan_steps(config, train_examples)
    found = _from_costs(config, costs, total, every, valid_examples, test_examples) if costs is not None else None
    if found is not None:
        seconds, how = found
    else:
        step = default_step_seconds(config.encoder, config)
        validations = 0 if config.profile == "paper" else total // every  # the P100 figure includes them
        val_batches = math.ceil(valid_examples / profile.batch_size)
        seconds = total * step + validations * val_batches * step / 3
        seconds += eval_cost(step, test_examples, profile.batch_size)
        how = "default step time" + ("" if costs is None else " (chain not in costs.json)")
    if not counted:
        how += ", assumed track counts"
    return seconds, how


def eval_cost(step_s: float, test_examples: int, batch_size: int) -> float:
    """An evaluation: per test batch a forward for the model and one for the baselines, a
    forward taken as a third of a step."""
    return 2 * math.ceil(test_examples / batch_size) * step_s / 3


def baseline_cost(job: BaselineJob, costs: Optional[dict]) -> float:
    """The four baselines: about one forward per test batch (no network); ``best_constant``:
    its steps at about half a step each (no encoder) plus an evaluation."""
    from ..training.run import plan_steps

    config = job.config
    batch = config.resolved_profile().batch_size
    train_examples, _, test_examples, _ = _counts(job.source, config.synthesis, config.profile, config.max_steps)
    step = default_step_seconds("te", config)  # the cheapest encoder: roughly the chain and the loss
    if job.loss is None:
        return eval_cost(step, test_examples, batch) / 2
    total, _ = plan_steps(config, train_examples)
    return min(total, BEST_CONSTANT_MAX_STEPS) * step / 2 + eval_cost(step, test_examples, batch)


def plan_cost(plan: Plan, costs: Optional[dict]) -> dict:
    """``{"runs": {name: (seconds, how)}, "baselines": {label: seconds}, "total": seconds}``
    for what is left to do."""
    runs = {r.name: run_cost(r, costs) for r in plan.todo()}
    base = {b.label: baseline_cost(b, costs) for b in plan.baselines_todo()}
    return {"runs": runs, "baselines": base, "total": sum(s for s, _ in runs.values()) + sum(base.values())}
