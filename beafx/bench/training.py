"""Bench group ``training``: what a training step costs, per encoder, with the full chain.

A step is the paper's: ``q_hat = network(y)``, ``y_hat = chain(x, q_hat)``, Mel loss, backward,
Adam. It is timed on a batch of the ``cpu`` profile (16 x 3 s; ``quick``: the ``smoke`` sizes)
for MEE (at the profile's width), TE and TFE with ``peq+compressor+clipper``. The same batch
is also timed piece by piece (encoder forward+backward, analysis chain forward+backward, Mel
loss forward+backward) and the data side (one worker making the batch's examples), so a line
says where a step's time goes. :func:`run_costs` turns step times into the cost of a whole
``cpu`` run per encoder and analysis chain (written to ``results/<profile>/costs.json`` by
``beafx bench --costs``), the file the experiments' dry run reads.
"""
from __future__ import annotations

import math
import time
from typing import Optional

import torch

from . import Line, register, timeit

FULL_CHAIN = "peq+compressor+clipper"
ENCODERS = ("mee", "te", "tfe")


def _batch(profile, num_params: int, *, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = profile.clip_samples
    x = torch.randn(profile.batch_size, 1, n, generator=gen) * 0.1
    y = torch.tanh(3 * x)
    q = torch.rand(profile.batch_size, num_params, generator=gen)
    return x, y, q


def step_parts(encoder: str, chain_spec: str, profile, *, repeat: int = 2) -> dict[str, float]:
    """Seconds per batch of ``profile`` for: the whole step (``step``), the encoder + head
    forward+backward (``encoder``), the analysis chain forward+backward (``chain``) and the Mel
    loss forward+backward (``loss``)."""
    from ..effects import make
    from ..encoders import AnalysisNetwork
    from ..losses import mel_loss

    chain = make(chain_spec)
    net = AnalysisNetwork(encoder, chain.num_params, mee_width=profile.mee_width)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, y, q = _batch(profile, chain.num_params)

    def step():
        opt.zero_grad()
        loss = mel_loss(chain(x, net(y)), y)
        loss.backward()
        opt.step()

    def enc():
        net(y).sum().backward()

    def chn():
        qq = q.clone().requires_grad_(True)
        chain(x, qq).square().mean().backward()

    y_hat = chain(x, q).detach()

    def loss():
        yy = y_hat.clone().requires_grad_(True)
        mel_loss(yy, y).backward()

    return {
        "step": timeit(step, repeat=repeat),
        "encoder": timeit(enc, repeat=repeat),
        "chain": timeit(chn, repeat=repeat),
        "loss": timeit(loss, repeat=repeat),
    }


def data_seconds(chain_spec: str, profile, *, n: Optional[int] = None) -> float:
    """Seconds for one worker (one torch thread) to make a batch of ``profile`` from the
    synthetic source through the synthesis chain ``chain_spec``."""
    from ..data import EffectDataset

    ds = EffectDataset("synthetic", "train", chain_spec, profile=profile)
    n = n or profile.batch_size
    ds[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            ds[i]
        per = (time.perf_counter() - t0) / n
    finally:
        torch.set_num_threads(threads)
    return per * profile.batch_size


@register("training")
def bench_training(quick: bool) -> list[Line]:
    from ..data import default_num_workers
    from ..profiles import get_profile

    profile = get_profile("smoke" if quick else "cpu")
    size = f"batch {profile.batch_size} x {profile.clip_seconds:g} s"
    data = data_seconds(FULL_CHAIN, profile, n=2 if quick else None)
    workers = max(1, default_num_workers())
    lines = []
    for encoder in ENCODERS:
        parts = step_parts(encoder, FULL_CHAIN, profile, repeat=1 if quick else 2)
        step = parts["step"]
        label = "MEE-s" if encoder == "mee" and profile.mee_width < 1 else encoder.upper()
        share = ", ".join(f"{k} {parts[k] / step:.0%}" for k in ("encoder", "chain", "loss"))
        lines.append(
            Line(
                "training", f"train step {label}, {FULL_CHAIN}, Mel, {size}", step,
                note=f"{profile.batch_size / step:.1f} examples/s; of the step: {share}; "
                     f"data {data / step:.0%} of it per worker ({workers} worker{'s' if workers > 1 else ''} run beside it)",
                extra={"examples_per_s": profile.batch_size / step, **{f"{k}_s": v for k, v in parts.items()},
                       "data_s_one_worker": data, "workers": workers},
            )
        )
    return lines


def run_costs(profile_name: str = "cpu", *, chains: Optional[list[str]] = None, repeat: int = 2,
              measured: Optional[dict[str, float]] = None) -> dict:
    """Wall time of a whole run of ``profile_name`` per encoder and analysis chain, from
    measured parts: a step is (encoder + head forward+backward) + (analysis chain
    forward+backward) + (Mel loss forward+backward), each timed once on the profile's batch;
    a run is ``steps x step + validations x batches x forward`` (a forward taken as a third of
    a step), and its evaluation ``test batches x forward x 2`` (model and baselines).
    ``measured``: whole-run wall times actually observed (``{"tfe|peq": seconds}``), stored
    beside the estimates and used to calibrate them (``run_s`` = parts x measured/parts).
    Returns the JSON that ``results/<profile>/costs.json`` holds."""
    from ..data import EffectDataset
    from ..effects import available, make
    from ..encoders import AnalysisNetwork
    from ..losses import mel_loss
    from ..profiles import get_profile
    from ..training.config import RunConfig
    from ..training.run import plan_steps
    from . import machine

    profile = get_profile(profile_name)
    chains = chains or [c for c in ("peq", "geq", "compressor", "simple_compressor", "hybrid_compressor",
                                    "clipper", "taylor", "chebyshev", FULL_CHAIN)
                        if all(n in available() for n in c.split("+"))]
    sizes = {s: len(EffectDataset("synthetic", s, "clipper", profile=profile)) for s in ("train", "valid", "test")}
    total, every = plan_steps(RunConfig(profile=profile_name), sizes["train"])
    batches = {s: math.ceil(n / profile.batch_size) for s, n in sizes.items()}
    x, y, _ = _batch(profile, 1)
    encoder_s = {}
    for encoder in ENCODERS:
        net = AnalysisNetwork(encoder, 15, mee_width=profile.mee_width)
        encoder_s[encoder] = timeit(lambda: net(y).sum().backward(), repeat=repeat)
    chain_s = {}
    for spec in chains:
        chain = make(spec)
        q = torch.rand(profile.batch_size, chain.num_params, generator=torch.Generator().manual_seed(0))
        chain_s[spec] = timeit(lambda: chain(x, q.clone().requires_grad_(True)).square().mean().backward(), repeat=repeat)
    y_hat = torch.tanh(2 * x)
    loss_s = timeit(lambda: mel_loss(y_hat.clone().requires_grad_(True), y).backward(), repeat=repeat)
    runs = {}
    for encoder in ENCODERS:
        for spec in chains:
            step = encoder_s[encoder] + chain_s[spec] + loss_s
            forward = step / 3
            run_s = total * step + (total // every) * batches["valid"] * forward
            runs[f"{encoder}|{spec}"] = {
                "step_s": step, "run_s": run_s, "eval_s": 2 * batches["test"] * forward, "steps": total,
                "measured_run_s": (measured or {}).get(f"{encoder}|{spec}"),
            }
    # Calibrate on whole runs actually timed: data loading, validation and the trainer's overhead
    # are not in the parts (measured here: the sum of parts is ~0.7 of a real run).
    ratios = [r["measured_run_s"] / r["run_s"] for r in runs.values() if r["measured_run_s"]]
    calibration = sum(ratios) / len(ratios) if ratios else 1.0
    for r in runs.values():
        r["run_s_parts"] = r["run_s"]
        r["run_s"] = r["run_s"] * calibration
    return {
        "calibration": calibration,
        "profile": profile_name, "machine": machine(), "steps": total, "validations": total // every,
        "parts_s": {"encoder": encoder_s, "chain": chain_s, "mel_loss": loss_s},
        "method": "sum of measured parts per batch (beafx.bench.training.run_costs); measured_run_s where a whole run was timed",
        "runs": runs,
    }
