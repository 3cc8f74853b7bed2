"""Dynamic range compressors as pure functions (book chapter "Compressors", book/04_compressors).

Two compressors share one static curve, :func:`gain_computer` (Giannoulis, Massberg & Reiss,
JAES 2012: feed-forward, log domain, soft knee of width ``W`` dB):

- :func:`compressor`: the exact DSP compressor the paper uses for synthesis. Per example:

  1. **Detector (channels linked)**: ``a[n] = max_c |x[c, n]|``, floored at ``1e-4``
     (-80 dBFS, as the authors did; the floor lives in the detector only, ``x`` is not
     changed), ``x_G[n] = 20 log10 a[n]``. Max-linking makes every channel receive the same
     gain, so the stereo image is kept, and a transient in either channel triggers compression.
  2. **Gain computer**: ``y_G = gain_computer(x_G)``; gain reduction ``x_L = x_G - y_G >= 0`` dB.
  3. **Branching smoother** on ``x_L`` (the smooth peak detector of Giannoulis et al.):
     ``y_L[n] = alpha y_L[n-1] + (1 - alpha) x_L[n]`` with ``alpha = alpha_attack`` when
     ``x_L[n] > y_L[n-1]`` and ``alpha_release`` otherwise; ``alpha = exp(-1 / (tau_s fs))``;
     ``y_L[-1] = 0`` dB.
  4. **Output**: ``y = x 10^((makeup - y_L) / 20)``.

  The forward pass is one compiled numba kernel (examples in parallel with ``prange``) that
  sweeps each example once, in blocks of 256 samples: detector, gain computer, smoother and
  output gain fused, with vectorised float64 ``log``/``exp`` and only the recursion serial
  (it also detects NaN/Inf in ``x`` at no extra cost). Internals are float64; the output has
  the dtype of ``x``. The backward pass is a custom
  :class:`torch.autograd.Function` running the exact adjoint of that loop in reverse time: with
  ``lambda[n] = dL/dy_L[n]``, ``lambda[n] = e[n] + alpha[n+1] lambda[n+1]``, where ``e[n]`` is
  the direct term from the output gain; then ``dL/dx_L[n] = (1 - alpha[n]) lambda[n]`` and
  ``dL/dalpha[n] = lambda[n] (y_L[n-1] - x_L[n])``, summed per branch. The branch decisions
  are those of the forward pass (they are piecewise constant in the parameters), so the
  gradients are exact derivatives of the computed output, for ``x`` and all six parameters
  (the detector's gradient goes to the loudest channel, shared equally between exact ties,
  as ``torch.amax`` does).

  *Threads*: the parallel kernel uses ``min(torch.get_num_threads(), NUMBA_NUM_THREADS)``
  numba threads, one example per chunk, on numba's ``workqueue`` threading layer unless one
  was already chosen (``NUMBA_THREADING_LAYER``; see :func:`_choose_threading_layer` for why:
  GNU OpenMP's spin-waiting costs a scheduler time slice per call on a loaded machine). Inside a DataLoader worker (``torch.utils.data.get_worker_info()`` is set),
  with one thread, one example, or while another Python thread runs the parallel kernel, a
  serial compiled kernel runs instead: no oversubscription, no nested numba thread pools.
  *CUDA*: tensors on a GPU are copied to the CPU, processed, and the results copied back (the
  recursion is serial in time; the copy is cheap next to it). Gradients flow as usual.

- :func:`simple_compressor`: the analysis-side simplification of the paper (section 2.4 of
  AUTHORS_CODE.md): the same detector and gain computer, then a *linear* one-pole smoother with
  one time constant on ``x_L`` (no attack/release branch), in plain differentiable torch. The
  smoother is an exact blocked linear recurrence (:func:`one_pole`): small lower-triangular
  matrix products inside blocks and the same recurrence, recursively, across blocks; it runs
  at matrix-multiply speed on CPU and GPU.

Arguments are keyword-only, in physical units (dB, ms, ratio ``R >= 1``, Hz), floats or
``(batch,)`` tensors. Signals are ``(batch, channels, samples)``.
"""
from __future__ import annotations

import math
import threading
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from . import _compressor_kernels as _k
from .checks import as_batch_param, check_sample_rate, check_signal

