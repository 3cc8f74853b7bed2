"""``beafx bench --only eq``: the differentiable parametric EQ against the authors' method.

Lines (16 x 10 s mono at 44.1 kHz, float32 as in training; ``quick``: 2 x 1 s):

- forward+backward (gradient to ``q``) of the authors' method, re-implemented here as the
  baseline: five sequential per-band FFT filters, ``H = rfft(b, n) / rfft(a, n)`` with their
  FFT size (2^20 for 10 s), output truncated (AUTHORS_CODE.md 2.1);
- the same for beafx's product-of-bands filter (one FFT pair, size from the pole radius) and
  for dasp-pytorch's ``parametric_eq`` when it is installed (its fourth peak set to 0 dB);
- forward only: the authors' method, beafx's differentiable path, beafx's exact path
  (scipy ``sosfilt``, ``synthesis=True``);
- the worst error of the differentiable path over 1,000 random ``q`` (``quick``: 16).

Every error is max|y - y_lfilter| / max|y_lfilter| per example (whole signal), maximised over
the batch, against a float64 ``scipy.signal.lfilter`` cascade of the same bands.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Optional

import numpy as np
import scipy.signal
import torch
from torch import Tensor

from ..effects.eq import ParametricEQ
from ..functional.filters import fft_size, max_pole_radius
from . import Line, register, timeit

SAMPLE_RATE = 44100
GROUP = "eq"


def music_like(batch: int, n: int, *, seed: int) -> Tensor:
    """``(batch, 1, n)`` float32: pink-ish noise, a bass tone and decaying noise bursts, peak 1."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((batch, n)), axis=-1)
    spectrum[:, 1:] /= np.sqrt(np.arange(1, spectrum.shape[-1]))
    spectrum[:, 0] = 0
    x = np.fft.irfft(spectrum, n, axis=-1)
    x /= x.std(axis=-1, keepdims=True)
    t = np.arange(n) / SAMPLE_RATE
    x += 0.8 * np.sin(2 * np.pi * rng.uniform(40, 80, (batch, 1)) * t)
    for row in x:
        for onset in rng.integers(0, n, max(1, n // 20000)):
            row[onset:] += 3 * np.exp(-np.arange(n - onset) / rng.uniform(500, 4000)) * rng.standard_normal(n - onset)
    x /= np.abs(x).max(axis=-1, keepdims=True)
    return torch.from_numpy(x[:, None]).float()


def lfilter_reference(x: Tensor, b: Tensor, a: Tensor) -> np.ndarray:
    """Float64 ``scipy.signal.lfilter`` cascade, band by band, example by example."""
    out = x.detach().double().numpy().copy()
    for i in range(out.shape[0]):
        for band in range(b.shape[1]):
            out[i] = scipy.signal.lfilter(b[i, band].numpy(), a[i, band].numpy(), out[i], axis=-1)
    return out


def max_relative_error(y: Tensor, ref: np.ndarray) -> float:
    y = y.detach().double().numpy()
    return float((np.abs(y - ref).max(axis=(1, 2)) / np.abs(ref).max(axis=(1, 2))).max())


# --------------------------------------------------------------------------- the authors' method


def authors_fft_size(n: int) -> int:
    """Their size rule as written: the next power of two, doubled when it exceeds ``n + 3019``."""
    size = 2 ** math.ceil(math.log2(n))
    return 2 * size if size > n + 3019 else size


def authors_peq(x: Tensor, b: Tensor, a: Tensor) -> Tensor:
    """Five sequential FFT filters, ``H = rfft(b, n) / rfft(a, n)`` from coefficients in the
    signal's dtype, output truncated to the input length (no normalisation between bands)."""
    n = x.shape[-1]
    n_fft = authors_fft_size(n)
    for band in range(b.shape[1]):
        response = torch.fft.rfft(b[:, band].to(x.dtype), n=n_fft) / torch.fft.rfft(a[:, band].to(x.dtype), n=n_fft)
        x = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * response[:, None], n=n_fft)[..., :n]
    return x


# --------------------------------------------------------------------------- dasp-pytorch


def dasp_peq_factory(eq: ParametricEQ) -> Optional[Callable[[Tensor, Tensor], Tensor]]:
    """dasp-pytorch's six-band ``parametric_eq`` with its fourth peak at 0 dB (our five bands),
    or None when dasp-pytorch is not installed."""
    try:
        from dasp_pytorch.functional import parametric_eq
    except ImportError:
        return None

    def run(x: Tensor, q: Tensor) -> Tensor:
        p = {s.name: s.map_unchecked(q[:, i]) for i, s in enumerate(eq.param_specs)}
        flat = torch.zeros_like(q[:, 0])
        bands = {"low_shelf": "low_shelf", "band0": "peak1", "band1": "peak2", "band2": "peak3",
                 "high_shelf": "high_shelf"}
        kwargs = {}
        for theirs, ours in bands.items():
            kwargs[f"{theirs}_gain_db"] = p[f"{ours}.gain_db"]
            kwargs[f"{theirs}_cutoff_freq"] = p[f"{ours}.f0"]
            kwargs[f"{theirs}_q_factor"] = p[f"{ours}.quality"]
        kwargs.update(band3_gain_db=flat, band3_cutoff_freq=flat + 1000.0, band3_q_factor=flat + 0.707)
        return parametric_eq(x, SAMPLE_RATE, **kwargs)

    return run


# --------------------------------------------------------------------------- lines


def _forward_backward(run: Callable[[Tensor, Tensor], Tensor], x: Tensor, q: Tensor) -> Callable[[], Tensor]:
    def step() -> Tensor:
        q_leaf = q.clone().requires_grad_(True)
        y = run(x, q_leaf)
        y.square().mean().backward()
        return y.detach()

    return step


def interleaved_times(fns: dict[str, Callable[[], Tensor]], *, repeat: int) -> dict[str, float]:
    """Median seconds of each function, timed in alternation so that a change in machine load
    hits all of them alike. One warm-up call each, three for those under a second (the
    allocator settles on large buffers after a few calls)."""
    for fn in fns.values():
        if timeit(fn, repeat=1, warmup=0) < 1.0:
            timeit(fn, repeat=1, warmup=1)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            times[name].append(timeit(fn, repeat=1, warmup=0))
    return {name: statistics.median(values) for name, values in times.items()}


def timed_lines(runs: dict[str, tuple[Callable[[], Tensor], str]], ref: np.ndarray, *, repeat: int) -> list[Line]:
    """One line per ``name: (fn, note)``; the first is the baseline of the others' ratios."""
    seconds = interleaved_times({name: fn for name, (fn, _) in runs.items()}, repeat=repeat)
    baseline = next(iter(runs))
    lines = []
    for name, (fn, note) in runs.items():
        error = max_relative_error(fn(), ref)
        line = Line(GROUP, name, seconds[name], note=f"max rel err vs lfilter {error:.1e}; {note}".rstrip("; "),
                    extra={"max_rel_error": error})
        if name != baseline:
            line.baseline, line.ratio = baseline, seconds[baseline] / seconds[name]
        lines.append(line)
    return lines


def worst_error_line(eq: ParametricEQ, *, n_q: int, batch: int, n: int) -> Line:
    """Worst error of the differentiable path over ``n_q`` random q (float32, ``batch`` clips)."""
    x = music_like(batch, n, seed=1)
    g = torch.Generator().manual_seed(1234)
    worst, sizes, t0 = 0.0, [], time.perf_counter()
    for start in range(0, n_q, batch):
        q = torch.rand(min(batch, n_q - start), eq.num_params, generator=g)
        xs = x[: q.shape[0]]
        b, a = eq.coefficients(q.double())
        sizes.append(fft_size(n, max_pole_radius(a)))
        with torch.no_grad():
            worst = max(worst, max_relative_error(eq(xs, q), lfilter_reference(xs, b, a)))
    return Line(GROUP, f"PEQ worst error, {n_q} random q (beafx differentiable, float32)", None,
                note=f"max rel err vs lfilter {worst:.1e} (target <= 1e-3); n_fft {min(sizes)}..{max(sizes)}; "
                     f"{n / SAMPLE_RATE:g} s clips; sweep took {time.perf_counter() - t0:.0f} s",
                extra={"max_rel_error": worst, "n_q": n_q})


@register(GROUP)
def eq_lines(quick: bool) -> list[Line]:
    batch, seconds, n_q, repeat = (2, 1.0, 16, 1) if quick else (16, 10.0, 1000, 5)
    n = int(seconds * SAMPLE_RATE)
    eq, exact = ParametricEQ(SAMPLE_RATE), ParametricEQ(SAMPLE_RATE, synthesis=True)
    x = music_like(batch, n, seed=0)
    q = torch.rand(batch, eq.num_params, generator=torch.Generator().manual_seed(0))
    b, a = eq.coefficients(q.double())
    ref = lfilter_reference(x, b, a)
    size = f"{batch} x {seconds:g} s"

    def authors(x_: Tensor, q_: Tensor) -> Tensor:
        b_, a_ = eq.coefficients(q_)
        return authors_peq(x_, b_.float(), a_.float())

    dasp = dasp_peq_factory(eq)
    backward_runs = {
        "PEQ fwd+bwd: authors' method": (
            _forward_backward(authors, x, q),
            f"baseline; {size}; 5 x FFT filter, n_fft={authors_fft_size(n)}, coefficients in float32 as theirs"),
        "PEQ fwd+bwd: beafx differentiable": (
            _forward_backward(eq, x, q), f"product of bands, one FFT pair, n_fft={fft_size(n, max_pole_radius(a))}"),
    }
    if dasp is not None:
        backward_runs["PEQ fwd+bwd: dasp-pytorch parametric_eq"] = (
            _forward_backward(dasp, x, q), f"n_fft={2 ** math.ceil(math.log2(2 * n - 1))}")
    lines = timed_lines(backward_runs, ref, repeat=repeat)
    if dasp is None:
        lines.append(Line(GROUP, "PEQ fwd+bwd: dasp-pytorch parametric_eq", None,
                          note="skipped: dasp-pytorch is not installed (pip install dasp-pytorch)"))
    with torch.no_grad():
        lines += timed_lines({
            "PEQ fwd: authors' method": (lambda: authors(x, q), "baseline"),
            "PEQ fwd: beafx differentiable": (lambda: eq(x, q), ""),
            "PEQ fwd: beafx exact (scipy sosfilt, synthesis=True)": (lambda: exact(x, q), "output rounded to float32"),
        }, ref, repeat=repeat)
    lines.append(worst_error_line(eq, n_q=n_q, batch=batch, n=n))
    return lines
