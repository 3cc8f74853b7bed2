""":func:`train`: the one training function (book chapter "Training the analysis network",
``book/10_training``). A chapter calls it, ``beafx train`` wraps it; the same code runs on a
laptop CPU, in Jupyter or Colab (one device, no relaunch), on one GPU and, with ``devices > 1``,
on several (DDP; gloo on CPU).

A run folder holds::

    RUN_DIR/config.json            the RunConfig, profile, hash, commit, package version
    RUN_DIR/best.ckpt              the best validation checkpoint (load with load_model)
    RUN_DIR/checkpoints/last.ckpt  written after every validation: --resume continues from it
    RUN_DIR/logs/attempt_N/metrics.csv   CSV logs, one folder per attempt (resumes add one)
    RUN_DIR/result.json            written when the run ends

Resuming replays exactly the batches the interrupted run would have seen (see
:mod:`beafx.training.data`): on the same machine it reaches the same metrics.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from torch.utils.data import DataLoader, TensorDataset

from ..files import write_json_atomic
from ..provenance import cpu_model, git_commit
from ..data import EffectDataset, default_num_workers, open_source, worker_init_fn
from .config import RunConfig, profile_hash
from .data import StepSampler, TrainStream

PathLike = Union[str, Path]


@dataclass
class TrainResult:
    """What a run produced. ``best_val_loss`` is None when no validation ran."""

    run_dir: str
    best_checkpoint: Optional[str]
    best_val_loss: Optional[float]
    global_step: int
    total_steps: int
    stopped_early: bool
    wall_seconds: float
    device: str
    attempts: int


def plan_steps(config: RunConfig, train_examples: int) -> tuple[int, int]:
    """``(total optimiser steps, steps between validations)`` for ``config`` with
    ``train_examples`` examples per data epoch. Profiles with ``max_steps`` train that many
    steps; the paper's profile trains ``max_epochs`` data epochs and validates after each."""
    profile = config.resolved_profile()
    steps_per_epoch = math.ceil(train_examples / profile.batch_size)
    if profile.max_steps is not None:
        total = profile.max_steps
    else:
        total = profile.max_epochs * steps_per_epoch
    every = profile.val_every_steps or steps_per_epoch
    return total, max(1, min(every, total))


class _StepLoader(DataLoader):
    """A DataLoader over :class:`TrainStream` that Lightning treats as resumable: its position
    is the run's global step, restored by :meth:`AnalysisModule.on_load_checkpoint`."""

    def state_dict(self) -> dict:
        return {"start_step": self.sampler.start_step}

    def load_state_dict(self, state: dict) -> None:  # the module's resume_step decides
        pass


class AnalysisData:
    """Loaders of a run: the training stream, and the fixed validation set held in memory."""

    def __init__(self, config: RunConfig, *, num_workers: Optional[int] = None) -> None:
        self.config = config
        self.profile = config.resolved_profile()
        source = open_source(config.source, seed=0)
        self.train_set = EffectDataset(source, "train", config.synthesis, profile=self.profile, seed=config.seed)
        self.valid_set = EffectDataset(source, "valid", config.synthesis, profile=self.profile, seed=config.seed)
        self.num_workers = default_num_workers() if num_workers is None else int(num_workers)
        self.total_steps, self.val_every = plan_steps(config, len(self.train_set))
        self._valid_tensors: Optional[TensorDataset] = None

    def train_loader(self, *, start_step: int, rank: int, world_size: int) -> DataLoader:
        sampler = StepSampler(self.profile.batch_size, self.total_steps, rank=rank, world_size=world_size)
        sampler.start_step = int(start_step)
        stream = TrainStream(self.train_set, self.total_steps * self.profile.batch_size)
        return _StepLoader(
            stream,
            batch_size=sampler.per_rank,
            sampler=sampler,
            num_workers=self.num_workers,
            worker_init_fn=worker_init_fn if self.num_workers > 0 else None,
            persistent_workers=False,
        )

    def valid_loader(self) -> DataLoader:
        """The fixed validation set, rendered once and kept in memory."""
        if self._valid_tensors is None:
            loader = DataLoader(
                self.valid_set,
                batch_size=self.profile.batch_size,
                num_workers=self.num_workers,
                worker_init_fn=worker_init_fn if self.num_workers > 0 else None,
            )
            parts = list(zip(*[batch for batch in loader]))
            self._valid_tensors = TensorDataset(*(torch.cat(p) for p in parts))
        return DataLoader(self._valid_tensors, batch_size=self.profile.batch_size, shuffle=False)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"


