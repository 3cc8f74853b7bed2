"""Evaluation of a trained analysis network on the fixed test set, beside the baselines
(book chapter "Training the analysis network", ``book/10_training``; DESIGN.md "Evaluation
baselines").

For every example ``(x, y, q)`` of the test set (the run's synthesis chain, seed and profile:
``test_repeats`` crops per track) an estimator gives ``q_hat``; the analysis chain (eval mode:
the hybrid compressor runs its DSP) makes ``y_hat = analysis(x, q_hat)`` and four metrics are
taken: the Mel loss, MSE_y and the multi-resolution STFT distance between ``y_hat`` and ``y``
(:mod:`beafx.losses`), and MSE_q between ``q_hat`` and ``q`` (null when the analysis chain's
parameters are not the synthesis chain's), also without the unidentifiable parameters
(:func:`beafx.losses.identifiable_mask`) and per parameter (MSE_q and the mean absolute error
in physical units).

Estimators: the ``model`` and the baselines

- ``random``: ``q_hat ~ U(0, 1)`` (seeded per example) through the analysis chain;
- ``xy``: the metrics between ``x`` and ``y`` (no estimate; MSE_q null);
- ``mean_q``: ``q_hat = 0.5`` everywhere (the constant guess);
- ``oracle``: the true ``q`` through the analysis chain (null where the analysis chain's
  parameters are not the synthesis chain's, :meth:`RunConfig.same_parameters`).

Every summary is ``{"mean": m, "ci": [lo, hi]}``: the mean over examples and a 95 % interval
from a bootstrap that resamples *tracks* (the repeats of one track are not independent): each
resample draws track ids with replacement and averages all their examples
(:func:`track_bootstrap`).

- :func:`evaluate`: model (or none) + baselines -> one JSON-able dict;
- :func:`evaluate_baselines`: the baselines alone, cached per (synthesis, analysis, source,
  split, profile, seed) in memory and optionally on disk;
- :func:`format_table`: the readable table (``beafx evaluate`` prints it on stderr).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data.base import SPLITS, Source, Track
from .data.dataset import EffectDataset, synthesis_chain, worker_init_fn
from .effects import Chain
from .effects.proxy import proxy_weights_digest
from .files import write_text_atomic
from .profiles import Profile, get_profile
from .provenance import git_commit
from .training.config import RunConfig, profile_hash

#: Audio metrics (between ``y_hat`` and ``y``), in table order.
AUDIO_METRICS = ("mel", "mse_y", "mrstft")
#: Parameter metrics (between ``q_hat`` and ``q``).
PARAM_METRICS = ("mse_q", "mse_q_identifiable")
METRICS = AUDIO_METRICS + PARAM_METRICS
#: Baselines, in table order.
BASELINES = ("random", "xy", "mean_q", "oracle")
#: The baselines a trained model must beat (``oracle`` is a floor, not a competitor).
BLIND_BASELINES = ("random", "xy", "mean_q")
#: Evaluation splits: one of the source's, or ``all`` (every track, all splits pooled).
EVAL_SPLITS = ("test", "valid", "train", "all")

PathLike = Union[str, Path]
Log = Optional[Callable[[str], None]]

_RANDOM_STREAM = 7919  # separates the random baseline's generator from the dataset's


# ---------------------------------------------------------------------------------- bootstrap


def track_bootstrap(
    values: np.ndarray,
    tracks: Sequence,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile bootstrap interval of per-example ``values`` resampling tracks.

    ``values``: ``(n,)`` or ``(n, k)`` (k metrics at once); ``tracks``: ``(n,)`` track ids
    (any hashable labels). Each of the ``n_boot`` resamples draws the distinct tracks with
    replacement and averages all examples of the drawn tracks (a track drawn twice counts
    twice). Returns ``(mean, lo, hi)``, each ``(k,)`` (or scalars' 0-d arrays for 1-D input):
    ``mean`` is the plain mean over examples, ``[lo, hi]`` the central ``level`` interval."""
    vals = np.asarray(values, dtype=np.float64)
    one_d = vals.ndim == 1
    if one_d:
        vals = vals[:, None]
    if vals.ndim != 2 or vals.shape[0] == 0:
        raise ValueError(f"values must be (n,) or (n, k) with n >= 1, got shape {np.shape(values)}")
    labels = list(tracks)
    if len(labels) != vals.shape[0]:
        raise ValueError(f"tracks has {len(labels)} entries for {vals.shape[0]} values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    _, track_of = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    n_tracks = int(track_of.max()) + 1
    sums = np.zeros((n_tracks, vals.shape[1]))
    np.add.at(sums, track_of, vals)
    counts = np.bincount(track_of, minlength=n_tracks).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_tracks, size=(n_boot, n_tracks))
    times = np.zeros((n_boot, n_tracks))
    np.add.at(times, (np.arange(n_boot)[:, None], draws), 1.0)
    boot = (times @ sums) / (times @ counts)[:, None]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    mean = vals.mean(axis=0)
    if one_d:
        return mean[0], lo[0], hi[0]
    return mean, lo, hi


