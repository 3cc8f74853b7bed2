"""Bench group ``compressor``: the DSP :class:`~beafx.effects.Compressor` against baselines.

Batch 16 x 10 s mono at 44.1 kHz (``quick``: 2 x 0.5 s), float32, a dynamic music-like signal.
Baselines, timed in the same run:

- the authors' approach (AUTHORS_CODE.md 2.3), re-implemented here: a numba ``@njit`` per-sample
  loop over one float32 example, called from Python once per example, forward only;
- pedalboard's C++ ``Compressor`` (JUCE), one call per example, forward only (if installed;
  benchmark-only, GPL, never a dependency);
- torchcomp's ``compexp_gain`` (if installed): forward and forward+backward. It has no knee and
  no make-up (added here as a multiplication), smooths the linear gain instead of the gain
  reduction in dB, and its ``ms2coef`` uses the 10-90 % rise-time convention
  ``1 - exp(-2200 / (ms * fs))`` (2.2x our ``tau``); we pass it the smoothing coefficients
  ``1 - alpha`` of our time constants directly, so both smooth at the same speed.

Ratios are baseline time / our time (> 1: we are faster). Thread counts are reported: our
kernel and torchcomp's use numba threads (``min(torch threads, NUMBA_NUM_THREADS)`` for ours;
both on the same numba threading layer, ``workqueue`` unless ``NUMBA_THREADING_LAYER`` says
otherwise), pedalboard and the authors' loop run on one thread; the ``1 thread`` lines give
the per-thread comparison directly. On a machine shared with other jobs the two-thread lines
can be no faster than the one-thread ones: compare lines of one run only.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from . import Line, register, timeit

FS = 44100


@njit(cache=True)
def _authors_loop(x, threshold, ratio, knee, alpha_a, alpha_r, makeup):  # pragma: no cover - bench only
    """The authors' style: one float32 example, clamp written into ``x``, per-sample libm calls."""
    n = x.shape[0]
    y = np.empty_like(x)
    state = 0.0
    for i in range(n):
        if abs(x[i]) < 1e-4:
            x[i] = 1e-4
        xg = 20.0 * math.log10(abs(x[i]))
        if 2.0 * (xg - threshold) < -knee:
            yg = xg
        elif knee > 0 and 2.0 * abs(xg - threshold) <= knee:
            yg = xg + (1.0 / ratio - 1.0) * (xg - threshold + knee / 2.0) ** 2 / (2.0 * knee)
        else:
            yg = threshold + (xg - threshold) / ratio
        xl = xg - yg
        if xl > state:
            state = alpha_a * state + (1.0 - alpha_a) * xl
        else:
            state = alpha_r * state + (1.0 - alpha_r) * xl
        y[i] = x[i] * 10.0 ** ((makeup - state) / 20.0)
    return y


