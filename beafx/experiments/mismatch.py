"""The mismatch experiment: does a whole-chain estimator transfer to effects it was not trained on?

The masters are made by an independent implementation of the mastering chain, pedalboard's
JUCE effects (an optional extra: ``pip install pedalboard``), with parameters mapped from
beafx's (:func:`pedalboard_params`); the estimator, trained on beafx's chain, estimates q
from them, and beafx's analysis chain re-synthesises from the dry mix. Scored with the Mel
loss against the same baselines as the experiments (``xy``, ``mean_q``, ``random``), plus
``ours_true_q``: beafx's chain with the true q, i.e. how far apart the two implementations
are with identical settings (book chapter "Reproducing the paper's experiments"; issue 10).

The mapping (what pedalboard cannot express is stated, not hidden):

- EQ: ``LowShelfFilter``, three ``PeakFilter`` and ``HighShelfFilter`` with the same f0, gain and
  Q (JUCE's biquads from the same RBJ-style design; beafx's synthesis EQ is an exact IIR too);
- compressor: pedalboard's ``Compressor`` (threshold, ratio, attack, release; hard knee, its
  own level detector and ballistics), then ``Gain`` for the make-up: the knee is not mapped;
- clipper: ``Gain(drive)``, then ``Distortion(0 dB)`` (tanh) for hardness < 1 or ``Clipping(0
  dBFS)`` (hard) otherwise, then ``Gain(-drive)``: the offset and the cubic blend are not mapped.

Between effects the signal is DC-free and peak-normalised to 0 dBFS, as in beafx's ``Chain``.

    python -m beafx.experiments.mismatch --checkpoint demo:chain --out results/cpu/synthetic/mismatch/pedalboard.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor

from ..evaluation import track_bootstrap
from ..functional.levels import normalize_0dbfs
from ..profiles import SAMPLE_RATE

CHAIN = "peq+compressor+clipper"
BANDS = ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")
#: What the pedalboard chain does not reproduce of beafx's parameters.
UNMAPPED = ("compressor.knee_db", "clipper.offset", "clipper.hardness (only tanh vs hard)")


def _pedalboard():
    try:
        import pedalboard
    except ImportError:
        raise ImportError("the mismatch experiment needs pedalboard: pip install pedalboard") from None
    return pedalboard


def pedalboard_params(physical: dict[str, Tensor], i: int) -> dict[str, float]:
    """Example ``i``'s physical parameters (``chain.physical(q)``) as plain floats."""
    return {name: float(value.reshape(-1)[i]) for name, value in physical.items()}


def pedalboard_stages(p: dict[str, float]) -> list[list[Any]]:
    """The three stages (EQ, compressor, clipper) as lists of pedalboard plugins for the
    parameters ``p`` (names as ``Chain.param_names``)."""
    pb = _pedalboard()
    eq = []
    for band in BANDS:
        f0, gain, quality = (p[f"peq.{band}.{k}"] for k in ("f0", "gain_db", "quality"))
        cls = {"low_shelf": pb.LowShelfFilter, "high_shelf": pb.HighShelfFilter}.get(band, pb.PeakFilter)
        eq.append(cls(cutoff_frequency_hz=f0, gain_db=gain, q=quality))
    comp = [pb.Compressor(threshold_db=p["compressor.threshold_db"], ratio=p["compressor.ratio"],
                          attack_ms=p["compressor.attack_ms"], release_ms=p["compressor.release_ms"]),
            pb.Gain(gain_db=p["compressor.makeup_db"])]
    drive = p["clipper.drive_db"]
    curve = pb.Distortion(drive_db=0.0) if p["clipper.hardness"] < 1.0 else pb.Clipping(threshold_db=0.0)
    clip = [pb.Gain(gain_db=drive), curve, pb.Gain(gain_db=-drive)]
    return [eq, comp, clip]


def pedalboard_chain(x: Tensor, q: Tensor, sample_rate: int = SAMPLE_RATE, *, chain=None) -> Tensor:
    """``(batch, channels, samples)`` dry mixes through pedalboard's chain with beafx's
    ``peq+compressor+clipper`` parameters ``q`` ``(batch, 24)``; float32 like ``x``. ``chain``:
    the beafx chain whose ``physical`` maps ``q`` (default: a new ``make(CHAIN)``)."""
    from ..effects import make

    pb = _pedalboard()
    if x.dim() != 3 or q.dim() != 2 or q.shape[0] != x.shape[0]:
        raise ValueError(f"x must be (batch, channels, samples) and q (batch, 24); got {tuple(x.shape)}, {tuple(q.shape)}")
    chain = make(CHAIN, sample_rate=sample_rate) if chain is None else chain
    if q.shape[1] != chain.num_params:
        raise ValueError(f"q must have {chain.num_params} columns for {CHAIN}, got {q.shape[1]}")
    physical = chain.physical(q)
    out = []
    for i in range(x.shape[0]):
        signal = x[i : i + 1].detach().double()
        for stage in pedalboard_stages(pedalboard_params(physical, i)):
            signal = normalize_0dbfs(signal)
            audio = np.ascontiguousarray(signal[0].numpy().astype(np.float32))
            processed = pb.Pedalboard(stage)(audio, sample_rate)
            signal = torch.from_numpy(np.asarray(processed, dtype=np.float64))[None]
        out.append(signal[0])
    return torch.stack(out).to(x.dtype)