Param = Union[float, int, Tensor]

#: Detector floor: |x| below this counts as -80 dBFS (the authors' value).
FLOOR_AMP = _k.FLOOR_AMP
FLOOR_DB = 20.0 * math.log10(FLOOR_AMP)

_PAR_LOCK = threading.Lock()


# --------------------------------------------------------------------------- validation


def _check_signal(x: Tensor, what: str = "x") -> None:
    check_signal(x, what=what, finite=False)  # the kernels detect NaN/Inf themselves


#: Bounds per parameter name (the others only need to be finite).
_BOUNDS: dict[str, dict] = {
    "ratio": dict(minimum=1.0), "knee_db": dict(minimum=0.0),
    **{t: dict(minimum=0.0, open_min=True) for t in ("attack_ms", "release_ms", "time_ms")},
}


def _param(value: Param, name: str, *, batch: int, like: Tensor, owner: Optional[str] = None, ndim: int = 1) -> Tensor:
    """``value`` as a ``(batch,)`` tensor with the dtype and device of ``like`` (autograd kept),
    within the bounds of ``name`` (:data:`_BOUNDS`)."""
    return as_batch_param(value, name=name, batch=batch, dtype=like.dtype, device=like.device, owner=owner,
                          ndim=ndim, **_BOUNDS.get(name, {}))


def _validated(x: Tensor, sample_rate: float, owner: str, **params: Param) -> tuple[float, list[Tensor]]:
    """Check ``x`` and ``sample_rate``; ``params`` as ``(batch,)`` tensors like ``x``, in their order."""
    _check_signal(x)
    fs = check_sample_rate(sample_rate, owner=owner)
    return fs, [_param(v, name, batch=x.shape[0], like=x, owner=owner) for name, v in params.items()]


# --------------------------------------------------------------------------- static curve


def _static_reduction(level_db: Tensor, threshold_db: Tensor, ratio: Tensor, knee_db: Tensor) -> Tensor:
    """Static gain reduction ``x_G - y_G >= 0`` in dB (same shapes as :func:`gain_computer`).

    ``(1 - 1/R) h(d)`` with ``d = x_G - T`` and ``h = clamp(d + W/2, 0, W)^2 / (2W) + relu(d - W/2)``:
    0 below the knee, the quadratic inside, ``d`` above. Safe at ``W = 0``: ``1 / (2W)`` is taken
    where ``W > 0`` only ("safe where") and the clamp is then identically 0, so there are no
    NaN values or NaN gradients from an untaken branch.
    """
    return (1.0 - 1.0 / ratio) * _knee_h(level_db - threshold_db + 0.5 * knee_db, knee_db)


def _knee_h(e: Tensor, knee_db: Tensor) -> Tensor:
    """``h`` of :func:`_static_reduction` from ``e = d + W/2`` (``knee_db`` broadcastable to ``e``)."""
    positive = knee_db > 0
    inv_2w = torch.where(positive, 0.5 / torch.where(positive, knee_db, torch.ones_like(knee_db)),
                         torch.zeros_like(knee_db))
    zero = torch.zeros((), dtype=e.dtype, device=e.device)
    return torch.clamp(e, min=zero, max=knee_db).square() * inv_2w + torch.relu(e - knee_db)


def gain_computer(level_db: Tensor, *, threshold_db: Param, ratio: Param, knee_db: Param) -> Tensor:
    """The static compression curve: output level ``y_G`` in dB for input level ``level_db``.

    Below the knee ``y_G = x_G``; inside it (``|x_G - T| <= W/2``)
    ``y_G = x_G + (1/R - 1) (x_G - T + W/2)^2 / (2W)``; above it ``y_G = T + (x_G - T)/R``.

    Args:
        level_db: input levels in dB, any shape; a ``(batch,)`` parameter applies along its
            first axis (e.g. ``level_db`` of shape ``(batch, n)``).
        threshold_db: ``T`` in dB. ratio: ``R >= 1``. knee_db: ``W >= 0`` dB (0 = hard knee).
    Returns:
        ``y_G`` in dB, the broadcast shape of ``level_db`` and the parameters. Differentiable.
    """
    if not isinstance(level_db, Tensor) or not level_db.is_floating_point():
        raise ValueError("level_db must be a floating-point torch.Tensor")
    kw = dict(batch=level_db.shape[0] if level_db.dim() else 1, like=level_db, ndim=level_db.dim(),
              owner="gain_computer")
    T, R, W = (_param(v, n, **kw) for n, v in (("threshold_db", threshold_db), ("ratio", ratio), ("knee_db", knee_db)))
    return level_db - _static_reduction(level_db, T, R, W)


