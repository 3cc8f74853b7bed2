"""Bench group ``data``: how fast :class:`~beafx.data.EffectDataset` makes training examples,
per available source, against what a training step consumes.

An example is a 10 s clip (``quick``: 2 s) drawn, peak-normalised and passed through the full
synthesis chain ``peq+compressor+clipper`` on one torch thread, as in one DataLoader worker.
The baseline is the real training step (:mod:`beafx.bench.training`): TFE, the same chain as
the analysis chain, Mel loss, forward, backward and Adam on a batch of 16 clips of the same
length (timed with all torch threads, as training runs), divided by 16. A ratio > 1 means one
worker makes examples faster than a step consumes them; ``make_loader`` runs several workers.
If an effect of the chain is missing from this installation, the lines say which part was
timed.

Sources: ``synthetic`` always; ``debian-music`` when installed; ``musdb:$MUSDB_PATH`` when
``MUSDB_PATH`` is set (musdb's own variable) and ffmpeg is installed; ``folder:$BEAFX_BENCH_FOLDER``
when set. Folder and Debian sources are decoded into the cache on first use (not timed).
"""
from __future__ import annotations

import os

import torch

from . import Line, register, timeit

CHAIN = "peq+compressor+clipper"
BATCH = 16


def _chain() -> str:
    """The full chain, or the part of it this installation has (named in each line)."""
    from ..effects import available

    names = [n for n in CHAIN.split("+") if n in available()]
    if not names:
        raise ValueError(f"none of the effects of {CHAIN} is available")
    return "+".join(names)


def _sources() -> list[str]:
    from ..data.debian import installed
    from ..data.musdb_source import ffmpeg_available

    specs = ["synthetic"]
    if installed():
        specs.append("debian-music")
    if os.environ.get("MUSDB_PATH") and ffmpeg_available():
        specs.append(f"musdb:{os.environ['MUSDB_PATH']}")
    if os.environ.get("BEAFX_BENCH_FOLDER"):
        specs.append(f"folder:{os.environ['BEAFX_BENCH_FOLDER']}")
    return specs


def _consumer_seconds_per_example(spec: str, seconds: float, repeat: int) -> float:
    """A real TFE training step (Mel loss, analysis chain ``spec``) on a batch of 16 clips of
    ``seconds``, per example."""
    from dataclasses import replace

    from ..profiles import get_profile
    from .training import step_parts

    profile = replace(get_profile("cpu"), clip_seconds=seconds, batch_size=BATCH)
    return step_parts("tfe", spec, profile, repeat=repeat)["step"] / BATCH


@register("data")
def bench_data(quick: bool) -> list[Line]:
    from ..data import EffectDataset, open_source
    from ..data.dataset import default_num_workers
    from ..data.synthetic import SyntheticSource

    seconds = 2.0 if quick else 10.0
    samples = int(seconds * 44100)
    n_examples = 2 if quick else 8
    threads = torch.get_num_threads()
    lines: list[Line] = []
    try:
        spec = _chain()
        chain_note = "" if spec == CHAIN else f" (only {spec} available)"
        consumer = _consumer_seconds_per_example(spec, seconds, repeat=1 if quick else 2)
        torch.set_num_threads(1)
        # Synthesis alone: x real time on one core.
        synth = SyntheticSource()
        starts = [synth.tracks("train")[i].num_samples // 3 for i in range(n_examples)]
        t_render = timeit(lambda: [synth.read("train", i, s, samples) for i, s in enumerate(starts)], repeat=1 if quick else 3)
        lines.append(Line("data", f"synthetic render, {seconds:.0f} s clips", t_render / n_examples,
                          note=f"{seconds * n_examples / t_render:.0f}x real time on one core (target >= 50x)",
                          extra={"x_real_time": seconds * n_examples / t_render}))
        for source_spec in _sources():
            try:
                source = open_source(source_spec)
            except Exception as err:  # a broken optional source must not stop the bench
                lines.append(Line("data", f"examples, {source_spec}", None, note=f"unavailable: {err}"))
                continue
            ds = EffectDataset(source, "train", spec, clip_samples=samples, profile="paper")
            ds[0]  # warm-up: JIT kernels, caches
            t = timeit(lambda: [ds[i] for i in range(1, n_examples + 1)], repeat=1 if quick else 2, warmup=0) / n_examples
            workers = max(1, default_num_workers())
            lines.append(
                Line(
                    "data", f"examples, {source_spec}, {seconds:.0f} s, full chain{chain_note}, 1 thread", t,
                    baseline="TFE train step per example (full chain, Mel, batch 16)", ratio=consumer / t,
                    note=f"{1 / t:.1f} examples/s per worker ({workers / t:.1f}/s with {workers} worker{'s' if workers > 1 else ''}) vs a TFE step "
                         f"consuming {1 / consumer:.1f}/s",
                    extra={"examples_per_s": 1 / t, "consumer_examples_per_s": 1 / consumer, "workers": workers},
                )
            )
    finally:
        torch.set_num_threads(threads)
    return lines