def _summary(mean: float, lo: float, hi: float) -> Optional[dict]:
    if not all(math.isfinite(float(v)) for v in (mean, lo, hi)):
        return None
    return {"mean": float(mean), "ci": [float(lo), float(hi)]}


# ---------------------------------------------------------------------------------- test set


class AllSplits(Source):
    """Every track of ``source`` (train, valid and test pooled) presented as its ``test``
    split, for ``--split all`` on small folders. Track names get their split as a prefix."""

    def __init__(self, source: Source) -> None:
        self.inner = source
        self.spec = source.spec
        self.sample_rate = source.sample_rate
        self._index = [(s, i) for s in SPLITS for i in range(len(source.tracks(s)))]

    def tracks(self, split: str) -> list[Track]:
        if split != "test":
            return []
        return [Track(f"{s}/{self.inner.tracks(s)[i].name}", self.inner.tracks(s)[i].num_samples) for s, i in self._index]

    def _read(self, split: str, index: int, start: int, length: int) -> np.ndarray:
        s, i = self._index[index]
        return self.inner._read(s, i, start, length)


def open_eval_source(spec: str, *, seed: int = 0) -> Source:
    """The source ``spec`` opened as training opens it (cached per process)."""
    from .data.sources import open_source_cached

    return open_source_cached(spec, seed=seed)


def eval_dataset(
    config: RunConfig,
    *,
    source: Optional[str] = None,
    split: str = "test",
    profile: Optional[Profile] = None,
    max_tracks: Optional[int] = None,
) -> EffectDataset:
    """The fixed evaluation set of ``config``: its synthesis chain (exact paths), its seed,
    ``profile.test_repeats`` examples per track of ``split`` of ``source`` (default the run's).
    ``split="all"`` pools every track of the source; ``max_tracks`` caps the tracks (default:
    the profile's test cap for a source split, none for ``all``)."""
    if split not in EVAL_SPLITS:
        raise ValueError(f"unknown evaluation split {split!r}; use one of {', '.join(EVAL_SPLITS)}")
    profile = profile or config.resolved_profile()
    spec = source or config.source
    opened = open_eval_source(spec)
    chain = synthesis_chain(config.synthesis, opened.sample_rate)
    if split == "all":
        pooled = AllSplits(opened)
        total = len(pooled.tracks("test"))
        if total == 0:
            raise ValueError(f"{spec} has no tracks")
        cap = total if max_tracks is None else min(max_tracks, total)
        return EffectDataset(pooled, "test", chain, profile=profile, repeats=profile.test_repeats, max_tracks=cap, seed=config.seed)
    return EffectDataset(opened, split, chain, profile=profile, repeats=profile.test_repeats, max_tracks=max_tracks, seed=config.seed)


