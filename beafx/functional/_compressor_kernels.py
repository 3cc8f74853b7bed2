"""Compiled per-sample kernels of the Giannoulis compressor (forward and exact backward).

Private to :mod:`beafx.functional.compressor`, which documents the maths. Arrays:

- ``x``: ``(batch, channels, samples)`` float32 or float64 (read only, never modified);
- per-example parameters, float64 ``(batch,)``: ``thr`` threshold (dB), ``ratio``, ``knee`` (dB),
  ``makeup`` (dB), ``beta_a`` / ``beta_r`` = 1 - alpha of attack / release;
- saved for the backward pass (only when ``save`` is true; otherwise ``(batch, 0)`` dummies):
  ``yl`` smoothed gain reduction (dB), ``xg`` detector level (dB), ``br`` 1 where the attack
  branch was taken.

Every kernel exists twice: ``*_par`` runs examples in parallel (``prange``), ``*_ser`` is the
same code on one thread (DataLoader workers, single-thread callers). Internal arithmetic is in
float64 whatever the input dtype. ``cache=True`` keeps the compiled code on disk.

Speed: libm's ``log``/``exp`` are scalar calls that stop LLVM's vectoriser (numba has no SVML
here), so both passes work on blocks of :data:`BLOCK` samples with branch-free float64
``log``/``exp`` written as polynomials on the IEEE exponent/mantissa (accurate to a few 1e-16,
tested); only the attack/release recursion (forward) and the adjoint recursion (backward) run
sample by sample. Loops index 1-D block views from 0 and touch few arrays each, which is what
lets LLVM vectorise them (``x[c, i0 + j]`` indexing or many arrays per loop keep them scalar).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: |x| is floored here before the log (the authors' -80 dBFS).
FLOOR_AMP = 1e-4
_DB_PER_NEPER = 20.0 / math.log(10.0)  # dB = _DB_PER_NEPER * ln(amplitude)
_NEPER_PER_DB = math.log(10.0) / 20.0


#: Samples per block: buffers of this size stay in the L1 cache.
BLOCK = 256
_MANTISSA = (1 << 52) - 1
_EXP_ONE = 1023 << 52
_LN2 = math.log(2.0)
_LN2_HI = 0.6931471803691238  # ln 2 split for an exact k * ln 2 (Cody-Waite)
_LN2_LO = 1.9082149292705877e-10
_LOG2E = 1.0 / _LN2


def _log1p_coefficients(degree: int = 18, half_width: float = 1.0 / 3.0) -> tuple:
    """Monomial coefficients of ``log1p(f) / f`` on ``|f| <= 1/3`` (Chebyshev interpolation).

    ``f * poly(f)`` matches ``numpy.log1p`` to about 3e-16 absolute on that interval.
    """
    from numpy.polynomial import chebyshev as cheb

    k = np.arange(degree + 1)
    nodes = np.cos(np.pi * (k + 0.5) / (degree + 1))
    f = half_width * nodes
    c = cheb.chebfit(nodes, np.log1p(f) / f, degree)
    return tuple(float(v) for v in cheb.cheb2poly(c) / half_width ** np.arange(degree + 1))


# Module-level scalars are compile-time constants for numba (a tuple indexed in a loop is not
# unrolled, which would stop the vectoriser).
(_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8, _L9, _L10, _L11, _L12, _L13, _L14, _L15, _L16, _L17,
 _L18) = _log1p_coefficients()


@njit(cache=True, inline="always", fastmath={"contract"}, error_model="numpy")
def _log_poly(f):
    """``log1p(f)`` for ``|f| <= 1/3`` (Horner, no branches, vectorisable)."""
    p = _L18
    p = _L17 + f * p
    p = _L16 + f * p
    p = _L15 + f * p
    p = _L14 + f * p
    p = _L13 + f * p
    p = _L12 + f * p
    p = _L11 + f * p
    p = _L10 + f * p
    p = _L9 + f * p
    p = _L8 + f * p
    p = _L7 + f * p
    p = _L6 + f * p
    p = _L5 + f * p
    p = _L4 + f * p
    p = _L3 + f * p
    p = _L2 + f * p
    p = _L1 + f * p
    p = _L0 + f * p
    return f * p


@njit(cache=True, inline="always", fastmath={"contract"}, error_model="numpy")
def _log_block(a, m_buf, e_buf, out, m):
    """``out[:m] = ln(a[:m])`` for normal positive float64 ``a``; vectorisable (libm is not).

    ``a = 2^e * mant`` from the IEEE bits, ``mant`` folded into [2/3, 4/3), then
    :func:`_log_poly`. Accurate to a few 1e-16 (tested against ``numpy.log``).
    """
    a_bits = a.view(np.int64)
    m_bits = m_buf.view(np.int64)
    for j in range(m):
        bits = a_bits[j]
        e_buf[j] = float((bits >> 52) - 1023)
        m_bits[j] = (bits & _MANTISSA) | _EXP_ONE
    for j in range(m):
        mant = m_buf[j]
        e = e_buf[j]
        big = mant > 4.0 / 3.0
        mant = mant * 0.5 if big else mant
        e = e + 1.0 if big else e
        out[j] = e * _LN2 + _log_poly(mant - 1.0)


@njit(cache=True, inline="always", fastmath={"contract"}, error_model="numpy")
def _exp_block(z, out, p_buf, m):
    """``out[:m] = exp(z[:m])`` for ``z`` clamped to [-708, 709]; vectorisable.

    ``z = k ln2 + r`` with ``|r| <= ln2 / 2`` (Cody-Waite), degree-13 Taylor for ``exp(r)``,
    times ``2^k`` built from its IEEE bits. Relative error a few 1e-16.
    """
    p_bits = p_buf.view(np.int64)
    for j in range(m):
        t = min(max(z[j], -708.0), 709.0)
        k = np.floor(t * _LOG2E + 0.5)
        r = (t - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = 1.0 / 479001600.0 + r * p
        p = 1.0 / 39916800.0 + r * p
        p = 1.0 / 3628800.0 + r * p
        p = 1.0 / 362880.0 + r * p
        p = 1.0 / 40320.0 + r * p
        p = 1.0 / 5040.0 + r * p
        p = 1.0 / 720.0 + r * p
        p = 1.0 / 120.0 + r * p
        p = 1.0 / 24.0 + r * p
        p = 1.0 / 6.0 + r * p
        p = 0.5 + r * p
        p = 1.0 + r * p
        out[j] = 1.0 + r * p
        p_bits[j] = (np.int64(k) + 1023) << 52
    for j in range(m):
        out[j] *= p_buf[j]


@njit(cache=True, inline="always", fastmath={"contract"}, error_model="numpy")
def _forward_one(x, y, thr, ratio, knee, makeup, beta_a, beta_r, yl, xg, br, save):
    """One example: ``x``/``y`` are ``(channels, samples)``. Returns False if x has NaN/Inf.

    Blocks of :data:`BLOCK` samples in four passes: detector and gain computer (vectorised,
    with :func:`_log_block`), the branching recursion (serial, branch-free select), the output
    gain (vectorised, :func:`_exp_block`) and the output product.
    """
    n_ch, n = x.shape
    slope = 1.0 - 1.0 / ratio
    half = 0.5 * knee
    knee_scale = slope * 0.5 / knee if knee > 0.0 else 0.0  # slope / (2W); the knee is empty at W = 0
    alpha_a = 1.0 - beta_a
    alpha_r = 1.0 - beta_r
    buf = np.empty((5, BLOCK))
    a_buf = buf[0]
    m_buf = buf[1]
    e_buf = buf[2]
    v_buf = buf[3]
    p_buf = buf[4]
    state = 0.0
    bad = 0
    for i0 in range(0, n, BLOCK):
        m = min(BLOCK, n - i0)
        # 1-D views indexed from 0: with x[c, i0 + j] numba's negative-index handling stops
        # LLVM from seeing consecutive addresses, and the loops stay scalar.
        xg_b = xg[i0:i0 + m]
        yl_b = yl[i0:i0 + m]
        br_b = br[i0:i0 + m]
        # detector: a = max_c |x_c|, floored (the floor stays in the detector)
        x_c = x[0, i0:i0 + m]
        for j in range(m):
            a_buf[j] = abs(x_c[j])
        for c in range(1, n_ch):
            x_c = x[c, i0:i0 + m]
            for j in range(m):
                v = abs(x_c[j])
                a_buf[j] = v if v > a_buf[j] else a_buf[j]
        for j in range(m):
            a = a_buf[j]
            bad += 0 if a < np.inf else 1  # NaN compares false
            a_buf[j] = a if a > FLOOR_AMP else FLOOR_AMP
        _log_block(a_buf, m_buf, e_buf, v_buf, m)
        # gain computer: x_L = slope * h(x_G - T)
        for j in range(m):
            level = _DB_PER_NEPER * v_buf[j]
            d = level - thr
            in_knee = d + half
            xl_knee = knee_scale * in_knee * in_knee
            v_buf[j] = slope * d if 2.0 * d > knee else (xl_knee if 2.0 * d >= -knee else 0.0)
            if save:
                xg_b[j] = level
        # branching smoother on x_L (attack when x_L rises above the state)
        for j in range(m):
            xl = v_buf[j]
            up = xl > state
            s_a = alpha_a * state + beta_a * xl
            s_r = alpha_r * state + beta_r * xl
            state = s_a if up else s_r
            v_buf[j] = _NEPER_PER_DB * (makeup - state)
            if save:
                yl_b[j] = state
                br_b[j] = up
        _exp_block(v_buf, a_buf, p_buf, m)
        for c in range(n_ch):
            x_c = x[c, i0:i0 + m]
            y_c = y[c, i0:i0 + m]
            for j in range(m):
                y_c[j] = x_c[j] * a_buf[j]
    return bad == 0


@njit(cache=True, inline="always", fastmath={"contract"}, error_model="numpy")
def _backward_one(x, gy, gyl, has_gyl, gx, thr, ratio, knee, makeup, beta_a, beta_r, yl, xg, br):
    """Reverse-time adjoint of :func:`_forward_one` for one example.

    With ``lambda[i] = dL/dy_L[i]``: ``lambda[i] = e[i] + alpha[i+1] lambda[i+1]``, ``e[i]`` the
    direct term through the output gain. Then ``dL/dx_L[i] = (1 - alpha[i]) lambda[i]`` and
    ``dL/dalpha[i] = lambda[i] (y_L[i-1] - x_L[i])``. Blocks of :data:`BLOCK` samples, last
    block first, in three passes: per-sample coefficients (vectorised), the ``lambda``
    recursion with the parameter sums (serial), the input gradient (vectorised).

    Returns ``(d threshold, d ratio, d knee, d makeup, d alpha_attack, d alpha_release)``.
    """
    n_ch, n = x.shape
    slope = 1.0 - 1.0 / ratio
    inv_r2 = 1.0 / (ratio * ratio)
    half = 0.5 * knee
    inv_knee = 1.0 / knee if knee > 0.0 else 0.0
    alpha_a = 1.0 - beta_a
    alpha_r = 1.0 - beta_r
    buf = np.empty((13, BLOCK))
    gain = buf[0]
    p_buf = buf[1]
    e_buf = buf[2]  # direct term e[i]
    dm_buf = buf[3]  # d makeup contributions
    al_buf = buf[4]  # alpha[i]
    kt_buf = buf[5]  # d threshold per unit lambda
    kr_buf = buf[6]  # d ratio per unit lambda
    kw_buf = buf[7]  # d knee per unit lambda
    ka_buf = buf[8]  # d alpha_attack per unit lambda
    kl_buf = buf[9]  # d alpha_release per unit lambda
    amax = buf[10]
    scale = buf[11]  # d level / d |x| at the loudest channel(s), 0 below the floor
    lam_buf = buf[12]
    g_thr = 0.0
    g_ratio = 0.0
    g_knee = 0.0
    g_makeup = 0.0
    g_alpha_a = 0.0
    g_alpha_r = 0.0
    lam = 0.0
    a_next = 0.0  # alpha[i+1]; nothing flows back from beyond the last sample
    n_blocks = (n + BLOCK - 1) // BLOCK
    for blk in range(n_blocks - 1, -1, -1):
        i0 = blk * BLOCK
        m = min(BLOCK, n - i0)
        # pass 1 (vectorised): output gain, direct terms, per-sample coefficients. Each loop
        # touches few arrays: LLVM vectorises only when its run-time alias checks stay few.
        xg_b = xg[i0:i0 + m]
        yl_b = yl[i0:i0 + m]
        br_b = br[i0:i0 + m]
        for j in range(m):
            p_buf[j] = _NEPER_PER_DB * (makeup - yl_b[j])
        _exp_block(p_buf, gain, e_buf, m)
        for j in range(m):
            dm_buf[j] = 0.0
        for j in range(m):
            amax[j] = 0.0
        for c in range(n_ch):
            x_c = x[c, i0:i0 + m]
            gy_c = gy[c, i0:i0 + m]
            gx_c = gx[c, i0:i0 + m]
            for j in range(m):
                dm_buf[j] += gy_c[j] * x_c[j]
            for j in range(m):
                gx_c[j] = gy_c[j] * gain[j]
            for j in range(m):
                av = abs(x_c[j])
                amax[j] = av if av > amax[j] else amax[j]
        for j in range(m):
            dm_buf[j] = _NEPER_PER_DB * gain[j] * dm_buf[j]
        for j in range(m):
            e_buf[j] = -dm_buf[j]
        if has_gyl:
            gyl_b = gyl[i0:i0 + m]
            for j in range(m):
                e_buf[j] += gyl_b[j]
        for j in range(m):
            scale[j] = 0.0
        for c in range(n_ch):
            x_c = x[c, i0:i0 + m]
            for j in range(m):
                scale[j] += 1.0 if abs(x_c[j]) == amax[j] else 0.0  # ties share the gradient
        for j in range(m):
            a = amax[j]
            scale[j] = _DB_PER_NEPER / (a * scale[j]) if a >= FLOOR_AMP else 0.0
        # knee: h(d), dh/dd, dh/dW at d = x_G - T (kr, kt, kw hold them for now)
        for j in range(m):
            d = xg_b[j] - thr
            u = (d + half) * inv_knee
            inside = (2.0 * d >= -knee) and knee > 0.0
            kr_buf[j] = d if 2.0 * d > knee else (0.5 * knee * u * u if inside else 0.0)
        for j in range(m):
            d = xg_b[j] - thr
            u = (d + half) * inv_knee
            inside = (2.0 * d >= -knee) and knee > 0.0
            kt_buf[j] = 1.0 if 2.0 * d > knee else (u if inside else 0.0)
        for j in range(m):
            d = xg_b[j] - thr
            u = (d + half) * inv_knee
            inside = (2.0 * d >= -knee) and (2.0 * d <= knee) and knee > 0.0
            kw_buf[j] = 0.5 * u * (1.0 - u) if inside else 0.0
        # branch: beta in p_buf, alpha in al_buf
        for j in range(m):
            p_buf[j] = beta_a if br_b[j] != 0 else beta_r
        for j in range(m):
            al_buf[j] = 1.0 - p_buf[j]
        # d alpha: lambda * (y_L[i-1] - x_L[i]), split by branch
        ka_buf[0] = (yl[i0 - 1] if i0 > 0 else 0.0) - slope * kr_buf[0]
        ka_next = ka_buf[1:m]
        kr_next = kr_buf[1:m]
        for j in range(m - 1):
            ka_next[j] = yl_b[j] - slope * kr_next[j]
        for j in range(m):
            kl_buf[j] = 0.0 if br_b[j] != 0 else ka_buf[j]
        for j in range(m):
            ka_buf[j] = ka_buf[j] if br_b[j] != 0 else 0.0
        # d threshold, d ratio, d knee per unit lambda: dL/dx_L = beta * lambda
        for j in range(m):
            kr_buf[j] = inv_r2 * kr_buf[j] * p_buf[j]
        for j in range(m):
            kt_buf[j] = -slope * kt_buf[j] * p_buf[j]
        for j in range(m):
            kw_buf[j] = slope * kw_buf[j] * p_buf[j]
        # pass 2 (serial): the adjoint recursion and the parameter sums
        for j in range(m - 1, -1, -1):
            lam = e_buf[j] + a_next * lam
            a_next = al_buf[j]
            lam_buf[j] = lam
            g_thr += kt_buf[j] * lam
            g_ratio += kr_buf[j] * lam
            g_knee += kw_buf[j] * lam
            g_alpha_a += ka_buf[j] * lam
            g_alpha_r += kl_buf[j] * lam
            g_makeup += dm_buf[j]
        # pass 3 (vectorised): the detector's gradient to the loudest channel(s)
        for j in range(m):
            lam_buf[j] = -kt_buf[j] * lam_buf[j] * scale[j]  # dL/d|x| at the maximum
        for c in range(n_ch):
            x_c = x[c, i0:i0 + m]
            gx_c = gx[c, i0:i0 + m]
            for j in range(m):
                v = x_c[j]
                a = amax[j]
                gx_c[j] += lam_buf[j] if v == a else (-lam_buf[j] if v == -a else 0.0)
    return g_thr, g_ratio, g_knee, g_makeup, g_alpha_a, g_alpha_r


@njit(cache=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def forward_par(x, y, thr, ratio, knee, makeup, beta_a, beta_r, yl, xg, br, save, ok):
    for b in prange(x.shape[0]):
        ok[b] = _forward_one(x[b], y[b], thr[b], ratio[b], knee[b], makeup[b], beta_a[b], beta_r[b],
                             yl[b], xg[b], br[b], save)


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def forward_ser(x, y, thr, ratio, knee, makeup, beta_a, beta_r, yl, xg, br, save, ok):
    for b in range(x.shape[0]):
        ok[b] = _forward_one(x[b], y[b], thr[b], ratio[b], knee[b], makeup[b], beta_a[b], beta_r[b],
                             yl[b], xg[b], br[b], save)


@njit(cache=True, parallel=True, fastmath={"contract"}, error_model="numpy")
def backward_par(x, gy, gyl, has_gyl, gx, thr, ratio, knee, makeup, beta_a, beta_r, yl, xg, br, gp):
    for b in prange(x.shape[0]):
        r = _backward_one(x[b], gy[b], gyl[b], has_gyl, gx[b], thr[b], ratio[b], knee[b], makeup[b],
                          beta_a[b], beta_r[b], yl[b], xg[b], br[b])
        for k in range(6):
            gp[b, k] = r[k]


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def backward_ser(x, gy, gyl, has_gyl, gx, thr, ratio, knee, makeup, beta_a, beta_r, yl, xg, br, gp):
    for b in range(x.shape[0]):
        r = _backward_one(x[b], gy[b], gyl[b], has_gyl, gx[b], thr[b], ratio[b], knee[b], makeup[b],
                          beta_a[b], beta_r[b], yl[b], xg[b], br[b])
        for k in range(6):
            gp[b, k] = r[k]
