"""Bench group ``proxy``: the neural proxy compressor beside the DSP :class:`~beafx.effects.Compressor`.

Batches of 16 x 3 s and 16 x 10 s mono at 44.1 kHz (``quick``: 2 x 0.5 s), float32, the same
dynamic signal as the ``compressor`` group. Lines, per size:

- DSP ``Compressor`` forward, and forward + backward to ``x`` and all six ``q`` (the baseline);
- proxy forward (no gradients), with the constant history of the zero padding computed once;
- proxy forward with the plain zero-padded path (``padding="zeros"``), what the cached history saves;
- proxy forward + backward to its weights, ``x`` and ``q`` (proxy training);
- proxy forward + backward to ``q`` only, frozen weights (what :class:`HybridCompressor` costs
  an analysis network's training step).

Backward passes through the proxy keep every activation: to bound memory, batches are run in
chunks of 4 examples (the times are the sums; the compute is the same). On a lent GPU the proxy
lines run on it too (the DSP compressor always runs on the CPU). Ratios are DSP time / proxy time.
"""
from __future__ import annotations

import torch

from . import Line, register, timeit
from .compressor import FS, _fwd_and_fwd_bwd, _signal

CHUNK = 4


def _proxy_closures(model, x: torch.Tensor, q: torch.Tensor):
    """Closures: forward (cached history), forward (zero padding), fwd+bwd to everything, fwd+bwd to q only."""

    def fwd():
        with torch.no_grad():
            model.process_normalized(x, q)

    def fwd_zeros():
        with torch.no_grad():
            model.process_normalized(x, q, padding="zeros")

    def fwd_bwd(to_weights: bool):
        model.requires_grad_(to_weights)
        for i in range(0, x.shape[0], CHUNK):
            xs = x[i:i + CHUNK].clone().requires_grad_(to_weights)
            qs = q[i:i + CHUNK].clone().requires_grad_()
            model.process_normalized(xs, qs).square().mean().backward()
        model.requires_grad_(False)

    return fwd, fwd_zeros, (lambda: fwd_bwd(True)), (lambda: fwd_bwd(False))


@register("proxy")
def run(quick: bool) -> list[Line]:
    """Lines of the ``proxy`` bench group (``quick``: tiny sizes, a smoke test of this code)."""
    from ..effects import Compressor
    from ..effects.proxy import DEFAULT_WEIGHTS, ProxyCompressor

    sizes = [(2, FS // 2)] if quick else [(16, 3 * FS), (16, 10 * FS)]
    repeat = 1 if quick else 3
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    weights = "default" if DEFAULT_WEIGHTS.exists() else None  # speed does not depend on the values
    threads = {"torch_threads": torch.get_num_threads()}
    lines: list[Line] = []
    for batch, n in sizes:
        size = f"{batch} x {n / FS:g} s"
        x = _signal(batch, n)
        q = torch.rand(batch, 6, generator=torch.Generator().manual_seed(1))
        dsp_fwd, dsp_fwd_bwd = _fwd_and_fwd_bwd(Compressor(sample_rate=FS), x, q)
        t_dsp = timeit(dsp_fwd, repeat=repeat)
        t_dsp_fb = timeit(dsp_fwd_bwd, repeat=repeat)
        lines.append(Line("proxy", f"DSP Compressor, fwd ({size})", t_dsp, note="baseline; CPU", extra=dict(threads)))
        lines.append(Line("proxy", f"DSP Compressor, fwd+bwd to x and q ({size})", t_dsp_fb, note="baseline; CPU",
                          extra=dict(threads)))
        for device in devices:
            model = ProxyCompressor(sample_rate=FS, weights=weights).to(device).eval()
            model.requires_grad_(False)
            xd, qd = x.to(device), q.to(device)
            fwd, fwd_zeros, fb_all, fb_q = _proxy_closures(model, xd, qd)
            where = "CPU" if device == "cpu" else torch.cuda.get_device_name(0)
            t_f = timeit(fwd, repeat=repeat)
            t_z = timeit(fwd_zeros, repeat=repeat)
            t_fb = timeit(fb_all, repeat=repeat)
            t_fq = timeit(fb_q, repeat=repeat)
            lines += [
                Line("proxy", f"proxy, fwd, cached padding ({size}, {where})", t_f, "DSP fwd", t_dsp / t_f,
                     note=f"{t_z / t_f:.2f}x faster than the zero-padded path", extra=dict(threads)),
                Line("proxy", f"proxy, fwd, zero padding ({size}, {where})", t_z, "DSP fwd", t_dsp / t_z,
                     note="convolves the 3.02 s of zero padding", extra=dict(threads)),
                Line("proxy", f"proxy, fwd+bwd to weights, x, q ({size}, {where})", t_fb, "DSP fwd+bwd",
                     t_dsp_fb / t_fb, note=f"proxy training; chunks of {CHUNK}", extra=dict(threads)),
                Line("proxy", f"proxy, fwd+bwd to q only ({size}, {where})", t_fq, "DSP fwd+bwd", t_dsp_fb / t_fq,
                     note=f"frozen weights, as in the hybrid; chunks of {CHUNK}", extra=dict(threads)),
            ]
    return lines