class _Indexed(Dataset):
    """``(x, y, q, index, track name)`` of an :class:`EffectDataset` (for the DataLoader)."""

    def __init__(self, dataset: EffectDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        ex = self.dataset.example(int(index))
        return ex.x, ex.y, ex.q, int(index), ex.track


# ---------------------------------------------------------------------------------- one pass


def _random_q(indices: Sequence[int], num_params: int, seed: int) -> torch.Tensor:
    """The ``random`` baseline's ``q_hat`` for examples ``indices``: one generator per example
    (seeded by ``(seed, index)``), so results do not depend on batching."""
    rows = [np.random.default_rng([int(seed), _RANDOM_STREAM, int(i)]).random(num_params) for i in indices]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


class _Collector:
    """Per-example values of one estimator: audio metrics, q metrics, per-parameter errors."""

    def __init__(self, with_q: bool, param_names: Sequence[str]) -> None:
        self.with_q = with_q
        self.param_names = list(param_names)
        self.values: dict[str, list[np.ndarray]] = {m: [] for m in (METRICS if with_q else AUDIO_METRICS)}
        self.sq: list[np.ndarray] = []
        self.abs: list[np.ndarray] = []

    def add(self, name: str, value: torch.Tensor) -> None:
        self.values[name].append(value.detach().double().cpu().numpy().reshape(-1))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.values.items()}


class TargetMetrics:
    """The audio metrics of :mod:`beafx.losses` (``mel_loss``, ``mse_y``, ``mrstft`` with
    ``reduction="none"``) of several estimates against one target batch ``y`` ``(batch,
    channels, samples)``, the target's spectra computed once and no phase computed (the
    metrics do not use it). Same definitions (the auraloss settings ``losses.MEL`` and
    ``losses.MRSTFT``: Hann windows, centred reflect-padded STFT, magnitudes
    ``sqrt(max(|X|^2, 1e-8))``, Slaney mel filterbank); ``tests/test_evaluation.py`` checks
    them against :mod:`beafx.losses` to 1e-5."""

    def __init__(self, y: torch.Tensor) -> None:
        from .functional.checks import check_signal

        check_signal(y, what="y")
        self.b = self._prepare(y)
        self.mel_fb = _mel_filterbank(self.b.dtype)
        self.y_mel = self._mel(self.b)
        self.y_mags = [self._mag(self.b, n, h, w) for n, h, w in _mr_resolutions()]

    @staticmethod
    def _prepare(x: torch.Tensor) -> torch.Tensor:
        from .functional.levels import rms_normalize

        return rms_normalize(x.mean(dim=1, keepdim=True))[:, 0]  # (batch, samples)

    @staticmethod
    def _mag(x: torch.Tensor, n_fft: int, hop: int, win: int, eps: float = 1e-8) -> torch.Tensor:
        window = torch.hann_window(win, dtype=x.dtype, device=x.device)
        spec = torch.stft(x, n_fft, hop, win, window, return_complex=True)
        return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=eps))

    def _mel(self, x: torch.Tensor) -> torch.Tensor:
        from .losses import MEL

        mag = self._mag(x, MEL["fft_size"], MEL["hop_size"], MEL["win_length"], MEL["eps"])
        return torch.log(torch.matmul(self.mel_fb, mag))

    def __call__(self, y_hat: torch.Tensor, *, what: str = "y_hat") -> dict[str, torch.Tensor]:
        """``{"mel", "mse_y", "mrstft"}``, each ``(batch,)``, for ``y_hat`` (the shape of ``y``)."""
        from .functional.checks import check_signal

        check_signal(y_hat, what=what)
        a = self._prepare(y_hat.to(self.b.dtype))
        if a.shape != self.b.shape:
            raise ValueError(f"{what} has shape {tuple(y_hat.shape)}; the target has {tuple(self.b.shape)} after mixing to mono")
        mel = (self._mel(a) - self.y_mel).abs().mean(dim=(1, 2))
        mse = (a - self.b).square().mean(dim=1)
        terms = []
        for (n, h, w), y_mag in zip(_mr_resolutions(), self.y_mags):
            x_mag = self._mag(a, n, h, w)
            sc = torch.linalg.vector_norm(y_mag - x_mag, dim=(1, 2)) / torch.linalg.vector_norm(y_mag, dim=(1, 2))
            log_mag = (torch.log(x_mag) - torch.log(y_mag)).abs().mean(dim=(1, 2))
            terms.append(sc + log_mag)
        return {"mel": mel, "mse_y": mse, "mrstft": torch.stack(terms).mean(dim=0)}


