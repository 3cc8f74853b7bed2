"""Training and evaluating the neural proxy compressor (book chapter ``book/09_proxy``; ``beafx train-proxy``,
``beafx eval-proxy``).

The recipe (:func:`train_proxy`): every example is a crop of a track of any :mod:`beafx.data`
source, DC removed and peak-normalised, with probability ``eq_probability`` passed through a
random :class:`~beafx.effects.ParametricEQ` and normalised again (as the chain feeds its
compressor), with a random polarity. Compressor parameters ``q ~ U(0, 1)`` with make-up 0 dB (the
proxy applies make-up exactly); the target is :class:`~beafx.effects.Compressor` from rest. The
proxy starts from zero history at the crop's first sample, so every crop includes its onset,
and crops are longer than the receptive field (``cpu``: 4 s = 3.02 s of warm-up + 0.98 s with full
context), so one crop trains both conditions: the warm-up (the ``cpu`` profile's 3 s clips lie
inside it) and the steady state (the 10 s test clips). With the constant history computed once
(:meth:`beafx.effects.proxy._TCNBase.body`), each output sample costs 5 conv outputs: this is
cheaper per useful sample than windows of receptive field + span with valid convolutions.
Loss: L1 + auraloss multi-resolution STFT. Adam; constant lr, then a cosine decay over the last
40 % of the steps.

Everything random in training step ``s`` comes from ``numpy.random.default_rng([seed, 0, s])``,
so a resumed run draws the same batches as an uninterrupted one. The run folder holds
``config.json``, ``last.ckpt`` (tiny: 8 k parameters plus Adam's state, written every
``checkpoint_minutes`` and at the end), ``curve.csv`` (appended, survives resumes) and the
exported weights ``np_compressor.pt`` (see :func:`export_weights`).

Accuracy (:func:`evaluate_proxy`, issue 9 item 4): MAE ``mean |y_np - y_dsp|`` over 10 s clips
from their onset excluding the first :data:`~beafx.effects.proxy.RECEPTIVE_FIELD` samples, the
MAE over whole 3 s clips from their onset, the error-to-signal ratio and the gain-curve error in
dB, beside two references: the dry input and a static-curve-only compressor.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..effects.proxy import (
    DEFAULT_WEIGHTS, MODELS, RECEPTIVE_FIELD, SAMPLE_RATE, ProxyCompressor, _TCNBase, save_weights,
)
from ..files import write_json_atomic, write_text_atomic
from ..functional.levels import normalize_0dbfs
from .run import quiet_lightning

RUN_FORMAT = "beafx-proxy-run-v1"


# ----------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class ProxyProfile:
    """Sizes of a proxy training run (``name`` matches :mod:`beafx.profiles`)."""

    name: str
    clip_seconds: float  # training crops, from their onset
    batch_size: int
    lr: float
    max_steps: int
    max_hours: float  # wall-clock budget of training, counted across resumes, pauses excluded
    val_every_steps: int
    val_clips: int
    val_seconds: float
    eq_probability: float
    checkpoint_minutes: float
    log_every_steps: int

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * SAMPLE_RATE))

    @property
    def val_samples(self) -> int:
        return int(round(self.val_seconds * SAMPLE_RATE))


PROXY_PROFILES: dict[str, ProxyProfile] = {
    "smoke": ProxyProfile("smoke", 0.25, 2, 1e-3, 3, 0.1, 2, 2, 0.25, 0.5, 1e9, 1),
    "cpu": ProxyProfile("cpu", 4.0, 4, 1e-3, 6000, 6.0, 100, 8, 4.0, 0.5, 10.0, 10),
    "paper": ProxyProfile("paper", 6.0, 16, 1e-3, 20000, 6.0, 500, 32, 10.0, 0.5, 10.0, 25),
}


def get_proxy_profile(name: str = "cpu", *, max_steps: Optional[int] = None) -> ProxyProfile:
    """The proxy profile ``name`` (``smoke``, ``cpu``, ``paper``), optionally capped at ``max_steps``."""
    if name not in PROXY_PROFILES:
        raise ValueError(f"unknown profile {name!r}; proxy profiles: {', '.join(PROXY_PROFILES)}")
    profile = PROXY_PROFILES[name]
    if max_steps is not None:
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps}")
        profile = replace(profile, max_steps=min(int(max_steps), profile.max_steps))
    return profile


# ----------------------------------------------------------------------------- data
def _sources(spec: Union[str, Sequence[str]], seed: int) -> list:
    from ..data.sources import open_source_cached

    specs = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    if not specs or any(not s for s in specs):
        raise ValueError(f"source must name one or more data sources (comma-separated), got {spec!r}")
    return [open_source_cached(s, seed) for s in specs]


class ProxyExamples:
    """Batches ``(x, q, y)`` for the proxy: ``x``, ``y`` ``(batch, 1, samples)`` float32, ``q``
    ``(batch, 6)``; ``y = Compressor(x, q)`` from rest. ``batch(key)`` is a pure function of
    ``(seed, split, key)``. Several sources (``"synthetic,debian-music"``) are drawn from equally;
    ``split="all"`` draws from every split (a held-out source such as the shared music folder)."""

    def __init__(self, source: Union[str, Sequence[str]] = "synthetic", split: str = "train", *,
                 clip_samples: int, batch_size: int, seed: int = 0, eq_probability: float = 0.5,
                 makeup_zero: bool = True) -> None:
        from ..data.base import check_split
        from ..effects import Compressor
        from ..effects.eq import ParametricEQ

        self.split = split if split == "all" else check_split(split)
        self.sources = _sources(source, seed)
        splits = ("train", "valid", "test") if split == "all" else (split,)
        #: per source, its tracks as (split, index, samples)
        self._tracks = [[(sp, i, t.num_samples) for sp in splits for i, t in enumerate(src.tracks(sp))]
                        for src in self.sources]
        for src, tracks in zip(self.sources, self._tracks):
            if src.sample_rate != SAMPLE_RATE:
                raise ValueError(f"{src.spec}: the proxy is trained at {SAMPLE_RATE} Hz, source is {src.sample_rate}")
            if not tracks:
                raise ValueError(f"{src.spec} has no {split} tracks")
        if clip_samples < 1 or batch_size < 1:
            raise ValueError(f"clip_samples and batch_size must be positive, got {clip_samples}, {batch_size}")
        if not 0.0 <= eq_probability <= 1.0:
            raise ValueError(f"eq_probability must lie in [0, 1], got {eq_probability}")
        self.clip_samples, self.batch_size, self.seed = int(clip_samples), int(batch_size), int(seed)
        self.eq_probability, self.makeup_zero = float(eq_probability), bool(makeup_zero)
        self.eq = ParametricEQ(sample_rate=SAMPLE_RATE, synthesis=True)
        self.compressor = Compressor(sample_rate=SAMPLE_RATE)
        self._split_id = {"train": 0, "valid": 1, "test": 2, "all": 3}[split]

    def _crop(self, rng: np.random.Generator, n: int) -> np.ndarray:
        from ..data.clips import MAX_TRIES, SILENT_PEAK

        for _ in range(MAX_TRIES):
            k = int(rng.integers(len(self.sources)))
            tracks = self._tracks[k]
            split, index, num_samples = tracks[int(rng.integers(len(tracks)))]
            start = int(rng.integers(0, max(1, num_samples - n) + 1))
            clip = self.sources[k].read(split, index, start, n)
            if float(np.abs(clip).max()) >= SILENT_PEAK:
                return clip
        raise ValueError(f"{MAX_TRIES} random crops from {[s.spec for s in self.sources]} were all silent")

    def batch(self, key: int, *, n: Optional[int] = None, makeup_db: Optional[float] = None) -> tuple[Tensor, Tensor, Tensor]:
        """Batch number ``key``: ``(x, q, y)``; ``n`` overrides the clip length."""
        n = self.clip_samples if n is None else int(n)
        rng = np.random.default_rng([self.seed, self._split_id, int(key)])
        x = torch.from_numpy(np.stack([self._crop(rng, n) for _ in range(self.batch_size)]))[:, None, :]
        x = normalize_0dbfs(x.double())
        use_eq = torch.from_numpy(rng.random(self.batch_size) < self.eq_probability)
        q_eq = torch.from_numpy(rng.random((self.batch_size, self.eq.num_params)))
        if bool(use_eq.any()):
            with torch.no_grad():
                eq = normalize_0dbfs(self.eq(x[use_eq], q_eq[use_eq]))
            x = x.clone()
            x[use_eq] = eq
        sign = torch.from_numpy(np.where(rng.random(self.batch_size) < 0.5, -1.0, 1.0))
        x = (x * sign[:, None, None]).float()
        q = torch.from_numpy(rng.random((self.batch_size, 6))).float()
        if makeup_db is not None:
            q[:, 5] = float(self.compressor.param_specs[5].to_normalized(makeup_db))
        elif self.makeup_zero:
            q[:, 5] = 0.0
        with torch.no_grad():
            y = self.compressor(x, q)
        return x, q, y


class _StepStream(torch.utils.data.IterableDataset):
    """Training batches ``start_step, start_step + 1, ...`` (one batch per item)."""

    def __init__(self, examples: ProxyExamples, start_step: int, stop_step: int) -> None:
        super().__init__()
        self.examples, self.start_step, self.stop_step = examples, int(start_step), int(stop_step)

    def __iter__(self):
        for step in range(self.start_step, self.stop_step):
            yield self.examples.batch(step)


# ----------------------------------------------------------------------------- metrics
def mae(y_hat: Tensor, y: Tensor, *, skip: int = 0) -> Tensor:
    """Mean ``|y_hat - y|`` per example ``(batch,)`` over samples ``skip:``."""
    return (y_hat[..., skip:] - y[..., skip:]).abs().mean(dim=(-2, -1))


def esr(y_hat: Tensor, y: Tensor, *, skip: int = 0) -> Tensor:
    """Error-to-signal ratio ``sum (y_hat - y)^2 / sum y^2`` per example ``(batch,)``."""
    err = (y_hat[..., skip:] - y[..., skip:]).square().sum(dim=(-2, -1))
    return err / y[..., skip:].square().sum(dim=(-2, -1)).clamp_min(1e-12)


# ----------------------------------------------------------------------------- Lightning
def lr_factor(progress: float) -> float:
    """Learning-rate factor at ``progress`` in [0, 1] of the run: 1 for the first 60 %, then a
    cosine down to 0.05. A run's progress is the larger of its fractions of steps and of
    wall-clock budget, so the decay happens whichever limit ends the run."""
    if progress < 0.6:
        return 1.0
    t = min(1.0, (progress - 0.6) / 0.4)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))


#: auraloss multi-resolution STFT settings (FFT sizes, hops, windows): 75 % overlap, about 5x
#: cheaper than auraloss's defaults (hops 50/120/240) on these long clips.
STFT_RESOLUTIONS = {"fft_sizes": [1024, 2048, 512], "hop_sizes": [256, 512, 128], "win_lengths": [1024, 2048, 512]}


def _lightning_module(kind: str, profile: ProxyProfile, stft_weight: float):
    import auraloss
    import lightning.pytorch as pl

    class ProxyModule(pl.LightningModule):
        """Trains one proxy model (``kind``: ``proxy`` or ``tcn``) with L1 + MR-STFT."""

        def __init__(self) -> None:
            super().__init__()
            self.model: _TCNBase = MODELS[kind](weights=None)
            self.stft = auraloss.freq.MultiResolutionSTFTLoss(**STFT_RESOLUTIONS)
            self.resume_step = 0
            self.last_metrics: dict[str, float] = {}

        def on_load_checkpoint(self, checkpoint: dict) -> None:
            self.resume_step = int(checkpoint.get("global_step", 0))

        def training_step(self, batch, batch_idx):
            x, q, y = batch
            y_hat = self.model.process_normalized(x, q)
            l1 = (y_hat - y).abs().mean()
            stft = self.stft(y_hat, y)
            loss = l1 + stft_weight * stft
            self.last_metrics = {"loss": float(loss.detach()), "l1": float(l1.detach()), "stft": float(stft.detach()),
                                 "lr": float(self.optimizers().param_groups[0]["lr"])}
            self.log("train_loss", loss, prog_bar=True, batch_size=x.shape[0])
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.model.parameters(), lr=profile.lr)  # lr set per step by Keeper

    return ProxyModule()


def _keeper_callback(run_dir: Path, profile: ProxyProfile, kind: str, valid: Optional[list], info: dict):
    import lightning.pytorch as pl

    class Keeper(pl.Callback):
        """Appends ``curve.csv``, validates every ``val_every_steps``, and every
        ``checkpoint_minutes`` (and at the end) writes ``last.ckpt`` and the exported weights."""

        fields = ["step", "elapsed_s", "loss", "l1", "stft", "lr", "val_mae", "val_mae_steady", "val_esr"]

        def __init__(self) -> None:
            self.t_last_save = time.monotonic()
            self.t_start = time.monotonic()
            self.elapsed0 = float(info.get("train_seconds", 0.0))
            self.best: dict[str, float] = {}

        def elapsed(self) -> float:
            return self.elapsed0 + time.monotonic() - self.t_start

        def _row(self, row: dict) -> None:
            path = run_dir / "curve.csv"
            new = not path.exists()
            with open(path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.fields)
                if new:
                    w.writeheader()
                w.writerow({k: row.get(k, "") for k in self.fields})

        def validate(self, module) -> dict[str, float]:
            if not valid:
                return {}
            was = module.model.training
            module.model.eval()
            maes, steady, esrs = [], [], []
            with torch.no_grad():
                for x, q, y in valid:
                    y_hat = module.model.process_normalized(x.to(module.device), q.to(module.device)).cpu()
                    maes.append(mae(y_hat, y))
                    esrs.append(esr(y_hat, y))
                    if y.shape[-1] > RECEPTIVE_FIELD:
                        steady.append(mae(y_hat, y, skip=RECEPTIVE_FIELD - 1))
            module.model.train(was)
            out = {"val_mae": float(torch.cat(maes).mean()), "val_esr": float(torch.cat(esrs).mean())}
            if steady:
                out["val_mae_steady"] = float(torch.cat(steady).mean())
            return out

        def save(self, trainer, module) -> None:
            info["train_seconds"] = round(self.elapsed(), 1)
            info["global_step"] = int(trainer.global_step)
            trainer.save_checkpoint(str(run_dir / "last.ckpt"))
            save_weights(module.model, run_dir / f"{_weights_name(kind)}.pt", **_weights_info(info))
            write_json_atomic(run_dir / "state.json", info)
            self.t_last_save = time.monotonic()

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            elapsed = self.elapsed()
            if elapsed >= 3600.0 * profile.max_hours:
                trainer.should_stop = True
            progress = max(trainer.global_step / profile.max_steps, elapsed / (3600.0 * profile.max_hours))
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = profile.lr * lr_factor(progress)

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            step = int(trainer.global_step)
            row: dict[str, Any] = {}
            if step % profile.log_every_steps == 0 or step == 1:
                row.update(module.last_metrics)
            if step % profile.val_every_steps == 0:
                val = self.validate(module)
                row.update(val)
                info["last_validation"] = {"step": step, **val}
                module.log_dict(val, prog_bar=False)
            if row:
                self._row({"step": step, "elapsed_s": round(self.elapsed(), 1), **row})
            if time.monotonic() - self.t_last_save > 60.0 * profile.checkpoint_minutes:
                self.save(trainer, module)

        def on_train_end(self, trainer, module) -> None:
            step = int(trainer.global_step)
            val = self.validate(module)
            info["last_validation"] = {"step": step, **val}
            self._row({"step": step, "elapsed_s": round(self.elapsed(), 1), **module.last_metrics, **val})
            self.save(trainer, module)

    return Keeper()


#: A gap longer than this between two steps of a run is a pause and does not count as training time.
PAUSE_SECONDS = 300.0


def _weights_name(kind: str) -> str:
    return {"proxy": "np_compressor", "tcn": "tcn_compressor"}[kind]


def _weights_info(info: dict) -> dict:
    keys = ("config", "profile", "train_seconds", "global_step", "hardware", "last_validation", "commit")
    return {k: info[k] for k in keys if k in info}


def _hardware() -> dict:
    return {
        "machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _truncate_curve(path: Path, last_step: int) -> None:
    """Drop the rows of ``curve.csv`` logged after the checkpoint a run resumes from (a run
    stopped between checkpoints logged steps that it will train again)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if ln.split(",", 1)[0].isdigit() and int(ln.split(",", 1)[0]) <= last_step]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(kept))