def _signal(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    """Noise with random attack/decay envelopes (bursts every ~50 ms) plus a quiet tone."""
    g = torch.Generator().manual_seed(seed)
    hop = 2205
    frames = -(-n // hop)
    amp = torch.rand(batch, 1, frames, generator=g) ** 2
    env = amp.repeat_interleave(hop, dim=-1)[..., :n]
    decay = torch.exp(-torch.arange(n, dtype=torch.float32).remainder(hop) / 600.0)
    tone = 0.02 * torch.sin(2 * math.pi * 220.0 * torch.arange(n) / FS)
    return (env * decay * torch.randn(batch, 1, n, generator=g) + tone).float()


def _params(batch: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    from ..params import TABLE

    q = torch.rand(batch, 6, generator=g)
    return {s.name: s.to_physical(q[:, i]).float() for i, s in enumerate(TABLE["Compressor"])}


def _fwd_and_fwd_bwd(effect, x: torch.Tensor, q: torch.Tensor):
    """Two closures: ``effect(x, q)`` without gradients, and forward + backward to ``x`` and ``q``."""

    def fwd():
        with torch.no_grad():
            effect(x, q)

    def fwd_bwd():
        effect(x.clone().requires_grad_(), q.clone().requires_grad_()).square().mean().backward()

    return fwd, fwd_bwd


@register("compressor")
def bench(quick: bool) -> list[Line]:
    import numba

    from ..effects import Compressor, SimpleCompressor

    batch, n = (2, FS // 2) if quick else (16, 10 * FS)
    repeat = 3 if quick else 5
    x = _signal(batch, n)
    size = f"{batch} x {n / FS:g} s"
    comp = Compressor(sample_rate=FS)
    q = torch.rand(batch, 6, generator=torch.Generator().manual_seed(1))
    p = _params(batch)
    torch_threads = torch.get_num_threads()
    our_threads = max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS))
    threads = {"torch_threads": torch_threads, "numba_threads": our_threads}
    lines: list[Line] = []

    # --- ours
    ours_fwd, ours_fwd_bwd = _fwd_and_fwd_bwd(comp, x, q)
    t_fwd = timeit(ours_fwd, repeat=repeat)
    t_fb = timeit(ours_fwd_bwd, repeat=repeat)
    torch.set_num_threads(1)
    try:
        t_fwd1 = timeit(ours_fwd, repeat=repeat)
        t_fb1 = timeit(ours_fwd_bwd, repeat=repeat)
    finally:
        torch.set_num_threads(torch_threads)

    # --- the authors' approach
    qa = {k: v.double().numpy() for k, v in p.items()}
    alpha = {k: np.exp(-1.0 / (qa[k] * 1e-3 * FS)) for k in ("attack_ms", "release_ms")}

    def authors_fwd():
        xs = x.detach().cpu().numpy()
        out = np.empty_like(xs)
        for b in range(batch):
            out[b, 0] = _authors_loop(xs[b, 0].copy(), qa["threshold_db"][b], qa["ratio"][b], qa["knee_db"][b],
                                      alpha["attack_ms"][b], alpha["release_ms"][b], qa["makeup_db"][b])
        return torch.from_numpy(out)

    t_auth = timeit(authors_fwd, repeat=repeat)
    lines.append(Line("compressor", f"authors' numba loop per example, fwd ({size})", t_auth,
                      note="baseline; 1 thread; float32; not differentiable"))

    # --- pedalboard
    t_pb = None
    try:
        import pedalboard
    except ImportError:
        lines.append(Line("compressor", "pedalboard Compressor, fwd", None, note="skipped: pedalboard not installed"))
    else:
        boards = [pedalboard.Compressor(threshold_db=float(p["threshold_db"][b]), ratio=float(p["ratio"][b]),
                                        attack_ms=float(p["attack_ms"][b]), release_ms=float(p["release_ms"][b]))
                  for b in range(batch)]
        xs = x.numpy()

        def pedalboard_fwd():
            return [boards[b].process(xs[b], FS, reset=True) for b in range(batch)]

        t_pb = timeit(pedalboard_fwd, repeat=repeat)
        lines.append(Line("compressor", f"pedalboard Compressor per example, fwd ({size})", t_pb,
                          note="baseline; C++ (JUCE), 1 thread; hard knee, no make-up; not differentiable"))

    # --- torchcomp
    t_tc = t_tc_fb = None
    try:
        import torchcomp
    except ImportError:
        lines.append(Line("compressor", "torchcomp, fwd and fwd+bwd", None, note="skipped: torchcomp not installed"))
    else:
        coef = {k: (-torch.expm1(-1.0 / (p[k].double() * 1e-3 * FS))).float() for k in ("attack_ms", "release_ms")}

        def torchcomp_run(grad: bool):
            xx = x.clone().requires_grad_(grad)
            T = p["threshold_db"].clone().requires_grad_(grad)
            R = p["ratio"].clone().requires_grad_(grad)
            at = coef["attack_ms"].clone().requires_grad_(grad)
            rt = coef["release_ms"].clone().requires_grad_(grad)
            level = xx[:, 0].abs().clamp_min(1e-4)
            gain = torchcomp.compexp_gain(level, T, R, torch.full_like(T, -200.0), torch.full_like(T, 0.5), at, rt)
            y = xx * (gain * torch.pow(10.0, p["makeup_db"] / 20)[:, None])[:, None, :]
            if grad:
                y.square().mean().backward()

        def torchcomp_fwd():
            with torch.no_grad():
                torchcomp_run(False)

        t_tc = timeit(torchcomp_fwd, repeat=repeat)
        t_tc_fb = timeit(lambda: torchcomp_run(True), repeat=repeat)
        note = (f"baseline; numba prange ({numba.get_num_threads()} threads) + torchlpc backward; no knee; "
                "coefficients 1 - alpha passed directly (its ms2coef uses 2200/(ms fs))")
        lines.append(Line("compressor", f"torchcomp compexp_gain, fwd ({size})", t_tc, note=note))
        lines.append(Line("compressor", f"torchcomp compexp_gain, fwd+bwd ({size})", t_tc_fb, note=note))

    # --- ratios for our lines
    def vs(t_ours: float, base: str, t_base):
        """``(baseline name, baseline time / our time)``, or no comparison when it was skipped."""
        if t_base is None:
            return "", None
        return base, t_base / t_ours

    base, ratio = vs(t_fwd, "pedalboard", t_pb) if t_pb else vs(t_fwd, "authors' loop", t_auth)
    others = [f"{t_auth / t_fwd:.1f}x vs authors' loop"]
    if t_tc:
        others.append(f"{t_tc / t_fwd:.2f}x vs torchcomp fwd")
    lines.append(Line("compressor", f"Compressor (ours), fwd ({size})", t_fwd, base, ratio,
                      note=f"{our_threads} numba threads; knee + make-up; " + "; ".join(others), extra=dict(threads)))
    if t_pb:
        lines.append(Line("compressor", f"Compressor (ours), fwd, 1 thread ({size})", t_fwd1, "pedalboard",
                          t_pb / t_fwd1, note="per-thread comparison: both on one thread"))
    base, ratio = vs(t_fb, "torchcomp fwd+bwd", t_tc_fb)
    lines.append(Line("compressor", f"Compressor (ours), fwd+bwd ({size})", t_fb, base, ratio,
                      note=f"{our_threads} numba threads; gradients for x and all 6 parameters",
                      extra=dict(threads)))
    if t_tc_fb:
        lines.append(Line("compressor", f"Compressor (ours), fwd+bwd, 1 thread ({size})", t_fb1, "torchcomp fwd+bwd",
                          t_tc_fb / t_fb1, note=f"per-thread: ours on 1 thread, torchcomp on {numba.get_num_threads()}"))

    # --- the simplified compressor (plain torch)
    simple = SimpleCompressor(sample_rate=FS)
    simple_fwd, simple_fwd_bwd = _fwd_and_fwd_bwd(simple, x, q[:, :5].contiguous())
    t_s = timeit(simple_fwd, repeat=repeat)
    t_sfb = timeit(simple_fwd_bwd, repeat=repeat)
    lines.append(Line("compressor", f"SimpleCompressor, fwd ({size})", t_s, note=f"plain torch, {torch_threads} threads"))
    base, ratio = vs(t_sfb, "torchcomp fwd+bwd", t_tc_fb)
    lines.append(Line("compressor", f"SimpleCompressor, fwd+bwd ({size})", t_sfb, base, ratio,
                      note="blocked exact one-pole recurrence (matrix products)"))
    return lines