def _summary(values: np.ndarray, tracks: list) -> dict[str, Any]:
    mean, lo, hi = track_bootstrap(values, tracks)
    return {"mean": float(mean), "ci": [float(lo), float(hi)], "values": [float(v) for v in values]}


def run_mismatch(checkpoint: str, *, source: str = "synthetic", max_tracks: Optional[int] = None,
                 batch_size: int = 8) -> dict[str, Any]:
    """Mel of the estimator ``checkpoint`` (a whole-chain model) on pedalboard masters of the
    fixed test set of its own config (``source``'s test split), beside the baselines and the
    same estimator on beafx masters of the same examples."""
    from ..evaluation import eval_dataset
    from ..losses import mel_loss
    from ..training import load_model

    model = load_model(checkpoint)
    if model.config.synthesis != CHAIN:
        raise ValueError(f"the mismatch experiment needs a {CHAIN} model; {checkpoint} was trained on {model.config.synthesis}")
    dataset = eval_dataset(model.config, source=source, max_tracks=max_tracks)
    analysis = model.analysis_chain().eval()
    synthesis = model.synthesis_chain().eval()
    rows: dict[str, list[float]] = {k: [] for k in ("model", "model_on_beafx_masters", "xy", "mean_q", "random", "ours_true_q")}
    tracks: list = []
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    examples = [dataset.example(i) for i in range(len(dataset))]
    for first in range(0, len(examples), batch_size):
        batch = examples[first : first + batch_size]
        x = torch.stack([e.x for e in batch])
        q = torch.stack([e.q for e in batch])
        tracks += [e.track for e in batch]
        with torch.no_grad():
            y_pb = pedalboard_chain(x, q, model.sample_rate, chain=synthesis)
            y_ours = torch.stack([e.y for e in batch])
            q_hat = model.predict(y_pb)
            q_hat_ours = model.predict(y_ours)
            rand = torch.rand(q.shape, generator=generator)
            scores = {
                "model": mel_loss(analysis(x, q_hat), y_pb, reduction="none"),
                "model_on_beafx_masters": mel_loss(analysis(x, q_hat_ours), y_ours, reduction="none"),
                "xy": mel_loss(x, y_pb, reduction="none"),
                "mean_q": mel_loss(analysis(x, torch.full_like(q, 0.5)), y_pb, reduction="none"),
                "random": mel_loss(analysis(x, rand), y_pb, reduction="none"),
                "ours_true_q": mel_loss(synthesis(x, q), y_pb, reduction="none"),
            }
        for key, value in scores.items():
            rows[key] += value.tolist()
    metrics = {k: _summary(np.asarray(v), tracks) for k, v in rows.items()}
    diff = np.asarray(rows["model"]) - np.asarray(rows["xy"])
    d_mean, d_lo, d_hi = track_bootstrap(diff, tracks)
    return {
        "format": "beafx-mismatch/1",
        "checkpoint": str(checkpoint),
        "config": model.config.to_dict(),
        "source": source,
        "split": "test",
        "n_examples": len(tracks),
        "n_tracks": len(set(map(str, tracks))),
        "tracks": [str(t) for t in tracks],
        "implementation": "pedalboard " + _pedalboard().__version__,
        "unmapped": list(UNMAPPED),
        "metric": "mel",
        "metrics": metrics,
        "model_minus_xy": {"mean": float(d_mean), "ci": [float(d_lo), float(d_hi)]},
        "seconds": time.perf_counter() - start,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beafx.experiments.mismatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a whole-chain model (run folder, .ckpt, .pt or demo:NAME)")
    parser.add_argument("--source", default="synthetic")
    parser.add_argument("--max-tracks", type=int, default=None)
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args(argv)
    try:
        result = run_mismatch(args.checkpoint, source=args.source, max_tracks=args.max_tracks)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    m = result["metrics"]
    print(f"Mel on pedalboard masters: model {m['model']['mean']:.3f}, xy {m['xy']['mean']:.3f}, "
          f"mean_q {m['mean_q']['mean']:.3f}; on beafx masters: {m['model_on_beafx_masters']['mean']:.3f} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