def linked_level_db(x: Tensor) -> Tensor:
    """The linked detector level ``20 log10 max(max_c |x[:, c, n]|, 1e-4)`` in dB, ``(batch, samples)``."""
    _check_signal(x)
    return 20.0 * torch.log10(x.abs().amax(dim=1).clamp_min(FLOOR_AMP))


# --------------------------------------------------------------------------- DSP compressor


def _use_parallel(batch: int) -> bool:
    if batch < 2 or torch.utils.data.get_worker_info() is not None:
        return False
    return _num_threads() > 1


def _num_threads() -> int:
    import numba

    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


_layer_chosen = False


def _choose_threading_layer() -> None:
    """Prefer numba's ``workqueue`` layer unless the user or earlier code fixed one.

    With GNU OpenMP (numba's default pick when TBB is absent) the calling thread spin-waits at
    the end of each parallel kernel; when other processes load the cores (DataLoader workers,
    a shared machine) every call then waits for a descheduled worker thread: measured here,
    about 16 ms per call whatever the size, 50x a small batch's work. ``workqueue`` sleeps
    instead, and is fork-safe (GNU OpenMP is not); it is not thread-safe, which
    :data:`_PAR_LOCK` covers for these kernels. ``NUMBA_THREADING_LAYER`` overrides this.
    """
    global _layer_chosen
    if _layer_chosen:
        return
    _layer_chosen = True
    import os

    import numba

    if "NUMBA_THREADING_LAYER" in os.environ or numba.config.THREADING_LAYER != "default":
        return
    try:
        numba.threading_layer()  # raises ValueError while no layer is initialised
    except ValueError:
        numba.config.THREADING_LAYER = "workqueue"


def _run(kernel_par, kernel_ser, batch: int, *args) -> None:
    """Run the parallel kernel when useful and free, else the serial one."""
    if _use_parallel(batch) and _PAR_LOCK.acquire(blocking=False):
        try:
            import numba

            _choose_threading_layer()
            numba.set_num_threads(_num_threads())
            # one example per chunk: a thread slowed down by another process does not hold
            # back the others (static halves would wait for it)
            old = numba.set_parallel_chunksize(1)
            try:
                kernel_par(*args)
            finally:
                numba.set_parallel_chunksize(old)
        finally:
            _PAR_LOCK.release()
    else:
        kernel_ser(*args)