def _mr_resolutions() -> list[tuple[int, int, int]]:
    from .losses import MRSTFT

    if MRSTFT.get("w_sc") != 1.0 or MRSTFT.get("w_log_mag") != 1.0 or MRSTFT.get("w_lin_mag", 0.0) or MRSTFT.get("w_phs", 0.0):
        raise ValueError(f"TargetMetrics implements MR-STFT = spectral convergence + log magnitude; losses.MRSTFT is {MRSTFT}")
    return list(zip(MRSTFT["fft_sizes"], MRSTFT["hop_sizes"], MRSTFT["win_lengths"]))


_MEL_FB: dict = {}


def _mel_filterbank(dtype: torch.dtype) -> torch.Tensor:
    """The Slaney mel filterbank auraloss builds (``librosa.filters.mel``), ``(n_mels, bins)``."""
    from .losses import MEL

    if dtype not in _MEL_FB:
        import librosa

        fb = librosa.filters.mel(sr=MEL["sample_rate"], n_fft=MEL["fft_size"], n_mels=MEL["n_mels"])
        _MEL_FB[dtype] = torch.tensor(fb).to(dtype)
    return _MEL_FB[dtype]


def _run_pass(
    dataset: EffectDataset,
    config: RunConfig,
    *,
    model=None,
    baselines: Sequence[str] = BASELINES,
    analysis: Optional[Chain] = None,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    log: Log = None,
) -> tuple[list[str], dict[str, Optional[_Collector]], Chain]:
    """Iterate the test set once; return the track of every example and, per estimator, its
    per-example values (None for an undefined baseline)."""
    from . import losses

    analysis = (analysis if analysis is not None else config.analysis_chain()).eval()
    same = RunConfig.same_parameters(dataset.chain, analysis)
    names = list(analysis.param_names)
    mask = losses.identifiable_mask(names) if same else None
    specs = analysis.param_specs
    wanted = (["model"] if model is not None else []) + [b for b in baselines if b in BASELINES]
    collectors: dict[str, Optional[_Collector]] = {}
    for name in wanted:
        if name == "oracle" and not same:
            collectors[name] = None
        else:
            collectors[name] = _Collector(with_q=same and name != "xy", param_names=names)
    loader = DataLoader(
        _Indexed(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=worker_init_fn if num_workers > 0 else None,
    )
    tracks: list[str] = []
    total, done, next_report, start = len(dataset), 0, 0.1, time.perf_counter()
    with torch.no_grad():
        for x, y, q, index, track in loader:
            tracks.extend(track)
            estimates: dict[str, torch.Tensor] = {}
            if "model" in collectors:
                estimates["model"] = model.predict(y).detach().float().cpu().clamp(0.0, 1.0)
            if "random" in collectors:
                estimates["random"] = _random_q(index.tolist(), analysis.num_params, seed)
            if "mean_q" in collectors:
                estimates["mean_q"] = torch.full((x.shape[0], analysis.num_params), 0.5)
            if collectors.get("oracle") is not None:
                estimates["oracle"] = q
            target = TargetMetrics(y)
            for name, q_hat in estimates.items():
                col = collectors[name]
                y_hat = analysis(x, q_hat)
                for metric, value in target(y_hat, what=f"the {name} estimate's y_hat").items():
                    col.add(metric, value)
                if col.with_q:
                    col.add("mse_q", losses.mse_q(q_hat, q, reduction="none"))
                    col.add("mse_q_identifiable", losses.mse_q(q_hat, q, reduction="none", mask=mask))
                    qh, qt = q_hat.double(), q.double()
                    col.sq.append(((qh - qt) ** 2).numpy())
                    phys = [(s.map_unchecked(qh[:, i]) - s.map_unchecked(qt[:, i])).abs() for i, s in enumerate(specs)]
                    col.abs.append(torch.stack(phys, dim=1).numpy())
            if "xy" in collectors:
                for metric, value in target(x, what="x").items():
                    collectors["xy"].add(metric, value)
            done += x.shape[0]
            if log is not None and done / total >= next_report:
                elapsed = time.perf_counter() - start
                log(f"  {done}/{total} examples, {elapsed:.0f} s ({elapsed / done:.2f} s per example)")
                next_report = math.floor(done / total * 10 + 1) / 10
    return tracks, collectors, analysis


def _summarise(
    col: Optional[_Collector], tracks: list[str], specs, *, n_boot: int, boot_seed: int
) -> Optional[dict]:
    """Means and track-bootstrap intervals of one estimator's per-example values."""
    if col is None:
        return None
    arrays = col.arrays()
    keys = list(arrays)
    mean, lo, hi = track_bootstrap(np.stack([arrays[k] for k in keys], axis=1), tracks, n_boot=n_boot, seed=boot_seed)
    out: dict[str, Any] = {k: _summary(mean[j], lo[j], hi[j]) for j, k in enumerate(keys)}
    # every example's value, in test-set order (``run.example_tracks``), for paired comparisons of
    # estimators scored on the same examples (the experiments' findings table)
    out["per_example"] = {k: [float(f"{v:.7g}") for v in arrays[k]] for k in keys}
    for k in PARAM_METRICS:
        out.setdefault(k, None)
    if col.with_q:
        sq, ab = np.concatenate(col.sq), np.concatenate(col.abs)
        m_sq, lo_sq, hi_sq = track_bootstrap(sq, tracks, n_boot=n_boot, seed=boot_seed)
        m_ab, lo_ab, hi_ab = track_bootstrap(ab, tracks, n_boot=n_boot, seed=boot_seed)
        out["per_param"] = {
            name: {
                "mse_q": _summary(m_sq[i], lo_sq[i], hi_sq[i]),
                "mae": _summary(m_ab[i], lo_ab[i], hi_ab[i]),
                "unit": specs[i].unit,
            }
            for i, name in enumerate(col.param_names)
        }
    else:
        out["per_param"] = None
    return out


# ---------------------------------------------------------------------------------- public API

_BASELINE_CACHE: dict[tuple, dict] = {}


def baseline_key(
    config: RunConfig,
    *,
    source: Optional[str] = None,
    split: str = "test",
    profile: Optional[Profile] = None,
    max_tracks: Optional[int] = None,
    n_boot: int = 2000,
    boot_seed: int = 0,
) -> tuple:
    """What the baselines depend on: (synthesis, analysis, source, split, profile name and
    hash, seed) plus the track cap and the bootstrap's size and seed."""
    profile = profile or config.resolved_profile()
    # the authors' simplified-compressor switch changes the analysis chain; appended only when set,
    # so the keys (and cached files) of every other configuration stay as they were
    tc_bug = ("authors_time_constant_bug",) if config.authors_time_constant_bug else ()
    return (
        config.synthesis, config.analysis, source or config.source, split, profile.name, profile_hash(profile),
        int(config.seed), max_tracks, int(n_boot), int(boot_seed), "per-example",
        proxy_weights_digest(config.analysis),
    ) + tc_bug


def _cache_file(cache_dir: PathLike, key: tuple) -> Path:
    digest = hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"baselines-{digest}.json"


def _cached_baselines(key: tuple, cache_dir: Optional[PathLike]) -> Optional[dict]:
    if key in _BASELINE_CACHE:
        if cache_dir is not None and not _cache_file(cache_dir, key).exists():
            _store_baselines(key, _BASELINE_CACHE[key], cache_dir)
        return json.loads(json.dumps(_BASELINE_CACHE[key]))
    if cache_dir is not None:
        path = _cache_file(cache_dir, key)
        if path.exists():
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                return None
            if record.get("key") == list(key):
                _BASELINE_CACHE[key] = record["baselines"]
                return json.loads(json.dumps(record["baselines"]))
    return None


def _store_baselines(key: tuple, baselines: dict, cache_dir: Optional[PathLike]) -> None:
    _BASELINE_CACHE[key] = json.loads(json.dumps(baselines))
    if cache_dir is not None:
        write_text_atomic(_cache_file(cache_dir, key), json.dumps({"key": list(key), "baselines": baselines}, indent=1))


def clear_baseline_cache() -> None:
    """Forget the baselines remembered in this process (files in a ``cache_dir`` stay)."""
    _BASELINE_CACHE.clear()


def _check_length(config: RunConfig, profile: Profile) -> None:
    try:
        from .encoders import min_samples
    except ImportError:  # encoders not installed: the network itself will complain
        return
    need = min_samples(config.encoder, mee_width=profile.mee_width)
    if profile.clip_samples < need:
        raise ValueError(
            f"profile {profile.name!r} has {profile.clip_samples}-sample clips; the {config.encoder.upper()} "
            f"encoder needs at least {need}"
        )


def evaluate(
    model=None,
    *,
    config: Optional[RunConfig] = None,
    source: Optional[str] = None,
    split: str = "test",
    profile: Union[Profile, str, None] = None,
    baselines: Union[bool, Sequence[str]] = True,
    analysis: Optional[Chain] = None,
    max_tracks: Optional[int] = None,
    n_boot: int = 2000,
    boot_seed: int = 0,
    batch_size: Optional[int] = None,
    num_workers: int = 0,
    cache_dir: Optional[PathLike] = None,
    checkpoint: Optional[PathLike] = None,
    log: Log = None,
) -> dict:
    """Evaluate ``model`` (a :class:`beafx.training.TrainedModel`, or None for the baselines
    alone) on the fixed test set and return one JSON-able dict::

        {"model": {"mel": {"mean": m, "ci": [lo, hi]}, "mse_y": ..., "mrstft": ..., "mse_q": ...,
                   "mse_q_identifiable": ..., "per_param": {name: {"mse_q", "mae", "unit"}}},
         "baselines": {"random": {...}, "xy": {...}, "mean_q": {...}, "oracle": {...} or None},
         "comparison": {metric: {"best_baseline", "ratio", "beats", "separated"}},
         "run": {profile, profile_hash, seed, source, split, n_examples, n_tracks, commit, config, checkpoint, ...}}

    ``config`` defaults to the model's; ``source`` overrides its source; ``split`` is
    ``test`` (default), ``valid``, ``train`` or ``all`` (every track, splits pooled);
    ``profile`` overrides the run's profile (its clip length, test repeats and track cap);
    ``baselines``: True (all), False (none) or names; ``analysis``: a chain to use instead of
    ``make(config.analysis)`` (tests pass the synthesis chain to get an exact oracle);
    ``max_tracks`` caps the tracks; ``n_boot``/``boot_seed``: the bootstrap; the random
    baseline is seeded by ``config.seed``. Baselines are cached (:func:`evaluate_baselines`).
    ``log`` receives progress lines."""
    if model is None and config is None:
        raise ValueError("evaluate needs a model or a config (RunConfig) to know the chains and the test set")
    config = config or model.config
    if isinstance(profile, str):
        profile = get_profile(profile, max_steps=config.max_steps)
    profile = profile or config.resolved_profile()
    if model is not None:
        _check_length(config, profile)
    wanted = list(BASELINES) if baselines is True else [] if baselines is False else list(baselines)
    unknown = [b for b in wanted if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; baselines: {', '.join(BASELINES)}")
    spec = source or config.source
    key = baseline_key(config, source=spec, split=split, profile=profile, max_tracks=max_tracks, n_boot=n_boot, boot_seed=boot_seed)
    cached = _cached_baselines(key, cache_dir) if (wanted and analysis is None) else None
    to_compute = [] if cached is not None else wanted
    started = time.perf_counter()
    dataset = eval_dataset(config, source=spec, split=split, profile=profile, max_tracks=max_tracks)
    if log is not None:
        what = (["model"] if model is not None else []) + to_compute
        log(
            f"evaluating {', '.join(what) or 'nothing'} on {len(dataset)} examples ({dataset.num_tracks} tracks x "
            f"{dataset.repeats}) of {spec} [{split}], {dataset.clip_samples / dataset.source.sample_rate:g} s clips"
            + (" (baselines from the cache)" if cached is not None else "")
        )
    result_baselines: Optional[dict] = None
    model_summary = None
    tracks: list[str] = []
    if model is not None or to_compute:
        bs = batch_size or max(1, min(16, profile.batch_size * 2))
        tracks, collectors, chain = _run_pass(
            dataset, config, model=model, baselines=to_compute, analysis=analysis,
            batch_size=bs, num_workers=num_workers, seed=config.seed, log=log,
        )
        specs = chain.param_specs
        if model is not None:
            model_summary = _summarise(collectors["model"], tracks, specs, n_boot=n_boot, boot_seed=boot_seed)
        if to_compute:
            result_baselines = {b: _summarise(collectors[b], tracks, specs, n_boot=n_boot, boot_seed=boot_seed) for b in to_compute}
            if analysis is None and to_compute == list(BASELINES):
                _store_baselines(key, result_baselines, cache_dir)
    if cached is not None:
        result_baselines = {b: cached[b] for b in wanted}
    seconds = time.perf_counter() - started
    result = {
        "model": model_summary,
        "baselines": result_baselines if wanted else {},
        "comparison": compare(model_summary, result_baselines or {}),
        "run": {
            "profile": profile.name,
            "profile_hash": profile_hash(profile),
            "profile_settings": asdict(profile),
            "seed": config.seed,
            "source": spec,
            "split": split,
            "n_examples": len(dataset),
            "n_tracks": dataset.num_tracks,
            "repeats": dataset.repeats,
            "clip_seconds": dataset.clip_samples / dataset.source.sample_rate,
            "synthesis": config.synthesis,
            "analysis": config.analysis,
            "same_parameters": RunConfig.same_parameters(dataset.chain, config.analysis_chain()),
            "bootstrap": {"resamples": int(n_boot), "seed": int(boot_seed), "level": 0.95, "unit": "track"},
            "baselines_cached": cached is not None,
            "example_tracks": list(tracks) if tracks else None,
            "seconds": round(seconds, 2),
            "commit": git_commit(),
            "config": config.to_dict(),
            "checkpoint": str(checkpoint) if checkpoint is not None else _checkpoint_of(model),
        },
    }
    if log is not None:
        log(f"evaluated in {seconds:.1f} s")
    return result


def _checkpoint_of(model) -> Optional[str]:
    meta = getattr(model, "metadata", None) or {}
    for k in ("path", "checkpoint", "checkpoint_path"):
        if meta.get(k):
            return str(meta[k])
    return None


def evaluate_baselines(
    config: RunConfig,
    *,
    source: Optional[str] = None,
    split: str = "test",
    profile: Union[Profile, str, None] = None,
    max_tracks: Optional[int] = None,
    n_boot: int = 2000,
    boot_seed: int = 0,
    batch_size: Optional[int] = None,
    num_workers: int = 0,
    cache_dir: Optional[PathLike] = None,
    log: Log = None,
) -> dict:
    """The four baselines alone for ``config``'s chains, source, split, profile and seed:
    ``{"random": {...}, "xy": {...}, "mean_q": {...}, "oracle": {...} or None}``. Remembered in
    this process and, with ``cache_dir``, in a JSON file there (keyed by :func:`baseline_key`),
    so the experiments compute them once per analysis chain, source and profile."""
    result = evaluate(
        None, config=config, source=source, split=split, profile=profile, baselines=True, max_tracks=max_tracks,
        n_boot=n_boot, boot_seed=boot_seed, batch_size=batch_size, num_workers=num_workers, cache_dir=cache_dir, log=log,
    )
    return result["baselines"]


def compare(model: Optional[dict], baselines: dict) -> dict:
    """Per audio metric (and MSE_q where defined): the best blind baseline (lowest mean among
    ``random``, ``xy``, ``mean_q``), the ratio model / best, whether the model's mean is lower
    (``beats``) and whether the two intervals are disjoint with the model below
    (``separated``). Empty without a model."""
    if model is None:
        return {}
    out = {}
    for metric in METRICS:
        mine = model.get(metric)
        if mine is None:
            continue
        rivals = [(b, baselines[b][metric]) for b in BLIND_BASELINES if baselines.get(b) and baselines[b].get(metric)]
        if not rivals:
            continue
        best_name, best = min(rivals, key=lambda r: r[1]["mean"])
        ratio = mine["mean"] / best["mean"] if best["mean"] > 0 else None
        out[metric] = {
            "best_baseline": best_name,
            "ratio": ratio,
            "beats": mine["mean"] < best["mean"],
            "separated": mine["ci"][1] < best["ci"][0],
        }
    return out


# ---------------------------------------------------------------------------------- table


def _cell(summary: Optional[dict]) -> str:
    if summary is None:
        return "-"
    return f"{summary['mean']:.4g} [{summary['ci'][0]:.4g}, {summary['ci'][1]:.4g}]"


def format_table(result: dict) -> str:
    """The readable table of :func:`evaluate`'s result: one row per estimator, ``mean [lo, hi]``
    per metric; a ``!`` marks every metric where the model is not below the constant guess
    (``mean_q``) or the best blind baseline, and a note below names them."""
    rows = []
    if result.get("model") is not None:
        rows.append(("model", result["model"]))
    for name in BASELINES:
        if name in (result.get("baselines") or {}):
            rows.append((name, result["baselines"][name]))
    header = ["estimator", *METRICS]
    lines_data = []
    comparison = result.get("comparison") or {}
    for name, summ in rows:
        if summ is None:
            lines_data.append([name, "undefined (the analysis chain's parameters are not the synthesis chain's)"])
            continue
        cells = [name]
        for metric in METRICS:
            cell = _cell(summ.get(metric))
            if name == "model" and metric in comparison and not comparison[metric]["beats"]:
                cell += " !"
            cells.append(cell)
        lines_data.append(cells)
    widths = [max(len(header[j]), *(len(r[j]) for r in lines_data if len(r) == len(header))) for j in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    for r in lines_data:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) if len(r) == len(header) else f"{r[0].ljust(widths[0])}  {r[1]}")
    run = result.get("run", {})
    out.append(
        f"({run.get('n_examples')} examples of {run.get('n_tracks')} tracks, {run.get('source')} [{run.get('split')}], "
        f"profile {run.get('profile')}; 95 % intervals from {run.get('bootstrap', {}).get('resamples')} track resamples)"
    )
    losing = [m for m, c in comparison.items() if not c["beats"]]
    if losing:
        base = result.get("baselines") or {}
        const = [m for m in losing if base.get("mean_q") and base["mean_q"].get(m) and
                 result["model"][m]["mean"] >= base["mean_q"][m]["mean"]]
        note = f"! the model is NOT better than the best blind baseline on: {', '.join(losing)}"
        if const:
            note += f" (it loses to the constant guess mean_q on: {', '.join(const)})"
        out.append(note)
    weak = [m for m, c in comparison.items() if c["beats"] and not c["separated"]]
    if weak:
        out.append(f"  (better on {', '.join(weak)} but the intervals overlap the best baseline's)")
    return "\n".join(out)