@dataclass
class ProxyTrainResult:
    run_dir: str
    weights: str
    global_step: int
    max_steps: int
    train_seconds: float
    last_validation: dict


def train_proxy(
    out_dir: Union[str, os.PathLike],
    *,
    profile: str = "cpu",
    source: Union[str, Sequence[str]] = "synthetic",
    seed: int = 0,
    kind: str = "proxy",
    resume: bool = False,
    max_steps: Optional[int] = None,
    max_hours: Optional[float] = None,
    stft_weight: float = 1.0,
    devices: Union[int, str] = "auto",
    accelerator: str = "auto",
    progress: Optional[bool] = None,
) -> ProxyTrainResult:
    """Train a proxy (``kind="proxy"``) or the comparison TCN (``kind="tcn"``) into ``out_dir``.

    ``resume=True`` continues the run in ``out_dir`` from ``last.ckpt`` (same batches as an
    uninterrupted run); without it, ``out_dir`` must not hold a run. ``max_steps`` caps the
    profile's steps, ``max_hours`` its budget of training time (across resumes, pauses excluded). Returns where
    the weights are and the last validation metrics."""
    import lightning.pytorch as pl

    from .run import default_progress

    if kind not in MODELS:
        raise ValueError(f"kind must be one of {sorted(MODELS)}, got {kind!r}")
    prof = get_proxy_profile(profile, max_steps=max_steps)
    if max_hours is not None:
        if not max_hours > 0:
            raise ValueError(f"max_hours must be positive, got {max_hours}")
        prof = replace(prof, max_hours=float(max_hours))
    source_spec = source if isinstance(source, str) else ",".join(source)
    config = {"kind": kind, "profile": profile, "source": source_spec, "seed": int(seed), "stft_weight": stft_weight}
    run_dir = Path(out_dir)
    state_path, config_path, ckpt = run_dir / "state.json", run_dir / "config.json", run_dir / "last.ckpt"
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if not resume:
            raise ValueError(f"{run_dir} already holds a proxy run; pass --resume to continue it or choose another --out")
        if stored.get("config") != config:
            raise ValueError(f"{run_dir} holds a run with another configuration ({stored.get('config')}); "
                             f"cannot resume it as {config}")
        max_stored = stored.get("profile", {}).get("max_steps")
        if max_steps is None and max_stored:  # keep the lr schedule of the stored run
            prof = replace(prof, max_steps=int(max_stored))
    elif resume and not ckpt.exists():
        raise FileNotFoundError(f"nothing to resume in {run_dir} (no config.json / last.ckpt)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the run folder {run_dir}: {err.strerror or err}") from None
    if not config_path.exists():
        write_json_atomic(config_path, {"format": RUN_FORMAT, "config": config, "profile": asdict(prof)})
    info: dict[str, Any] = json.loads(state_path.read_text()) if (resume and state_path.exists()) else {}
    if resume:
        _truncate_curve(run_dir / "curve.csv", int(info.get("global_step", 0)))
    info.update(config=config, profile=asdict(prof), hardware=_hardware())
    train_examples = ProxyExamples(source, "train", clip_samples=prof.clip_samples, batch_size=prof.batch_size,
                                   seed=seed, eq_probability=prof.eq_probability)
    valid_examples = ProxyExamples(source, "valid", clip_samples=prof.val_samples, batch_size=min(8, prof.val_clips),
                                   seed=seed, eq_probability=prof.eq_probability)
    valid = [valid_examples.batch(k) for k in range(-(-prof.val_clips // valid_examples.batch_size))]

    progress = default_progress() if progress is None else bool(progress)
    with quiet_lightning(not progress):
        pl.seed_everything(seed, workers=True, verbose=False)
        module = _lightning_module(kind, prof, stft_weight)
        keeper = _keeper_callback(run_dir, prof, kind, valid, info)
        trainer = pl.Trainer(
            accelerator=accelerator, devices=devices, max_steps=prof.max_steps, max_epochs=-1,
            logger=False, enable_checkpointing=False,
            callbacks=[keeper], enable_progress_bar=progress, enable_model_summary=progress,
            num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=str(run_dir),
        )

        class _Data(pl.LightningDataModule):
            def train_dataloader(self_inner):
                stream = _StepStream(train_examples, module.resume_step, prof.max_steps)
                return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=0)

        trainer.fit(module, datamodule=_Data(), ckpt_path=str(ckpt) if (resume and ckpt.exists()) else None)
    return ProxyTrainResult(
        run_dir=str(run_dir), weights=str(run_dir / f"{_weights_name(kind)}.pt"),
        global_step=int(trainer.global_step), max_steps=prof.max_steps,
        train_seconds=float(info.get("train_seconds", 0.0)), last_validation=dict(info.get("last_validation", {})),
    )


# ----------------------------------------------------------------------------- evaluation
def static_compressor(x: Tensor, q: Tensor) -> Tensor:
    """The floor to beat: :class:`Compressor`'s static curve on the instantaneous linked level
    (no attack or release), ``x`` ``(batch, channels, samples)``, ``q`` ``(batch, 6)``."""
    from ..effects import Compressor
    from ..functional.compressor import gain_computer, linked_level_db

    p = Compressor().physical(q.double())
    level = linked_level_db(x.double())
    reduction = level - gain_computer(level, threshold_db=p["threshold_db"], ratio=p["ratio"], knee_db=p["knee_db"])
    gain = torch.pow(10.0, (p["makeup_db"][:, None] - reduction) / 20.0)
    return (x.double() * gain[:, None, :]).to(x.dtype)


def check_set(n_clips: int = 4, seconds: float = 4.0, seed: int = 1234) -> tuple[Tensor, Tensor]:
    """A fixed synthetic test set ``(x (n, 1, samples), q (n, 6))`` needing no data source: noise
    bursts with random levels (every 100 ms) and exponential decays (30 ms) over a quiet tone,
    DC-free and peak-normalised, make-up 0 dB. The shipped weights record their MAE on it."""
    g = torch.Generator().manual_seed(seed)
    n = int(round(seconds * SAMPLE_RATE))
    hop = int(0.1 * SAMPLE_RATE)
    frames = -(-n // hop)
    level = 0.05 + 0.95 * torch.rand(n_clips, 1, frames, generator=g, dtype=torch.float64)
    env = level.repeat_interleave(hop, dim=-1)[..., :n]
    t = torch.arange(n, dtype=torch.float64)
    decay = torch.exp(-(t % hop) / (0.03 * SAMPLE_RATE))
    tone = 0.01 * torch.sin(2 * math.pi * 110.0 * t / SAMPLE_RATE)
    x = normalize_0dbfs(env * decay * torch.randn(n_clips, 1, n, generator=g, dtype=torch.float64) + tone).float()
    q = torch.rand(n_clips, 6, generator=g)
    q[:, 5] = 0.0
    return x, q


def check_mae(model: ProxyCompressor, x: Optional[Tensor] = None, q: Optional[Tensor] = None) -> float:
    """MAE of ``model`` against :class:`Compressor` on :func:`check_set` (whole clips from onset)."""
    from ..effects import Compressor

    if x is None or q is None:
        x, q = check_set()
    was = model.training
    model.eval()
    with torch.no_grad():
        y_np = model(x, q)
        y = Compressor()(x, q)
    model.train(was)
    return float(mae(y_np, y).mean())


def evaluate_proxy(
    model: Optional[_TCNBase] = None,
    *,
    source: str = "synthetic",
    split: str = "test",
    n_clips: int = 20,
    seconds: float = 10.0,
    onset_seconds: float = 3.0,
    seed: int = 0,
    batch_size: int = 4,
) -> dict[str, Any]:
    """Issue 9's accuracy of ``model`` (default: the shipped proxy) against :class:`Compressor`.

    ``n_clips`` crops of ``seconds`` from ``split`` of ``source``, DC-free and peak-normalised
    (no EQ), ``q ~ U(0, 1)`` with make-up 0 dB. Returns means (and medians) of: ``mae`` over
    every sample after the first :data:`RECEPTIVE_FIELD` (warm-up excluded); ``mae_onset`` over
    the first ``onset_seconds`` (the same as clips of that length from their onset, by
    causality); ``esr``; ``gain_error_db`` (mean ``|gain_np - gain_dsp|`` in dB after the
    warm-up, :class:`ProxyCompressor` only); the same MAE for the dry input (``dry_mae``) and
    the static-curve-only compressor (``static_mae``); and per clip ``q`` and MAE (``clips``),
    worst first, for maps of the error over the parameter space."""
    from ..effects import Compressor

    model = ProxyCompressor() if model is None else model
    n = int(round(seconds * SAMPLE_RATE))
    if n <= RECEPTIVE_FIELD:
        raise ValueError(f"seconds must exceed the receptive field ({RECEPTIVE_FIELD / SAMPLE_RATE:.2f} s), got {seconds}")
    onset = int(round(onset_seconds * SAMPLE_RATE))
    examples = ProxyExamples(source, split, clip_samples=n, batch_size=batch_size, seed=seed, eq_probability=0.0)
    dsp = Compressor()
    was = model.training
    model.eval()
    rows: dict[str, list[Tensor]] = {k: [] for k in ("mae", "mae_onset", "esr", "gain_error_db", "dry_mae", "static_mae", "q")}
    skip = RECEPTIVE_FIELD
    with torch.no_grad():
        for key in range(-(-n_clips // batch_size)):
            x, q, y = examples.batch(10_000 + key)
            if isinstance(model, ProxyCompressor):  # one TCN pass for the output and the gain
                g = model.gain(x, q)
                y_np = (g * x).to(x.dtype)  # make-up 0 dB
                gr_np = -20.0 * torch.log10(g.squeeze(1)[..., skip:].double())
                gr_dsp = dsp.gain_reduction_db(x, q)[..., skip:].double()
                rows["gain_error_db"].append((gr_np - gr_dsp).abs().mean(dim=-1))
            else:
                y_np = model(x, q)
            rows["mae"].append(mae(y_np, y, skip=skip))
            rows["mae_onset"].append(mae(y_np[..., :onset], y[..., :onset]))
            rows["esr"].append(esr(y_np, y, skip=skip))
            rows["dry_mae"].append(mae(x, y, skip=skip))
            rows["static_mae"].append(mae(static_compressor(x, q), y, skip=skip))
            rows["q"].append(q)
    model.train(was)
    out: dict[str, Any] = {"source": source, "split": split, "n_clips": n_clips, "seconds": seconds,
                           "onset_seconds": onset_seconds, "seed": seed, "model": type(model).__name__}
    for k, v in rows.items():
        if k == "q" or not v:
            continue
        t = torch.cat(v)[:n_clips].double()
        out[k] = float(t.mean())
        out[f"{k}_median"] = float(t.median())
    q_all, mae_all = torch.cat(rows["q"])[:n_clips], torch.cat(rows["mae"])[:n_clips]
    names = [s.name for s in dsp.param_specs]
    order = torch.argsort(mae_all, descending=True)
    out["clips"] = [{"mae": float(mae_all[i]), **{nm: round(float(q_all[i, j]), 4) for j, nm in enumerate(names)}}
                    for i in order.tolist()]
    return out


def error_map(
    model: Optional[ProxyCompressor] = None,
    *,
    params: tuple[str, str] = ("attack_ms", "release_ms"),
    steps: int = 5,
    x: Optional[Tensor] = None,
    q: Optional[Tensor] = None,
) -> dict[str, Any]:
    """MAE of ``model`` (default: the shipped proxy) against :class:`Compressor` on a
    ``steps x steps`` grid of two parameters' ``q`` (the others as in ``q``), over clips ``x``
    (default: :func:`check_set`), whole clips from onset. Returns ``{"params", "grid" (steps,),
    "mae" (steps x steps nested list, rows: first parameter), "worst": (q_a, q_b, mae)}`` (for
    the book's map of where the proxy errs)."""
    from ..effects import Compressor

    model = ProxyCompressor() if model is None else model
    names = [s.name for s in model.param_specs]
    unknown = [p for p in params if p not in names]
    if unknown or len(params) != 2 or params[0] == params[1]:
        raise ValueError(f"params must be two different names among {names}, got {params}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if x is None or q is None:
        x, q = check_set()
    ia, ib = names.index(params[0]), names.index(params[1])
    grid = torch.linspace(0.0, 1.0, steps)
    dsp = Compressor()
    was = model.training
    model.eval()
    table = []
    with torch.no_grad():
        for a in grid:
            row = []
            for b in grid:
                qq = q.clone()
                qq[:, ia], qq[:, ib] = a, b
                row.append(float(mae(model(x, qq), dsp(x, qq)).mean()))
            table.append(row)
    model.train(was)
    t = torch.tensor(table)
    k = int(t.argmax())
    return {"params": list(params), "grid": grid.tolist(), "mae": table,
            "worst": (float(grid[k // steps]), float(grid[k % steps]), float(t.max()))}


def export_weights(run_dir: Union[str, os.PathLike], out_path: Union[str, os.PathLike] = DEFAULT_WEIGHTS,
                   *, metrics: Optional[dict] = None) -> Path:
    """Copy a run's exported weights to ``out_path`` (default: the shipped file), recording its
    config, training time, hardware, check-set MAE (:func:`check_mae`) and ``metrics``; write
    ``<name>.json`` (the same record, readable) and ``<name>_curve.csv`` beside it."""
    import shutil

    from ..effects.proxy import load_weights, read_weights

    run_dir = Path(run_dir)
    src = run_dir / "np_compressor.pt"
    record = read_weights(src)
    model = ProxyCompressor(weights=None)
    info = load_weights(model, src)
    info["check_mae"] = check_mae(model)
    info["check_set"] = "beafx.training.proxy.check_set() (4 x 4 s, seed 1234), whole clips from onset"
    if metrics:
        info["metrics"] = metrics
    out_path = Path(out_path)
    save_weights(model, out_path, **info)
    write_json_atomic(out_path.with_suffix(".json"), {"sample_rate": record["sample_rate"],
                                                "param_specs": record["param_specs"], **info})
    if (run_dir / "curve.csv").exists():
        shutil.copyfile(run_dir / "curve.csv", out_path.with_name(out_path.stem + "_curve.csv"))
    return out_path


# ----------------------------------------------------------------------------- CLI
def _cmd_train(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    devices: Union[int, str] = args.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    result = train_proxy(
        args.out, profile=args.profile, source=args.source, seed=args.seed, kind=args.model, resume=args.resume,
        max_steps=args.max_steps, max_hours=args.max_hours, devices=devices, accelerator=args.accelerator,
    )
    print(json.dumps(asdict(result), indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..effects.proxy import TCNCompressor

    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    kind = "proxy"
    if args.weights and args.weights != "default":
        from ..effects.proxy import read_weights

        kind = read_weights(args.weights)["kind"]
    model = ProxyCompressor(weights=args.weights or "default") if kind == "proxy" else TCNCompressor(weights=args.weights)
    results = [evaluate_proxy(model, source=s.strip(), split=args.split, n_clips=args.clips, seconds=args.seconds,
                              seed=args.seed) for s in args.source.split(",")]
    keys = ("mae", "mae_median", "mae_onset", "esr", "gain_error_db", "dry_mae", "static_mae")
    for r in results:
        print(f"{r['source']} ({r['split']}, {r['n_clips']} x {r['seconds']:g} s): "
              + ", ".join(f"{k} {r[k]:.5f}" for k in keys if k in r))
        worst = r["clips"][0]
        print("  worst clip: " + ", ".join(f"{k} {v:.4g}" for k, v in worst.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``beafx train-proxy`` (and ``beafx eval-proxy``) on ``subparsers``."""
    p = subparsers.add_parser("train-proxy", help="train the neural proxy compressor (or its comparison TCN)")
    p.add_argument("--profile", default="cpu", choices=sorted(PROXY_PROFILES), help="run size (default: cpu)")
    p.add_argument("--source", default="synthetic",
                   help="data source(s), comma-separated: synthetic, debian-music, musdb:PATH, folder:PATH")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoint, curve.csv, weights)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last.ckpt")
    p.add_argument("--max-steps", type=int, default=None, help="cap the profile's steps")
    p.add_argument("--max-hours", type=float, default=None, help="wall-clock budget in hours (across resumes)")
    p.add_argument("--model", default="proxy", choices=sorted(MODELS), help="proxy (default) or the comparison tcn")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--devices", default="auto", help="Lightning devices (default: auto)")
    p.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    p.set_defaults(func=_cmd_train)

    e = subparsers.add_parser("eval-proxy", help="accuracy of the neural proxy against the DSP compressor (issue 9)")
    e.add_argument("--weights", default="default", help="weights file (default: the shipped proxy)")
    e.add_argument("--source", default="synthetic", help="data source(s), comma-separated, each evaluated alone")
    e.add_argument("--split", default="test", choices=("train", "valid", "test", "all"),
                   help="split to crop from (all: every split, for a source held out of training)")
    e.add_argument("--clips", type=int, default=20)
    e.add_argument("--seconds", type=float, default=10.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    e.set_defaults(func=_cmd_eval)


if __name__ == "__main__":  # python -m beafx.training.proxy train-proxy ...
    _parser = argparse.ArgumentParser(prog="python -m beafx.training.proxy")
    add_parser(_parser.add_subparsers(dest="command", required=True))
    _args = _parser.parse_args()
    sys.exit(_args.func(_args))