def _time_coefficients(time_ms: Tensor, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, 1 - alpha)`` as float64 numpy arrays, with ``1 - alpha`` computed without cancellation."""
    t = time_ms.detach().to("cpu", torch.float64).numpy()
    rate = 1.0 / (t * 1e-3 * sample_rate)
    return np.exp(-rate), -np.expm1(-rate)


def _cpu64(p: Tensor) -> np.ndarray:
    return np.ascontiguousarray(p.detach().to("cpu", torch.float64).numpy())


def _forward(x: Tensor, T: Tensor, R: Tensor, W: Tensor, M: Tensor, A: Tensor, Rl: Tensor, sample_rate: float,
             save: bool):
    """Run the compiled forward on CPU copies. Returns numpy ``(y, yl, xg, br, beta_a, beta_r)``."""
    xc = x.detach()
    xc = xc.to("cpu") if xc.device.type != "cpu" else xc
    xn = np.ascontiguousarray(xc.numpy())
    B, C, N = xn.shape
    y = np.empty_like(xn)
    n_save = N if save else 0
    yl = np.empty((B, n_save), dtype=xn.dtype)
    xg = np.empty((B, n_save), dtype=xn.dtype)
    br = np.empty((B, n_save), dtype=np.uint8)
    ok = np.ones(B, dtype=np.bool_)
    _, beta_a = _time_coefficients(A, sample_rate)
    _, beta_r = _time_coefficients(Rl, sample_rate)
    _run(_k.forward_par, _k.forward_ser, B, xn, y, _cpu64(T), _cpu64(R), _cpu64(W), _cpu64(M), beta_a, beta_r,
         yl, xg, br, save, ok)
    if not ok.all():
        raise ValueError(f"x contains NaN or Inf (batch index {int(np.flatnonzero(~ok)[0])})")
    return xn, y, yl, xg, br, beta_a, beta_r


class _CompressorFunction(torch.autograd.Function):
    """Giannoulis compressor with the exact reverse-time backward. Outputs ``(y, y_L)``."""

    @staticmethod
    def forward(ctx, x, T, R, W, M, A, Rl, sample_rate):  # type: ignore[override]
        xn, y, yl, xg, br, beta_a, beta_r = _forward(x, T, R, W, M, A, Rl, sample_rate, save=True)
        ctx.save_for_backward(x)  # for autograd's check against in-place changes of x
        ctx.state = (xn, yl, xg, br, beta_a, beta_r)  # xn: x on the CPU (a view when x is there)
        ctx.params = (_cpu64(T), _cpu64(R), _cpu64(W), _cpu64(M), _cpu64(A), _cpu64(Rl))
        ctx.sample_rate = sample_rate
        return torch.from_numpy(y).to(x.device), torch.from_numpy(yl).to(x.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y, grad_yl):  # type: ignore[override]
        ctx.saved_tensors  # raises if x was modified in place after the forward pass
        xn, yl, xg, br, beta_a, beta_r = ctx.state
        T, R, W, M, A, Rl = ctx.params
        B = xn.shape[0]
        device = grad_y.device if grad_y is not None else grad_yl.device
        if grad_y is None:
            gy = np.zeros_like(xn)
        else:
            gy = np.ascontiguousarray(grad_y.detach().to("cpu", dtype=torch.from_numpy(xn).dtype).numpy())
        has_gyl = grad_yl is not None
        if has_gyl:
            gyl = np.ascontiguousarray(grad_yl.detach().to("cpu", dtype=torch.from_numpy(xn).dtype).numpy())
        else:
            gyl = np.empty((B, 0), dtype=xn.dtype)
        gx = np.empty_like(xn)
        gp = np.empty((B, 6), dtype=np.float64)
        _run(_k.backward_par, _k.backward_ser, B, xn, gy, gyl, has_gyl, gx, T, R, W, M, beta_a, beta_r,
             yl, xg, br, gp)
        # chain rule from alpha = exp(-1/(tau_ms 1e-3 fs)) to tau_ms
        fs = ctx.sample_rate
        for k, tau in ((4, A), (5, Rl)):
            rate = 1.0 / (tau * 1e-3 * fs)
            gp[:, k] *= np.exp(-rate) * rate / tau
        dtype = torch.from_numpy(xn).dtype
        gp_t = torch.from_numpy(gp).to(device=device, dtype=dtype)
        grads = [torch.from_numpy(gx).to(device) if ctx.needs_input_grad[0] else None]
        # the kernel's order (threshold, ratio, knee, makeup, attack, release) is the inputs' order
        grads += [gp_t[:, k] if ctx.needs_input_grad[k + 1] else None for k in range(6)]
        return (*grads, None)  # no gradient for sample_rate


def _compressor_params(x: Tensor, threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db, sample_rate,
                       owner: str):
    fs, (T, R, W, M, A, Rl) = _validated(x, sample_rate, owner, threshold_db=threshold_db, ratio=ratio,
                                         knee_db=knee_db, makeup_db=makeup_db, attack_ms=attack_ms,
                                         release_ms=release_ms)
    return T, R, W, M, A, Rl, fs


def _needs_graph(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def compressor(x: Tensor, *, threshold_db: Param, ratio: Param, attack_ms: Param, release_ms: Param,
               knee_db: Param, makeup_db: Param, sample_rate: float) -> Tensor:
    """The Giannoulis feed-forward compressor with linked channels (module docstring).

    Args:
        x: ``(batch, channels, samples)`` float32/float64, CPU or CUDA; not modified.
        threshold_db: ``T`` (dB). ratio: ``R >= 1``. attack_ms, release_ms: time constants
            ``tau > 0`` in ms (``alpha = exp(-1 / (tau fs))``). knee_db: ``W >= 0`` (dB).
        makeup_db: output gain (dB). sample_rate: Hz. Each parameter is a float or ``(batch,)``.
    Returns:
        ``y`` with the shape, dtype and device of ``x``. Differentiable in ``x`` and every
        parameter through an exact custom backward (first order: no double backward).
    Raises:
        ValueError: bad shapes, NaN/Inf, ``ratio < 1``, ``knee_db < 0``, times ``<= 0``.
    """
    T, R, W, M, A, Rl, fs = _compressor_params(x, threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db,
                                               sample_rate, "compressor")
    if _needs_graph(x, T, R, W, M, A, Rl):
        y, _ = _CompressorFunction.apply(x, T, R, W, M, A, Rl, fs)
        return y
    _, y, *_ = _forward(x, T, R, W, M, A, Rl, fs, save=False)
    return torch.from_numpy(y).to(x.device)


def gain_reduction_db(x: Tensor, *, threshold_db: Param, ratio: Param, attack_ms: Param, release_ms: Param,
                      knee_db: Param, sample_rate: float) -> Tensor:
    """Smoothed gain reduction ``y_L`` (dB, >= 0) of :func:`compressor`, ``(batch, samples)``.

    The output of :func:`compressor` is ``x * 10^((makeup_db - y_L) / 20)``. Differentiable
    (same custom backward). For plots of gain over time (book chapter "Compressors").
    """
    T, R, W, M, A, Rl, fs = _compressor_params(x, threshold_db, ratio, attack_ms, release_ms, knee_db, 0.0,
                                               sample_rate, "gain_reduction_db")
    if _needs_graph(x, T, R, W, A, Rl):
        _, yl = _CompressorFunction.apply(x, T, R, W, M, A, Rl, fs)
        return yl
    _, _, yl, *_ = _forward(x, T, R, W, M, A, Rl, fs, save=True)
    return torch.from_numpy(yl).to(x.device)


# --------------------------------------------------------------------------- simple compressor

#: Block sizes of the blocked recurrence: the largest divisor of the length in this range (no
#: padding; lengths in multiples of 441 samples always have one), else the smallest, padded.
_BLOCK_RANGE = (32, 48)


def _block_size(n: int) -> int:
    lo, hi = _BLOCK_RANGE
    for k in range(hi, lo - 1, -1):
        if n % k == 0:
            return k
    return lo


def _linear_recurrence(u: Tensor, log_a: Tensor, scale: Optional[Tensor] = None) -> Tensor:
    """``y[n] = a y[n-1] + s u[n]``, ``y[-1] = 0``, for ``u`` ``(batch, n)``, ``log a`` and ``s`` ``(batch,)``.

    Exact blocked evaluation: inside blocks of ``K`` (32 to 48) samples a lower-triangular matrix
    ``L[i, j] = s a^(i-j)`` does the recursion (one batched matrix product); the block-end
    states follow the same recurrence with coefficient ``a^K``, solved recursively, and
    enter each block through ``a^(i+1)``. Powers are ``exp(k log a)``, so ``a = 0`` (``log a``
    a large negative number) gives finite values and gradients.
    """
    B, N = u.shape
    K = min(_block_size(N), N)
    k = torch.arange(K, device=u.device, dtype=u.dtype)
    lag = k[:, None] - k[None, :]
    L = torch.exp(log_a[:, None, None] * lag.clamp_min(0)) * (lag >= 0)  # (B, K, K)
    if scale is not None:
        L = L * scale[:, None, None]
    if N <= K:
        return torch.bmm(L, u.unsqueeze(-1)).squeeze(-1)
    nb = -(-N // K)
    if nb * K != N:
        u = torch.nn.functional.pad(u, (0, nb * K - N))
    local = torch.bmm(u.view(B, nb, K), L.transpose(1, 2))  # (B, nb, K): zero-state response per block
    ends = _linear_recurrence(local[:, :, -1], log_a * K)  # state at the end of each block
    prev = torch.cat([ends.new_zeros(B, 1), ends[:, :-1]], dim=1)  # state entering each block
    powers = torch.exp(log_a[:, None] * (k + 1))  # (B, K): a^(i+1)
    y = torch.baddbmm(local, prev.unsqueeze(-1), powers.unsqueeze(1))
    return y.reshape(B, nb * K)[:, :N]


def _log_alpha(time_ms: Tensor, sample_rate: float) -> Tensor:
    return -1.0 / (time_ms * (1e-3 * sample_rate))


def one_pole(u: Tensor, *, time_ms: Param, sample_rate: float) -> Tensor:
    """Linear one-pole smoother ``y[n] = alpha y[n-1] + (1 - alpha) u[n]``, ``y[-1] = 0``.

    Args:
        u: ``(batch, samples)``. time_ms: ``tau > 0`` in ms, ``alpha = exp(-1 / (tau fs))``.
    Returns:
        ``(batch, samples)``, differentiable in ``u`` and ``time_ms`` (plain torch).
    """
    if not isinstance(u, Tensor) or u.dim() != 2 or not u.is_floating_point():
        raise ValueError(f"u must be a floating (batch, samples) tensor, got {getattr(u, 'shape', type(u))}")
    fs = check_sample_rate(sample_rate, owner="one_pole")
    tau = _param(time_ms, "time_ms", batch=u.shape[0], like=u, owner="one_pole")
    log_a = _log_alpha(tau, fs)
    return _linear_recurrence(u, log_a, -torch.expm1(log_a))


def simple_gain_reduction_db(x: Tensor, *, threshold_db: Param, ratio: Param, time_ms: Param, knee_db: Param,
                             sample_rate: float) -> Tensor:
    """Smoothed gain reduction (dB, ``(batch, samples)``) of :func:`simple_compressor`."""
    return _simple_gain_reduction(x, threshold_db, ratio, time_ms, knee_db, sample_rate,
                                  owner="simple_gain_reduction_db")


def _simple_gain_reduction(x: Tensor, threshold_db: Param, ratio: Param, time_ms: Param, knee_db: Param,
                           sample_rate: float, *, owner: str) -> Tensor:
    fs, (T, R, W, tau) = _validated(x, sample_rate, owner, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db,
                                    time_ms=time_ms)
    peak = x[:, 0].abs() if x.shape[1] == 1 else x.abs().amax(dim=1)
    log_peak = torch.log(peak.clamp_min(FLOOR_AMP))  # linked detector, natural log
    if not bool(torch.isfinite(log_peak.sum())):  # NaN propagates; the floor keeps -inf out
        raise ValueError("x contains NaN or Inf")
    # e = x_G - T + W/2 in dB, in one op
    e = torch.add((0.5 * W - T)[:, None], log_peak, alpha=20.0 / math.log(10.0))
    h = _knee_h(e, W[:, None])
    log_a = _log_alpha(tau, fs)
    # the slope (1 - 1/R) and 1 - alpha are per-example constants: folded into the smoother
    return _linear_recurrence(h, log_a, (1.0 - 1.0 / R) * -torch.expm1(log_a))


def simple_compressor(x: Tensor, *, threshold_db: Param, ratio: Param, time_ms: Param, knee_db: Param,
                      makeup_db: Param, sample_rate: float) -> Tensor:
    """The simplified compressor: one time constant, a linear one-pole smoother on ``x_L`` in dB.

    Args:
        x: ``(batch, channels, samples)``. threshold_db (dB), ratio (``>= 1``), time_ms
            (``> 0``), knee_db (``>= 0``), makeup_db (dB): floats or ``(batch,)`` tensors.
    Returns:
        ``x 10^((makeup - y_L)/20)``, shape of ``x``; differentiable in plain torch.
    """
    y_l = _simple_gain_reduction(x, threshold_db, ratio, time_ms, knee_db, sample_rate, owner="simple_compressor")
    M = _param(makeup_db, "makeup_db", batch=x.shape[0], like=x, owner="simple_compressor", ndim=2)
    c = math.log(10.0) / 20.0
    gain = torch.exp(torch.add(M * c, y_l, alpha=-c))
    return x * gain[:, None, :]
