"""Estimation for real use: a reference track -> the mastering chain's parameters -> the same
chain applied to another mix (book chapter "Mastering transfer", ``book/13_transfer``).

:class:`Estimator` wraps a :class:`beafx.training.TrainedModel` (always in eval mode):

- :meth:`Estimator.estimate` / :meth:`Estimator.estimate_file`: any audio (any sample rate,
  resampled to 44.1 kHz with ``torchaudio.functional.resample``; mono or stereo; any length
  from the encoder's minimum up) is cut into 50 %-overlapping windows of the profile's clip
  length (plus one window ending at the last sample when the hops do not reach it; a file
  shorter than one window is zero-padded to one window if it is at least the encoder's
  minimum, and the result says so; digitally silent windows are skipped). The network gives
  ``q_hat`` per window; the estimate is the per-parameter median, reported in physical units
  with the interquartile range over windows (:class:`Estimate`).
- :meth:`Estimator.apply` / :meth:`Estimator.apply_file`: the analysis chain (eval mode) with
  the median ``q`` applied to another mix (channels kept: the effects link them), then scaled
  so that its sample peak is :data:`OUTPUT_PEAK_DBFS`; the gain is reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .data.clips import SILENT_PEAK

#: beafx's working rate: everything is resampled to it.
SAMPLE_RATE = 44100
#: Sample peak of the written mix after the chain (dBFS).
OUTPUT_PEAK_DBFS = -1.0
#: Windows per network call (bounds memory on long files).
WINDOW_BATCH = 8

PathLike = Union[str, Path]
AudioLike = Union[np.ndarray, Tensor]


@dataclass
class Estimate:
    """The estimate of one reference: ``q`` ``(C,)`` (the median over windows), ``q_windows``
    ``(W, C)``, the chain's parameter names, specs and what was done to the input."""

    q: Tensor
    q_windows: Tensor
    param_names: list[str]
    param_specs: tuple
    analysis: str
    sample_rate: int
    channels: int
    seconds: float
    windows: int
    window_seconds: float
    hop_seconds: float
    padded: bool = False
    skipped_silent: int = 0
    notes: list[str] = field(default_factory=list)
    source: Optional[str] = None

    def parameters(self) -> dict[str, dict[str, Any]]:
        """Per parameter: ``value`` (physical, from the median ``q``), ``unit``, ``q``, and
        ``iqr`` ``[p25, p75]`` / ``spread`` (p75 - p25) of the physical values over windows."""
        out = {}
        for i, (name, spec) in enumerate(zip(self.param_names, self.param_specs)):
            phys = spec.map_unchecked(self.q_windows[:, i].double()).numpy()
            p25, p75 = np.percentile(phys, [25, 75])
            out[name] = {
                "value": float(spec.map_unchecked(self.q[i].double())),
                "unit": spec.unit,
                "q": float(self.q[i]),
                "iqr": [float(p25), float(p75)],
                "spread": float(p75 - p25),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (what ``beafx estimate`` prints)."""
        return {
            "file": self.source,
            "analysis": self.analysis,
            "sample_rate": self.sample_rate,
            "resampled_to": SAMPLE_RATE if self.sample_rate != SAMPLE_RATE else None,
            "channels": self.channels,
            "seconds": round(self.seconds, 3),
            "windows": self.windows,
            "window_seconds": self.window_seconds,
            "hop_seconds": self.hop_seconds,
            "padded": self.padded,
            "skipped_silent_windows": self.skipped_silent,
            "notes": list(self.notes),
            "q": [float(v) for v in self.q],
            "parameters": self.parameters(),
        }


def read_audio(path: PathLike) -> tuple[np.ndarray, int]:
    """``(audio (channels, samples) float32, sample_rate)`` of any file soundfile reads.
    Raises ``FileNotFoundError`` when missing and ``ValueError`` when unreadable or empty."""
    import soundfile as sf

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no audio file at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an audio file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.SoundFileError, OSError, TypeError) as err:
        raise ValueError(f"cannot read audio from {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path} holds no samples")
    return np.ascontiguousarray(data.T), int(rate)


def write_audio(path: PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
    """Write ``audio`` ``(channels, samples)`` with soundfile: 24-bit PCM where the format
    allows it (wav, flac, aiff), the format's default otherwise. Returns the subtype written.
    Raises ``ValueError`` for an unknown extension or an unwritable path."""
    import soundfile as sf

    path = Path(path).expanduser()
    fmt = path.suffix.lstrip(".").upper()
    formats = sf.available_formats()
    if fmt not in formats:
        raise ValueError(f"cannot write {path}: unknown audio extension {path.suffix!r} (use .wav or .flac)")
    subtype = "PCM_24" if sf.check_format(fmt, "PCM_24") else sf.default_subtype(fmt)
    try:
        sf.write(str(path), np.ascontiguousarray(audio.T), sample_rate, subtype=subtype)
    except (RuntimeError, sf.SoundFileError, OSError) as err:
        raise ValueError(f"cannot write {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    return subtype


def check_writable(path: PathLike) -> None:
    """Fail early (``ValueError``) if ``path`` cannot be written as audio: unknown extension,
    missing folder, a folder in the way, or no write permission."""
    import os

    import soundfile as sf

    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    if path.suffix.lstrip(".").upper() not in sf.available_formats():
        raise ValueError(f"cannot write {path}: unknown audio extension {path.suffix!r} (use .wav or .flac)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ValueError(f"cannot write {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise ValueError(f"cannot write {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {path}: permission denied")


def _as_channels(audio: AudioLike, what: str) -> Tensor:
    """``(samples,)`` or ``(channels, samples)`` -> float32 ``(channels, samples)``."""
    x = torch.as_tensor(np.asarray(audio) if not isinstance(audio, Tensor) else audio).detach()
    if not x.is_floating_point():
        raise ValueError(f"{what} must be floating-point audio, got {x.dtype}")
    x = x.to(torch.float32).cpu()
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2:
        raise ValueError(f"{what} must be (samples,) or (channels, samples), got shape {tuple(x.shape)}")
    if x.shape[0] > 16 and x.shape[1] <= 16:
        raise ValueError(f"{what} has shape {tuple(x.shape)}: pass (channels, samples), not (samples, channels)")
    if x.shape[1] == 0:
        raise ValueError(f"{what} holds no samples")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or Inf")
    return x


def to_working_rate(audio: Tensor, sample_rate: int) -> Tensor:
    """``audio`` ``(channels, samples)`` resampled from ``sample_rate`` to 44.1 kHz."""
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if int(sample_rate) == SAMPLE_RATE:
        return audio
    import torchaudio.functional as AF

    return AF.resample(audio, int(sample_rate), SAMPLE_RATE)


def window_starts(num_samples: int, window: int) -> list[int]:
    """Starts of 50 %-overlapping windows of ``window`` samples over ``num_samples`` samples
    (``num_samples >= window``): every hop of ``window // 2``, plus one window ending at the
    last sample when the hops do not reach it."""
    if num_samples < window:
        raise ValueError(f"need at least {window} samples for one window, got {num_samples}")
    hop = max(1, window // 2)
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


class Estimator:
    """Blind estimation with a trained model: ``Estimator(model)`` where ``model`` is a
    :class:`beafx.training.TrainedModel` or anything :func:`beafx.training.load_model` opens
    (run folder, ``.ckpt``, exported ``.pt``). ``device``: where the network runs (the chain
    always runs on the CPU)."""

    def __init__(self, model, *, device: Union[str, torch.device, None] = None) -> None:
        from .training.checkpoint import TrainedModel, load_model

        self.checkpoint: Optional[str] = None
        if not isinstance(model, TrainedModel):
            self.checkpoint = str(model)
            model = load_model(model)
        self.model = model
        if device is not None:
            self.model.network.to(device)
        self.model.network.eval()
        self.window = int(model.profile.clip_samples)
        self.min_samples = int(getattr(model.network, "min_samples", 0) or self._encoder_min())
        self.chain = model.analysis_chain().eval()
        self.config = model.config

    def _encoder_min(self) -> int:
        from .encoders import min_samples

        return min_samples(self.model.config.encoder, mee_width=self.model.config.mee_width)

    # ------------------------------------------------------------------ estimation

    @torch.no_grad()
    def estimate(self, audio: AudioLike, sample_rate: int, *, source: Optional[str] = None) -> Estimate:
        """Estimate the chain's parameters from ``audio`` ``(samples,)`` or ``(channels,
        samples)`` at ``sample_rate`` (see the module docstring)."""
        x = _as_channels(audio, "audio")
        original_rate = int(sample_rate)
        seconds = x.shape[1] / original_rate if original_rate > 0 else float("nan")
        x = to_working_rate(x, sample_rate)
        notes: list[str] = []
        n = x.shape[1]
        padded = False
        if n < self.window:
            if n < self.min_samples:
                raise ValueError(
                    f"the audio is {n / SAMPLE_RATE:.2f} s long ({n} samples at 44.1 kHz); the "
                    f"{self.config.encoder.upper()} encoder needs at least {self.min_samples / SAMPLE_RATE:.2f} s "
                    f"({self.min_samples} samples)"
                )
            x = torch.nn.functional.pad(x, (0, self.window - n))
            padded = True
            notes.append(
                f"the audio ({n / SAMPLE_RATE:.2f} s) is shorter than one {self.window / SAMPLE_RATE:g} s window: "
                "zero-padded to one window"
            )
        starts = window_starts(x.shape[1], self.window)
        loud = [s for s in starts if float(x[:, s : s + self.window].abs().max()) >= SILENT_PEAK]
        skipped = len(starts) - len(loud)
        if not loud:
            raise ValueError("the audio is digitally silent (every window's peak is below 1e-5)")
        if skipped:
            notes.append(f"{skipped} of {len(starts)} windows are digitally silent and were skipped")
        self.model.network.eval()
        q_windows = torch.cat([
            self.model.predict(torch.stack([x[:, s : s + self.window] for s in loud[i : i + WINDOW_BATCH]])).float().cpu()
            for i in range(0, len(loud), WINDOW_BATCH)
        ]).clamp(0.0, 1.0)
        q = torch.quantile(q_windows.double(), 0.5, dim=0).float()
        return Estimate(
            q=q,
            q_windows=q_windows,
            param_names=list(self.chain.param_names),
            param_specs=tuple(self.chain.param_specs),
            analysis=self.config.analysis,
            sample_rate=original_rate,
            channels=int(x.shape[0]),
            seconds=float(seconds),
            windows=len(loud),
            window_seconds=self.window / SAMPLE_RATE,
            hop_seconds=(self.window // 2) / SAMPLE_RATE,
            padded=padded,
            skipped_silent=skipped,
            notes=notes,
            source=source,
        )

    def estimate_file(self, path: PathLike) -> Estimate:
        """:meth:`estimate` on an audio file (any format soundfile reads)."""
        audio, rate = read_audio(path)
        return self.estimate(audio, rate, source=str(path))

    # ------------------------------------------------------------------ transfer

    @torch.no_grad()
    def apply(
        self, mix: AudioLike, sample_rate: int, q: Union[Estimate, Tensor, None] = None, *, reference: Optional[AudioLike] = None,
        reference_rate: Optional[int] = None,
    ) -> tuple[np.ndarray, float]:
        """The analysis chain with ``q`` (an :class:`Estimate`, a ``(C,)`` tensor, or None to
        estimate from ``reference``) applied to ``mix`` ``(samples,)`` / ``(channels,
        samples)`` at ``sample_rate``. Returns ``(audio (channels, samples) float32 at 44.1 kHz,
        gain_db)`` where ``gain_db`` scaled the chain's output to a peak of
        :data:`OUTPUT_PEAK_DBFS`."""
        if q is None:
            if reference is None:
                raise ValueError("apply needs q (an Estimate or a (C,) tensor) or a reference to estimate it from")
            q = self.estimate(reference, reference_rate or sample_rate)
        q_vec = q.q if isinstance(q, Estimate) else torch.as_tensor(q, dtype=torch.float32)
        if q_vec.shape != (self.chain.num_params,):
            raise ValueError(f"q must have shape ({self.chain.num_params},), got {tuple(q_vec.shape)}")
        x = to_working_rate(_as_channels(mix, "mix"), sample_rate)
        y = self.chain.eval()(x[None], q_vec[None].clamp(0.0, 1.0))[0]
        peak = float(y.abs().max())
        if not math.isfinite(peak):
            raise ValueError("the chain produced NaN/Inf on this mix")
        if peak <= 0.0:
            return y.numpy(), 0.0
        target = 10.0 ** (OUTPUT_PEAK_DBFS / 20.0)
        gain = target / peak
        return (y * gain).numpy().astype(np.float32), 20.0 * math.log10(gain)

    def apply_file(self, mix_path: PathLike, out_path: PathLike, q: Union[Estimate, Tensor]) -> dict[str, Any]:
        """Read ``mix_path``, :meth:`apply` ``q``, write ``out_path`` at 44.1 kHz; returns what
        was done (paths, channels, seconds, gain, peak, subtype)."""
        check_writable(out_path)
        mix, rate = read_audio(mix_path)
        out, gain_db = self.apply(mix, rate, q)
        subtype = write_audio(out_path, out, SAMPLE_RATE)
        return {
            "mix": str(mix_path),
            "out": str(out_path),
            "sample_rate": SAMPLE_RATE,
            "mix_sample_rate": rate,
            "channels": int(out.shape[0]),
            "seconds": round(out.shape[1] / SAMPLE_RATE, 3),
            "gain_db": round(gain_db, 3),
            "peak_dbfs": OUTPUT_PEAK_DBFS if float(np.abs(out).max()) > 0 else None,
            "subtype": subtype,
            "note": f"the chain's output was scaled by {gain_db:+.2f} dB to a sample peak of {OUTPUT_PEAK_DBFS:g} dBFS",
        }


@torch.no_grad()
def round_trip(estimator: "Estimator", audio: AudioLike, sample_rate: int, q_true: Tensor) -> dict[str, Any]:
    """The mastering-transfer check on one recording: master ``audio`` with the model's
    *synthesis* chain at ``q_true`` ``(C,)``, estimate the master's parameters, apply them to the
    original, and compare Mel distances to the master. Returns ``{"mel_original",
    "mel_transfer", "q_true", "q_hat"}``: the transfer works when ``mel_transfer <
    mel_original``."""
    from .losses import mel_loss

    x = to_working_rate(_as_channels(audio, "audio"), sample_rate)
    synthesis = estimator.model.synthesis_chain()
    master = synthesis(x[None], q_true[None].to(torch.float32))[0]
    estimate = estimator.estimate(master, SAMPLE_RATE)
    transfer, _ = estimator.apply(x, SAMPLE_RATE, estimate)
    transfer = torch.from_numpy(transfer)
    return {
        "mel_original": float(mel_loss(x[None], master[None])),
        "mel_transfer": float(mel_loss(transfer[None], master[None])),
        "q_true": [float(v) for v in q_true],
        "q_hat": [float(v) for v in estimate.q],
    }


def round_trips(
    estimator: "Estimator", paths: Sequence[PathLike], *, masters: int = 3, seed: int = 2026, seconds: float = 60.0
) -> dict[str, Any]:
    """:func:`round_trip` on each recording of ``paths`` (its first ``seconds``) with ``masters``
    random synthesis parameter draws each (seeded). Returns ``{"rounds": [...], "n",
    "transfer_better"}`` (how many transfers came closer to their master than the original)."""
    rng = np.random.default_rng(seed)
    num_params = estimator.model.synthesis_chain().num_params
    rounds = []
    for path in paths:
        audio, rate = read_audio(path)
        audio = audio[..., : int(seconds * rate)]
        for _ in range(masters):
            q = torch.from_numpy(rng.random(num_params).astype(np.float32))
            result = round_trip(estimator, audio, rate, q)
            result["recording"] = Path(path).name
            rounds.append(result)
    better = sum(r["mel_transfer"] < r["mel_original"] for r in rounds)
    return {"rounds": rounds, "n": len(rounds), "transfer_better": better, "seed": seed, "seconds": seconds}