def default_progress() -> bool:
    """Progress bars in a terminal and in a notebook; none when ``BEAFX_PROGRESS=0`` (the
    book's build sets it) or when stderr is neither a terminal nor a notebook."""
    env = os.environ.get("BEAFX_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return _in_notebook() or sys.stderr.isatty()


@contextlib.contextmanager
def quiet_lightning(quiet: bool):
    """Silence Lightning's info lines and advisory warnings (the book's build fails on stderr).
    The run folder holds config.json beside best.ckpt by design: that warning is always off."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        # Lightning 2.6's own use of a torch pytree API that torch >= 2.10 deprecates: not ours to fix
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        if not quiet:
            yield
            return
        with _quiet(quiet):
            yield


@contextlib.contextmanager
def _quiet(quiet: bool):
    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            from lightning.fabric.utilities.warnings import PossibleUserWarning

            warnings.simplefilter("ignore", PossibleUserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _launched_rank() -> int:
    """The rank of this process when Lightning's DDP launcher started it (0 otherwise)."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0")) + int(os.environ.get("NODE_RANK", "0")) * 1000
    except ValueError:
        return 0


def _prepare_run_dir(config: RunConfig, run_dir: Path, resume: bool) -> tuple[Optional[Path], int]:
    """Check or create ``run_dir``; return (checkpoint to resume from or None, attempt number).
    The processes that Lightning's DDP launcher starts for ranks > 0 find the folder rank 0 has
    just prepared: they skip the checks."""
    config_path = run_dir / "config.json"
    last = run_dir / "checkpoints" / "last.ckpt"
    if _launched_rank() > 0:
        return (last if resume and last.exists() else None), 0
    if config_path.exists():
        try:
            stored = json.loads(config_path.read_text())["config"]
        except (ValueError, KeyError) as err:
            raise ValueError(f"{config_path} is damaged ({err}); use another --out folder") from None
        if not resume:
            raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out folder")
        try:
            same = RunConfig.from_dict(stored) == config
        except (TypeError, ValueError):
            same = False
        if not same:
            diff = {k: (stored.get(k), v) for k, v in config.to_dict().items() if stored.get(k) != v}
            raise ValueError(f"--resume with a different configuration than the run in {run_dir}: {diff} (stored, given)")
    elif resume and run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(f"{run_dir} is not a beafx run folder (no config.json); cannot --resume it")
    attempts = sorted((run_dir / "logs").glob("attempt_*")) if (run_dir / "logs").exists() else []
    return (last if last.exists() else None), len(attempts)


def train(
    config: RunConfig,
    out_dir: PathLike,
    *,
    resume: bool = False,
    devices: Union[int, str] = 1,
    accelerator: str = "auto",
    progress: Optional[bool] = None,
    num_workers: Optional[int] = None,
    callbacks: Optional[list] = None,
) -> TrainResult:
    """Train the analysis network of ``config`` into ``out_dir`` (see the module docstring).

    ``resume``: continue the run in ``out_dir`` from its last checkpoint (same config
    required). ``devices``/``accelerator``: as Lightning's Trainer (``devices > 1`` uses DDP;
    the profile's batch is split over the devices, so the run is the same run).
    ``progress``: progress bars (default: :func:`default_progress`). ``callbacks``: extra
    Lightning callbacks (tests use them to interrupt a run)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from .module import AnalysisModule

    if not isinstance(config, RunConfig):
        raise ValueError(f"config must be a RunConfig, got {type(config).__name__}")
    run_dir = Path(out_dir).expanduser()
    resume_from, attempt = _prepare_run_dir(config, run_dir, resume)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the run folder {run_dir}: {err.strerror or err}") from None
    progress = default_progress() if progress is None else bool(progress)
    profile = config.resolved_profile()
    from .. import __version__

    if _launched_rank() == 0 and not (run_dir / "config.json").exists():
        write_json_atomic(
            run_dir / "config.json",
            {
                "config": config.to_dict(),
                "profile": asdict(profile),
                "profile_hash": profile_hash(profile),
                "config_hash": config.hash(),
                "commit": git_commit(),
                "beafx_version": __version__,
            },
        )

    t0 = time.perf_counter()
    with quiet_lightning(not progress):
        pl.seed_everything(config.seed, workers=True, verbose=False)
        data = AnalysisData(config, num_workers=num_workers)
        module = AnalysisModule(config.to_dict())
        best_cb = ModelCheckpoint(
            dirpath=run_dir, filename="best", monitor="val_loss", mode="min", save_top_k=1,
            save_on_train_epoch_end=False, enable_version_counter=False, auto_insert_metric_name=False,
        )
        last_cb = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
            save_on_train_epoch_end=False, enable_version_counter=False,
        )
        stop_cb = EarlyStopping(
            monitor="val_loss", mode="min", patience=profile.early_stop_patience, check_on_train_epoch_end=False
        )
        logger = CSVLogger(save_dir=str(run_dir), name="logs", version=f"attempt_{attempt}")
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            max_epochs=1,
            max_steps=data.total_steps,
            val_check_interval=data.val_every,
            check_val_every_n_epoch=None,
            num_sanity_val_steps=0,
            callbacks=[best_cb, last_cb, stop_cb, *(callbacks or [])],
            logger=logger,
            log_every_n_steps=1,
            enable_progress_bar=progress,
            enable_model_summary=progress,
            use_distributed_sampler=False,
            default_root_dir=str(run_dir),
            deterministic=False,
        )
        if module.cpu_only and trainer.strategy.root_device.type != "cpu":
            logging.getLogger("beafx").warning(
                "the analysis chain's %s runs on the CPU (numba) whatever the device; "
                "its time per step is logged as time_chain_s", ", ".join(module.cpu_only)
            )

        class _Data(pl.LightningDataModule):
            def train_dataloader(self_inner):
                return data.train_loader(
                    start_step=module.resume_step, rank=trainer.global_rank, world_size=trainer.world_size
                )

            def val_dataloader(self_inner):
                return data.valid_loader()

        trainer.fit(module, datamodule=_Data(), ckpt_path=str(resume_from) if resume_from else None)

    best_score = best_cb.best_model_score
    best_path = run_dir / "best.ckpt"
    result = TrainResult(
        run_dir=str(run_dir),
        best_checkpoint=str(best_path) if best_path.exists() else None,
        best_val_loss=float(best_score) if best_score is not None else None,
        global_step=int(trainer.global_step),
        total_steps=int(data.total_steps),
        stopped_early=bool(stop_cb.stopped_epoch) or trainer.global_step < data.total_steps,
        wall_seconds=time.perf_counter() - t0,
        device=str(trainer.strategy.root_device),
        attempts=attempt + 1,
    )
    if trainer.is_global_zero:
        previous = {}
        if (run_dir / "result.json").exists():
            with contextlib.suppress(ValueError):
                previous = json.loads((run_dir / "result.json").read_text())
        summary = asdict(result)
        summary["wall_seconds_total"] = float(previous.get("wall_seconds_total", 0.0)) + result.wall_seconds
        summary["hardware"] = _hardware(trainer)
        summary["cpu_model"] = cpu_model()  # bit-identical reruns need the same CPU model
        write_json_atomic(run_dir / "result.json", summary)
    return result


def _hardware(trainer) -> str:
    device = trainer.strategy.root_device
    if device.type == "cuda":
        return f"{trainer.world_size} x {torch.cuda.get_device_name(device)}"
    return f"{trainer.world_size} x CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def read_curves(run_dir: PathLike) -> list[dict[str, float]]:
    """The run's logged rows, attempts merged: rows of an attempt that a later attempt
    replayed (steps at or after the later attempt's first step) are dropped."""
    import csv

    attempts = sorted(Path(run_dir, "logs").glob("attempt_*"), key=lambda p: int(p.name.split("_")[1]))
    tables = []
    for folder in attempts:
        path = folder / "metrics.csv"
        if not path.exists():
            continue
        with open(path, newline="") as fh:
            rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]
        tables.append(rows)
    merged: list[dict[str, float]] = []
    for i, rows in enumerate(tables):
        later_start = min((r.get("step", math.inf) for t in tables[i + 1:] for r in t), default=math.inf)
        merged.extend(r for r in rows if r.get("step", 0) < later_start)
    return merged
