"""Private Numba kernels of the stream estimators.

Every kernel works in place on preallocated state arrays:

* ``V``  vector state ``[K, m, d]`` (float32 or float64): Mean ``m=3`` (location, scale,
  slow scale), Linear/Logistic ``m=1`` (weights);
* ``SC`` scalar state ``[K, N_SCALARS]`` float64 (see :mod:`._layout`);
* ``P``  parameter vector ``[N_PARAMS]`` float64.

Single-stream kernels (``*_run``) use slot 0 and run serially; keyed kernels (``*_keyed``)
take samples grouped by key (``order``, ``starts``, ``slots``) and process the groups in
parallel with ``prange``: every key has exactly one writer, so no locks are needed.

A kernel returns, per group, ``-1`` or the row index of the first NaN/inf sample. With
``mode == 0`` (raise) it stops that group there (the caller restores its snapshot and
raises); with ``mode == 1`` (skip) the sample is counted in ``N_INVALID`` and skipped.
Non-finite input is detected on fused reductions (dot products, norms) of the first pass, so
validation costs no extra read of ``X``.

Each kernel has a naive Python twin in :mod:`._reference`; the tests compare them.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._config import JIT, JIT_INLINE, JIT_ONE, JIT_PARALLEL, JIT_STRICT
from ._layout import (
    AUX,
    AUX_SLOW,
    BIAS,
    CLIP_FLOOR_SLOW,
    CLIP_Q,
    EPOCH_END,
    ETA,
    GN_SLOW,
    LK_MEAN,
    LK_N,
    LK_SHORT,
    LK_VAR,
    MAG,
    N_INVALID,
    N_SEEN,
    P_ALPHA,
    P_CLIP,
    P_CLIP_LR,
    P_CLIP_MULT,
    P_CLIP_QUANTILE,
    P_EPS_MAG,
    P_HORIZON,
    P_LK_LONG,
    P_LK_SHORT,
    P_LK_SKIP,
    P_LK_WARMUP,
    P_LR,
    P_REG,
    P_SCORE_CLIP,
    P_SLOW_RATE,
    P_TH_LR,
    P_TH_MARGIN,
    P_TH_QUANTILE,
    P_TH_WARMUP,
    P_TINY_SQ,
    SCALE_FLOOR_SLOW,
    TH_DEV,
    TH_HI,
    TH_MED,
    TH_N,
    TINY,
)

MEAN, LINEAR, LOGISTIC = 0, 1, 2
# The slow floors average raw magnitudes capped at a multiple of themselves. A mean of capped
# values cannot tell a 10% minority of outliers from the 10% nonzero values of a mostly-zero
# stream, so the two floors choose differently: the clip's floor (GN_SLOW_CAP) tolerates up
# to 1/4 of outliers and may shrink on a stream of more than 3/4 exact zeros (the location
# then rests at 0, which is right); the scales' floors (SLOW_CAP) cannot collapse while more
# than 1/20 of the samples are nonzero (a stream of 90% zeros keeps finite, stable scores),
# and a sustained 10% of outliers raises them (scores then rank the outliers, with less room
# for moderate anomalies).
SLOW_CAP = 20.0
GN_SLOW_CAP = 4.0
BURN_IN = 2.0  # the first scores of a fresh state are meaningless: not fed to the threshold
PREFETCH_ROWS = 4  # keyed kernels prefetch the row this many samples ahead (in key order)
PREFETCH_LOCALITY = 3  # llvm.prefetch locality: 3 = keep in all cache levels (4, 3 measured best)


# ----------------------------------------------------------------------------- helpers
@intrinsic
def _prefetch(typingctx, arr, i, j):
    """Hint the CPU to start loading the cache line of ``arr[i, j]`` (2-D array); no effect on results, never faults.

    Keyed kernels visit rows in key order, not memory order, so the hardware prefetchers
    cannot guess the next row: we name it.
    """
    if not (isinstance(arr, types.Array) and arr.ndim == 2
            and isinstance(i, types.Integer) and isinstance(j, types.Integer)):
        return None
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ii = context.cast(builder, args[1], signature.args[1], types.intp)
        jj = context.cast(builder, args[2], signature.args[2], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [ii, jj], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read access, locality PREFETCH_LOCALITY, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0),
                          ir.Constant(i32, PREFETCH_LOCALITY), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return sig, codegen


@njit(**JIT_INLINE)
def _prefetch_next_row(X, order, t):
    """Prefetch every cache line of row ``order[t]`` of X, if there is one."""
    if t < order.shape[0]:
        r = order[t]
        d = X.shape[1]
        for j in range(0, d, 64 // X.itemsize):
            _prefetch(X, r, j)
        _prefetch(X, r, d - 1)            # rows need not start on a cache-line boundary


@njit(**JIT_INLINE)
def _next_epoch(n_seen, epoch_end, eta, P):
    """The doubling schedule after ``n_seen`` learned samples: (epoch_end, eta), unchanged inside an epoch.

    At its end the next epoch is twice as long and eta = lr * T**-alpha. A fixed horizon
    keeps eta constant.
    """
    if P[P_HORIZON] <= 0.0 and n_seen >= epoch_end:
        T = epoch_end + 1.0          # next epoch length (1, 2, 4, ...)
        return epoch_end + T, P[P_LR] * T ** (-P[P_ALPHA])
    return epoch_end, eta


@njit(**JIT_INLINE)
def _advance_schedule(sc, P):
    """Count one learned sample in ``sc`` and advance the doubling schedule."""
    n = sc[N_SEEN] + 1.0
    sc[N_SEEN] = n
    sc[EPOCH_END], sc[ETA] = _next_epoch(n, sc[EPOCH_END], sc[ETA], P)


@njit(**JIT_INLINE)
def _slow_rate(n, P):
    """Rate of the slow statistics after n samples.

    A plain running mean (1 / (n + 1)) until that falls below ``P_SLOW_RATE``, then an
    exponential average over about 1 / rate samples.
    """
    r = P[P_SLOW_RATE]
    if (n + 1.0) * r < 1.0:
        return 1.0 / (n + 1.0)
    return r


@njit(**JIT_INLINE)
def _clip_factor(gn, sc, P):
    """min(1, lambda / ||g||) with lambda fixed or adapted from the running quantile; see _clip_local for the floor."""
    f, q, gslow = _clip_local(gn, sc[CLIP_Q], sc[GN_SLOW], _slow_rate(sc[N_SEEN], P), P)
    sc[CLIP_Q] = q
    sc[GN_SLOW] = gslow
    return f


@njit(**JIT_INLINE)
def _mean_floor(aux, mag, P):
    """Scale floor of the Mean's standardisation shared by all coordinates.

    Scale floor of the Mean's standardisation shared by all coordinates, tied to the current
    mean scale and to the data's own magnitude (a few units of roundoff); each coordinate adds
    a fraction of its own slow running scale (see _mean_distances).
    """
    a = P[P_REG] * aux
    c = P[P_EPS_MAG] * mag
    return math.sqrt(a * a + c * c)


@njit(**JIT_INLINE)
def _linear_scale(aux, aux_slow, mag, P):
    """Residual scale of the Linear score, floored like _mean_floor."""
    return aux + SCALE_FLOOR_SLOW * aux_slow + P[P_EPS_MAG] * mag + TINY


@njit(**JIT_INLINE)
def _threshold_value(sc, P):
    return sc[TH_HI] + P[P_TH_MARGIN] * sc[TH_DEV]


@njit(**JIT_INLINE)
def _flag_of(score, sc, P):
    """The flag of ``score`` against the key's threshold as it stands (none while warming up)."""
    if sc[TH_N] >= P[P_TH_WARMUP] and sc[TH_N] > 0.0 and score > _threshold_value(sc, P):
        return 1
    return 0


@njit(**JIT_INLINE)
def _threshold_step(score, sc, P):
    """Flag ``score`` against the current threshold, then update the threshold with it."""
    flag = _flag_of(score, sc, P)
    sc[TH_MED], sc[TH_HI], sc[TH_DEV], sc[TH_N] = _threshold_local(
        score, sc[TH_MED], sc[TH_HI], sc[TH_DEV], sc[TH_N], P)
    return flag


def _as(x, like):
    """``x`` rounded to the floating type of ``like`` (a Numba overload)."""


@overload(_as, inline="always")
def _as_impl(x, like):
    if isinstance(like, types.Float) and like.bitwidth == 32:
        return lambda x, like: np.float32(x)
    return lambda x, like: np.float64(x)


@njit(**JIT_INLINE)
def _threshold_update(score, med, hi, dev, n, lr, lr64, p, p1m, half, four):
    """One update of the threshold's running median, deviation and upper quantile.

    One update of the threshold's running median ``med``, deviation ``dev`` and upper
    quantile ``hi`` after ``n`` scores; returns (med, hi, dev, n + 1). The arithmetic runs in
    the precision of ``lr``, ``p``, ``p1m`` = 1 - p, ``half`` and ``four`` (float64 for the Mean
    and the standalone threshold, the state's for the GLM sequence); ``lr64`` is ``lr`` in
    float64. The rate is 1 / (n + 1) (a plain mean) until that falls below ``lr``.
    """
    if n == 0.0:
        return score, score, _as(0.0, lr), 1.0
    rate = lr
    if (n + 1.0) * lr64 < 1.0:          # division only in the first 1/lr scores
        rate = _as(1.0 / (n + 1.0), lr)
    a = abs(score - med)
    if n >= 5.0 and dev > 0.0:
        a = min(a, four * dev)           # clipped update: one huge score cannot blow it up
        # (not while the deviation is still 0, after equal first scores: it would stay 0)
    dev = dev + rate * (a - dev)
    step = rate * dev
    med = med + half * step if score > med else med - half * step
    hi = hi + step * p if score > hi else hi - step * p1m
    return med, max(hi, med), dev, n + 1.0


# ----------------------------------------------------------------------------- steps
@njit(**JIT)
def _mean_distances(x, mu, s, sl, fl, P, buf):
    """Clipped standardised and plain squared distances of one row to the Mean's location.

    (sum_j min(z_j^2, c^2), ||x - mu||^2) for z_j = (x_j - mu_j) / sqrt(s_j^2 + (k sl_j)^2
    + fl^2), sl the slow running scale and k = SCALE_FLOOR_SLOW: the one pass over a row that
    both the score and the clipped update start from. fl^2, k^2 and c^2 go through ``buf``
    (state dtype) so float32 state rounds them as it rounds everything else.
    """
    d = x.shape[0]
    buf[1] = SCALE_FLOOR_SLOW * SCALE_FLOOR_SLOW
    buf[2] = fl * fl + P[P_TINY_SQ]
    buf[3] = P[P_SCORE_CLIP] * P[P_SCORE_CLIP]
    k2 = buf[1]
    fl2 = buf[2]
    c2 = buf[3]
    r = x[0] - mu[0]
    rr = r * r
    z2 = r * r / (s[0] * s[0] + k2 * sl[0] * sl[0] + fl2)
    acc = z2 if z2 < c2 else c2
    for j in range(1, d):
        r = x[j] - mu[j]
        rr += r * r
        z2 = r * r / (s[j] * s[j] + k2 * sl[j] * sl[j] + fl2)
        acc += z2 if z2 < c2 else c2
    return acc + 0.0, rr + 0.0


@njit(**JIT_INLINE)
def _mean_score_row(x, mu, s, sl, sc, P, buf):
    """(finite, score, ||x - mu||^2) of one sample against the state (pure).

    score = sqrt(mean_j min(z_j^2, c^2)), z_j = (x_j - mu_j) / sqrt(s_j^2 + f^2): a robust
    standardised distance, each coordinate's contribution capped at c^2 (no single feature
    dominates).
    """
    d = x.shape[0]
    acc, rr = _mean_distances(x, mu, s, sl, _mean_floor(sc[AUX], sc[MAG], P), P, buf)
    if not np.isfinite(rr):
        return False, 0.0, rr
    if sc[N_SEEN] < 2.0:                 # no scale yet: no information, score 0
        return True, 0.0, rr
    return True, math.sqrt(acc / d), rr


@njit(**JIT_INLINE)
def _mean_step(x, mu, s, sl, sc, P, buf):
    """Score one sample (prequential), then learn it. Returns (finite, score)."""
    ok, score, rr = _mean_score_row(x, mu, s, sl, sc, P, buf)
    if not ok:
        return False, 0.0
    d = x.shape[0]
    rate = _slow_rate(sc[N_SEEN], P)
    xa = x[0] - x[0]
    if sc[N_SEEN] == 0.0:
        for j in range(d):
            mu[j] = x[j]
            s[j] = 0.0
            sl[j] = 0.0
            xa += abs(x[j])
        sc[AUX] = 0.0
    else:
        f = _clip_factor(math.sqrt(rr), sc, P)
        buf[0] = sc[ETA] * f
        buf[1] = rate
        step = buf[0]
        rt = buf[1]
        ssum = s[0] - s[0]
        for j in range(d):
            r = x[j] - mu[j]
            mu[j] += step * r
            s[j] += step * (abs(r) - s[j])
            a = abs(r)
            if sl[j] > 0.0 and a > SLOW_CAP * sl[j]:
                a = SLOW_CAP * sl[j]
            sl[j] += rt * (a - sl[j])
            ssum += s[j]
            xa += abs(x[j])
        sc[AUX] = ssum / d
    sc[MAG] += rate * (xa / d - sc[MAG])
    _advance_schedule(sc, P)
    if sc[N_SEEN] > BURN_IN:
        _threshold_step(score, sc, P)
    return True, score


@njit(**JIT_INLINE)
def _glm_score_row(kind, x, w, sc, y, has_y, P):
    """(finite, score, z, ||x||^2): Linear |y - z| / residual scale (needs y).

    Logistic log-loss of y, or P(y = 1 | x) when no label is given. Pure.
    """
    d = x.shape[0]
    # accumulate in the input's precision (float32 SIMD lanes), then widen
    zz = w[0] * x[0]
    xx_ = x[0] * x[0]
    for j in range(1, d):
        zz += w[j] * x[j]
        xx_ += x[j] * x[j]
    z = sc[BIAS] + zz
    xx = xx_ + 0.0
    if not (np.isfinite(z) and np.isfinite(xx)):
        return False, 0.0, z, xx
    if kind == LINEAR:
        if sc[N_SEEN] == 0.0:
            return True, 0.0, z, xx
        return True, abs(y - z) / _linear_scale(sc[AUX], sc[AUX_SLOW], sc[MAG], P), z, xx
    if not has_y:
        if z >= 0.0:
            return True, 1.0 / (1.0 + math.exp(-z)), z, xx
        e = math.exp(z)
        return True, e / (1.0 + e), z, xx
    # log-loss: softplus(-z) for y = 1, softplus(z) for y = 0
    t = -z if y > 0.5 else z
    if t > 0.0:
        return True, t + math.log1p(math.exp(-t)), z, xx
    return True, math.log1p(math.exp(t)), z, xx


@njit(**JIT_INLINE)
def _glm_step(kind, x, w, sc, y, P, buf):
    """Score one labelled sample (prequential), then take one clipped, normalised SGD step.

    Gradient g = (pred - y) * [x, 1]; clipped on ||g||, preconditioned by 1 / (1 + ||x||^2)
    (normalised LMS), so no feature scaling is needed; L2 as decoupled decay.
    """
    d = x.shape[0]
    zz = w[0] * x[0]
    xx_ = x[0] * x[0]
    for j in range(1, d):
        zz += w[j] * x[j]
        xx_ += x[j] * x[j]
    z = sc[BIAS] + zz
    xx = xx_ + 0.0
    if not (np.isfinite(z) and np.isfinite(xx)):
        return False, 0.0
    if kind == LINEAR:
        err = z - y
        score = 0.0 if sc[N_SEEN] == 0.0 else abs(err) / _linear_scale(sc[AUX], sc[AUX_SLOW],
                                                                        sc[MAG], P)
    else:
        # one exp serves the probability and the log-loss (softplus of -z or z)
        e = math.exp(-abs(z))
        inv = 1.0 / (1.0 + e)
        p = inv if z >= 0.0 else e * inv
        err = p - y
        t = -z if y > 0.5 else z
        score = (t if t > 0.0 else 0.0) + math.log1p(e)
    nx = xx + 1.0
    gn = abs(err) * math.sqrt(nx)
    rate = _slow_rate(sc[N_SEEN], P)
    f = _clip_factor(gn, sc, P)
    eta = sc[ETA]
    step = -eta * f * err / nx
    # scalars in the state's precision (via the scratch buffer) keep the loop in SIMD lanes
    buf[0] = step
    buf[1] = 1.0 - eta * P[P_REG]
    st = buf[0]
    decay = buf[1]
    d = x.shape[0]
    if P[P_REG] == 0.0:
        for j in range(d):
            w[j] += st * x[j]
    else:
        for j in range(d):
            w[j] = w[j] * decay + st * x[j]
    sc[BIAS] += step
    if kind == LINEAR:
        sc[AUX] += eta * f * (abs(err) - sc[AUX])
        a = abs(err)
        if sc[AUX_SLOW] > 0.0 and a > SLOW_CAP * sc[AUX_SLOW]:
            a = SLOW_CAP * sc[AUX_SLOW]
        sc[AUX_SLOW] += rate * (a - sc[AUX_SLOW])
        sc[MAG] += rate * (abs(y) - sc[MAG])
    _advance_schedule(sc, P)
    if sc[N_SEEN] > BURN_IN:
        _threshold_step(score, sc, P)
    return True, score


@njit(**JIT_INLINE)
def _step(kind, x, v, sc, y, P, buf):
    if kind == MEAN:
        return _mean_step(x, v[0], v[1], v[2], sc, P, buf)
    return _glm_step(kind, x, v[0], sc, y, P, buf)


@njit(**JIT_INLINE)
def _score(kind, x, v, sc, y, has_y, P, buf):
    if kind == MEAN:
        ok, score, rr = _mean_score_row(x, v[0], v[1], v[2], sc, P, buf)
        return ok, score
    ok, score, z, xx = _glm_score_row(kind, x, v[0], sc, y, has_y, P)
    return ok, score


# ----------------------------------------------------------------------------- fused sequences
# The per-sample steps above document the algorithm one sample at a time. The sequence
# kernels below run the same arithmetic over a run of samples of one key with the scalar
# state held in local variables (registers) instead of the state array, which LLVM would
# otherwise reload and store around every vector loop (it cannot prove the arrays distinct).


@njit(**JIT_INLINE)
def _clip_bound(gn, q, gslow, rate, fixed, lam_fixed, cmult, qup, qdown, cfloor, gcap, big):
    """The clip radius lambda for a gradient of norm ``gn``; returns (lambda, new q, new gslow).

    Fixed clip: ``lam_fixed``. Adaptive: ``cmult`` times the running quantile ``q`` of the
    norms (multiplied by ``qup`` after a norm above it, ``qdown`` otherwise); the first non-zero
    norm starts it (no clip, ``big``, before). ``gslow`` is the slow running mean (rate
    ``rate``) of the norms, each capped at ``gcap`` times ``gslow`` itself (see SLOW_CAP). The
    quantile shrinks geometrically while gradients are zero (a run of constant input); flooring
    it at ``cfloor`` times ``gslow`` keeps the model able to move afterwards. The cap keeps
    outliers from raising the floor; capping at the clip instead would let the floor follow the
    clip down. The arithmetic runs in the precision of the arguments.
    """
    if fixed:
        lam = lam_fixed
    elif q <= 0.0:
        lam = big
        if gn > 0.0:
            q = gn
    else:
        lam = cmult * q
        q = q * qup if gn > q else q * qdown
        q = max(q, cfloor * gslow)
    g = gn
    if gslow > 0.0 and g > gcap * gslow:
        g = gcap * gslow
    return lam, q, gslow + rate * (g - gslow)


@njit(**JIT_INLINE)
def _clip_local(gn, q, gslow, rate, P):
    """(factor min(1, lambda / gn), new q, new gslow) of the clip (_clip_bound) in float64."""
    p = P[P_CLIP_QUANTILE]
    lam, q, gslow = _clip_bound(gn, q, gslow, rate, P[P_CLIP] > 0.0, P[P_CLIP], P[P_CLIP_MULT],
                                1.0 + P[P_CLIP_LR] * (1.0 - p), 1.0 - P[P_CLIP_LR] * p,
                                CLIP_FLOOR_SLOW, GN_SLOW_CAP, np.inf)
    if gn <= lam:
        return 1.0, q, gslow
    return lam / gn, q, gslow


@njit(**JIT_INLINE)
def _threshold_local(score, med, hi, dev, n, P):
    """_threshold_update in float64 with the threshold's parameters from ``P``."""
    return _threshold_update(score, med, hi, dev, n, P[P_TH_LR], P[P_TH_LR], P[P_TH_QUANTILE],
                             1.0 - P[P_TH_QUANTILE], 0.5, 4.0)


@njit(**JIT_INLINE)
def _store_scalars(sc, n_seen, n_invalid, epoch_end, eta, q, aux, bias, th_med, th_hi, th_dev, th_n,
                   gslow, aux_slow, mag):
    """Write a sequence's scalar state, kept in locals while it runs, back into ``sc``.

    One place for the layout, shared by _seq and the GLM sequences.
    """
    sc[N_SEEN] = n_seen
    sc[N_INVALID] = n_invalid
    sc[EPOCH_END] = epoch_end
    sc[ETA] = eta
    sc[CLIP_Q] = q
    sc[AUX] = aux
    sc[BIAS] = bias
    sc[TH_MED] = th_med
    sc[TH_HI] = th_hi
    sc[TH_DEV] = th_dev
    sc[TH_N] = th_n
    sc[GN_SLOW] = gslow
    sc[AUX_SLOW] = aux_slow
    sc[MAG] = mag


@njit(**JIT)
def _mean_update(x, w, s, sl, step, rt):
    """The clipped step of the location and scales over one row; returns (sum of scales, sum of |x|).

    Vectorised (``reassoc``) like _mean_distances.
    """
    ssum = s[0] - s[0]
    xa = x[0] - x[0]
    for j in range(x.shape[0]):
        r = x[j] - w[j]
        w[j] += step * r
        s[j] += step * (abs(r) - s[j])
        a = abs(r)                       # the slow floor: capped |r| (see SLOW_CAP)
        if sl[j] > 0.0 and a > SLOW_CAP * sl[j]:
            a = SLOW_CAP * sl[j]
        sl[j] += rt * (a - sl[j])
        ssum += s[j]
        xa += abs(x[j])
    return ssum, xa


# _seq is compiled without ``reassoc``: its scalar updates then round the same way whether it
# runs over a batch or, inlined into the single-event kernel, over one row (bit-identical
# results). The vector loops it calls (_mean_distances, _mean_update) are separate functions,
# not inlined at the Numba level, so they keep ``reassoc`` and vectorise.
@njit(**JIT_STRICT)
def _seq(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode):
    """Prequential score+learn of the Mean over rows order[lo:hi_] (or lo:hi_) of one key.

    Returns the first bad row (mode 0) or -1. Same arithmetic as _mean_step, scalar state kept
    in locals.
    """
    want = scores.shape[0] > 0
    n_seen = sc[N_SEEN]
    n_invalid = sc[N_INVALID]
    epoch_end = sc[EPOCH_END]
    eta = sc[ETA]
    q = sc[CLIP_Q]
    aux = sc[AUX]
    bias = sc[BIAS]
    th_med = sc[TH_MED]
    th_hi = sc[TH_HI]
    th_dev = sc[TH_DEV]
    th_n = sc[TH_N]
    gslow = sc[GN_SLOW]
    aux_slow = sc[AUX_SLOW]
    mag = sc[MAG]
    w = v[0]
    s = v[1]
    sl = v[2]
    d = X.shape[1]
    buf = np.empty(4, v.dtype)
    bad = -1
    for t in range(lo, hi_):
        i = order[t] if use_order else t
        if use_order:
            _prefetch_next_row(X, order, t + PREFETCH_ROWS)
        x = X[i]
        ok = True
        score = 0.0
        acc, rr = _mean_distances(x, w, s, sl, _mean_floor(aux, mag, P), P, buf)
        if not np.isfinite(rr):
            ok = False
        else:
            if n_seen >= 2.0:
                score = math.sqrt(acc / d)
            rate = _slow_rate(n_seen, P)
            xa = x[0] - x[0]
            if n_seen == 0.0:
                for j in range(d):
                    w[j] = x[j]
                    s[j] = 0.0
                    sl[j] = 0.0
                    xa += abs(x[j])
                aux = 0.0
            else:
                f, q, gslow = _clip_local(math.sqrt(rr), q, gslow, rate, P)
                buf[0] = eta * f
                buf[1] = rate
                ssum, xa = _mean_update(x, w, s, sl, buf[0], buf[1])
                aux = ssum / d
            mag += rate * (xa / d - mag)
        if not ok:
            if mode == 0:
                bad = i
                break
            n_invalid += 1.0
            score = np.nan
        else:
            n_seen += 1.0
            epoch_end, eta = _next_epoch(n_seen, epoch_end, eta, P)
            if n_seen > BURN_IN:
                th_med, th_hi, th_dev, th_n = _threshold_local(score, th_med, th_hi, th_dev,
                                                               th_n, P)
        if want:
            scores[i] = score
    _store_scalars(sc, n_seen, n_invalid, epoch_end, eta, q, aux, bias, th_med, th_hi, th_dev, th_n,
                   gslow, aux_slow, mag)
    return bad


# The Linear/Logistic sequence is latency-bound at small d: each sample's update w -> z -> err
# -> step -> w must finish before the next sample's dot product starts. Three measures keep
# that chain short (ClippedSGDLogistic, d=16: 62 -> ~46 ns/sample on the 2-core VM):
# * small d: the dot product in 4 explicit partial sums, compiled *without* ``reassoc`` (which
#   would let LLVM re-linearise them into one chain of d dependent FMAs); large d keeps the
#   re-associating, loop-vectorised form (memory-bound there);
# * software pipelining: the off-chain work of a sample (its log-loss score, the threshold
#   update, the score store) runs one iteration later, when its inputs are ready, so it overlaps
#   the next sample's chain instead of filling the reorder buffer while waiting;
# * one build per kind (Linear, Logistic): no dead branches holding registers; clipping as a
#   clamp (min/max), so no data-dependent branch sits on the chain.
# Arithmetic and order of all updates are unchanged by the deferral (a pure reordering).
LANES_MAX_D = 48       # below this d the 4-lane strict dot is faster


@njit(**JIT_INLINE)
def _dot_sq_lanes(w, X, i, d):
    """(w . X[i], X[i] . X[i]) in 4 independent partial sums each.

    Short dependency chains; 8 live accumulators fit the 16 vector registers, more would
    spill.
    """
    a0 = w[0] - w[0]
    a1 = a2 = a3 = a0
    b0 = b1 = b2 = b3 = a0
    d4 = d - d % 4
    for j in range(0, d4, 4):
        a0 += w[j] * X[i, j]
        a1 += w[j + 1] * X[i, j + 1]
        a2 += w[j + 2] * X[i, j + 2]
        a3 += w[j + 3] * X[i, j + 3]
        b0 += X[i, j] * X[i, j]
        b1 += X[i, j + 1] * X[i, j + 1]
        b2 += X[i, j + 2] * X[i, j + 2]
        b3 += X[i, j + 3] * X[i, j + 3]
    for j in range(d4, d):
        a0 += w[j] * X[i, j]
        b0 += X[i, j] * X[i, j]
    zz = (a0 + a2) + (a1 + a3)
    xx = (b0 + b2) + (b1 + b3)
    return zz, xx


@njit(**JIT_INLINE)
def _dot_sq_wide(w, X, i, d):
    """(w . X[i], X[i] . X[i]) as plain loops: with ``reassoc`` LLVM vectorises them."""
    zz = w[0] * X[i, 0]
    xx = X[i, 0] * X[i, 0]
    for j in range(1, d):
        zz += w[j] * X[i, j]
        xx += X[i, j] * X[i, j]
    return zz, xx


@njit(**JIT_INLINE)
def _log1p_unit(e):
    """log1p(e) for 0 <= e <= 1, inline (a libm call would spill every live register).

    2 atanh(s) with s = e / (2 + e) <= 1/3, odd series to s**31 (truncation < 1e-16; with
    rounding a few ulps, < 1e-15 relative), evaluated as two interleaved Horner chains in
    s**4 (half the latency of one).
    """
    s = e / (2.0 + e)
    s2 = s * s
    s4 = s2 * s2
    ev = 1.0 / 29.0                       # terms s2**(2k): 1/1, 1/5, ..., 1/29
    ev = ev * s4 + 1.0 / 25.0
    ev = ev * s4 + 1.0 / 21.0
    ev = ev * s4 + 1.0 / 17.0
    ev = ev * s4 + 1.0 / 13.0
    ev = ev * s4 + 1.0 / 9.0
    ev = ev * s4 + 1.0 / 5.0
    ev = ev * s4 + 1.0
    od = 1.0 / 31.0                       # terms s2**(2k+1): 1/3, 1/7, ..., 1/31
    od = od * s4 + 1.0 / 27.0
    od = od * s4 + 1.0 / 23.0
    od = od * s4 + 1.0 / 19.0
    od = od * s4 + 1.0 / 15.0
    od = od * s4 + 1.0 / 11.0
    od = od * s4 + 1.0 / 7.0
    od = od * s4 + 1.0 / 3.0
    return 2.0 * s * (ev + s2 * od)


def _make_seq_glm(lanes, kind_):
    """Build the sequence kernel of one GLM kind (LINEAR or LOGISTIC).

    Build the sequence kernel of one GLM kind (LINEAR or LOGISTIC; a compile-time constant:
    the other kind's code and branches vanish, which frees registers), with the 4-lane strict
    dot (``lanes``) or the vectorised one. Numba caches closures keyed by their captured values,
    so the builds get separate cache entries. ``kind`` stays an argument for a uniform call.
    """
    LANES = lanes
    KIND = kind_

    @njit(**(JIT_STRICT if lanes else JIT))
    def _seq_glm(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode):
        """_seq for Linear/Logistic.

        The per-sample chain w -> z -> err -> step -> w runs in the state's precision (float32
        by default: shorter latency than float64), scalars typed through the scratch buffer
        ``buf``.
        """
        want = scores.shape[0] > 0
        has_y = y.shape[0] > 0
        n_seen = sc[N_SEEN]
        n_invalid = sc[N_INVALID]
        epoch_end = sc[EPOCH_END]
        eta = sc[ETA]
        th_n = sc[TH_N]
        reg = P[P_REG]
        fixed = P[P_CLIP] > 0.0
        th_lr64 = P[P_TH_LR]
        w = v[0]
        d = X.shape[1]
        pq = P[P_CLIP_QUANTILE]
        buf = np.empty(29, v.dtype)
        buf[0] = 0.0
        buf[1] = 1.0
        buf[2] = P[P_CLIP_MULT]
        buf[3] = 1.0 + P[P_CLIP_LR] * (1.0 - pq)
        buf[4] = 1.0 - P[P_CLIP_LR] * pq
        buf[5] = P[P_CLIP]
        buf[6] = sc[CLIP_Q]
        buf[7] = sc[BIAS]
        buf[8] = sc[AUX]
        buf[9] = eta
        buf[10] = 1.0 - eta * reg
        buf[11] = TINY
        buf[12] = sc[TH_MED]
        buf[13] = sc[TH_HI]
        buf[14] = sc[TH_DEV]
        buf[15] = P[P_TH_LR]
        buf[16] = P[P_TH_QUANTILE]
        buf[17] = 1.0 - P[P_TH_QUANTILE]
        buf[18] = 0.5
        buf[19] = 4.0
        buf[20] = np.inf
        buf[22] = sc[GN_SLOW]
        buf[23] = sc[AUX_SLOW]
        buf[24] = sc[MAG]
        buf[25] = CLIP_FLOOR_SLOW
        buf[26] = SCALE_FLOOR_SLOW
        buf[27] = P[P_EPS_MAG]
        buf[28] = P[P_SLOW_RATE]
        zero = buf[0]
        one = buf[1]
        cmult = buf[2]
        qup = buf[3]
        qdown = buf[4]
        lam_fixed = buf[5]
        q = buf[6]
        bias = buf[7]
        aux = buf[8]
        eta_t = buf[9]
        decay = buf[10]
        tiny = buf[11]
        tmed = buf[12]
        thi = buf[13]
        tdev = buf[14]
        th_lr = buf[15]
        th_p = buf[16]
        th_1mp = buf[17]
        half = buf[18]
        four = buf[19]
        big = buf[20]
        gslow = buf[22]
        aux_slow = buf[23]
        mag = buf[24]
        cfloor = buf[25]
        sfloor = buf[26]
        epsm = buf[27]
        slow_r = buf[28]
        slow_r64 = P[P_SLOW_RATE]
        buf[21] = GN_SLOW_CAP
        gcapm = buf[21]
        buf[21] = SLOW_CAP
        scapm = buf[21]
        # the deferred (pending) sample: its row, score inputs, and whether it feeds the threshold
        p_row = -1
        p_e = zero
        p_tt = zero
        p_lin = zero
        p_feed = False
        bad = -1
        t = lo
        while True:
            done = t >= hi_
            i = 0
            ok = False
            z = zero
            xx = zero
            yi = zero
            if not done:
                i = order[t] if use_order else t
                if use_order:
                    _prefetch_next_row(X, order, t + PREFETCH_ROWS)
                yi = y[i] if has_y else zero
                if LANES:
                    zz, xx = _dot_sq_lanes(w, X, i, d)
                else:
                    zz, xx = _dot_sq_wide(w, X, i, d)
                z = bias + zz
                ok = np.isfinite(z) and np.isfinite(xx)
            # ---- tail of the pending sample: its inputs are ready, so this overlaps the chain
            if p_row >= 0:
                if KIND == LINEAR:
                    score = p_lin
                else:                     # log-loss: softplus of -z (y = 1) or z (y = 0)
                    buf[21] = (p_tt if p_tt > zero else zero) + _log1p_unit(float(p_e))
                    score = buf[21]
                if p_feed:                # the threshold, in the state's precision
                    tmed, thi, tdev, th_n = _threshold_update(score, tmed, thi, tdev, th_n, th_lr,
                                                              th_lr64, th_p, th_1mp, half, four)
                if want:
                    scores[p_row] = score
                p_row = -1
            if done:
                break
            if not ok:
                if mode == 0:
                    bad = i
                    break
                n_invalid += 1.0
                if want:
                    scores[i] = np.nan
                t += 1
                continue
            # ---- the chain of this sample
            if (n_seen + 1.0) * slow_r64 < 1.0:      # _slow_rate, in the state's precision
                buf[21] = 1.0 / (n_seen + 1.0)
                srate = buf[21]
            else:
                srate = slow_r
            if KIND == LINEAR:
                err = z - yi
                p_lin = zero if n_seen == 0.0 else abs(err) / (aux + sfloor * aux_slow
                                                               + epsm * mag + tiny)
            else:
                e = math.exp(-abs(z))
                inv = one / (one + e)
                p = inv if z >= zero else e * inv
                err = p - yi
                p_e = e
                p_tt = -z if yi > 0.5 else z
            # 1/sqrt(nx), 1/nx depend on x only: off the w -> z -> err -> w chain
            nx = xx + one
            rs = one / math.sqrt(nx)
            inv_nx = rs * rs
            gn = abs(err) * nx * rs
            lam, q, gslow = _clip_bound(gn, q, gslow, srate, fixed, lam_fixed, cmult, qup, qdown,
                                        cfloor, gcapm, big)
            # err * min(1, lam / gn) == err clamped to +-lam / sqrt(nx): no branch on the chain
            cap = lam * rs
            g = min(max(err, -cap), cap)
            st = -eta_t * g * inv_nx
            if reg == 0.0:
                for j in range(d):
                    w[j] += st * X[i, j]
            else:
                for j in range(d):
                    w[j] = w[j] * decay + st * X[i, j]
            bias += st
            if KIND == LINEAR:
                f = one if gn <= lam else lam / gn
                aux += eta_t * f * (abs(err) - aux)
                ae = abs(err)                 # capped |err| as in _glm_step
                if aux_slow > zero and ae > scapm * aux_slow:
                    ae = scapm * aux_slow
                aux_slow = aux_slow + srate * (ae - aux_slow)
                mag = mag + srate * (abs(yi) - mag)
            n_seen += 1.0
            e_end, eta_next = _next_epoch(n_seen, epoch_end, eta, P)
            if e_end != epoch_end:
                epoch_end = e_end
                eta = eta_next
                buf[9] = eta
                buf[10] = 1.0 - eta * reg
                eta_t = buf[9]
                decay = buf[10]
            p_row = i
            p_feed = n_seen > BURN_IN
            t += 1
        _store_scalars(sc, n_seen, n_invalid, epoch_end, eta, q, aux, bias, tmed, thi, tdev, th_n,
                       gslow, aux_slow, mag)
        return bad

    return _seq_glm


_seq_linear_lanes = _make_seq_glm(True, LINEAR)
_seq_linear_wide = _make_seq_glm(False, LINEAR)
_seq_logistic_lanes = _make_seq_glm(True, LOGISTIC)
_seq_logistic_wide = _make_seq_glm(False, LOGISTIC)


@njit(**JIT)
def _seq_any(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode):
    if kind == MEAN:
        return _seq(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode)
    lanes = X.shape[1] < LANES_MAX_D
    if kind == LINEAR:
        if lanes:
            return _seq_linear_lanes(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode)
        return _seq_linear_wide(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode)
    if lanes:
        return _seq_logistic_lanes(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode)
    return _seq_logistic_wide(kind, X, y, order, lo, hi_, use_order, v, sc, P, scores, mode)


# ----------------------------------------------------------------------------- learning
@njit(**JIT)
def _process_run(kind, X, y, V, SC, P, scores, mode):
    """One stream (slot 0): for each row score it, learn it. Returns the first bad row or -1.

    ``scores`` may have length 0 (not wanted); ``y`` has length 0 for the Mean.
    """
    dummy = np.empty(0, np.int64)
    return _seq_any(kind, X, y, dummy, 0, X.shape[0], False, V[0], SC[0], P, scores, mode)


@njit(**JIT)
def _process_run_steps(kind, X, y, V, SC, P, scores, mode):
    """Sample-at-a-time version of _process_run (built from _step; cross-checked in tests)."""
    n = X.shape[0]
    want = scores.shape[0] > 0
    has_y = y.shape[0] > 0
    v = V[0]
    sc = SC[0]
    buf = np.empty(4, V.dtype)
    for i in range(n):
        yi = y[i] if has_y else 0.0
        ok, score = _step(kind, X[i], v, sc, yi, P, buf)
        if not ok:
            if mode == 0:
                return i
            sc[N_INVALID] += 1.0
            score = np.nan
        if want:
            scores[i] = score
    return -1


@njit(**JIT_PARALLEL)
def _process_keyed(kind, X, y, order, starts, slots, V, SC, P, scores, mode):
    """Keyed prequential kernel: group g holds rows order[starts[g]:starts[g+1]] of key slot slots[g], in arrival order.

    Groups run in parallel (one writer per key). Returns per group the first bad row or -1.
    """
    G = slots.shape[0]
    bad = np.full(G, -1, np.int64)
    for g in prange(G):
        k = slots[g]
        bad[g] = _seq_any(kind, X, y, order, starts[g], starts[g + 1], True, V[k], SC[k], P,
                      scores, mode)
    return bad


@njit(**JIT)
def _process_keyed_serial(kind, X, y, order, starts, slots, V, SC, P, scores, mode):
    """Serial twin of _process_keyed, for small batches.

    Below the measured crossover a parallel launch costs more than it saves.
    """
    G = slots.shape[0]
    bad = np.full(G, -1, np.int64)
    for g in range(G):
        k = slots[g]
        bad[g] = _seq_any(kind, X, y, order, starts[g], starts[g + 1], True, V[k], SC[k], P,
                      scores, mode)
    return bad


# ----------------------------------------------------------------------------- scoring (pure)
@njit(**JIT)
def _score_run(kind, X, y, V, SC, P, scores):
    """Score rows against slot 0 without changing state. Returns the first bad row or -1."""
    has_y = y.shape[0] > 0
    v = V[0]
    sc = SC[0]
    buf = np.empty(4, V.dtype)
    for i in range(X.shape[0]):
        yi = y[i] if has_y else 0.0
        ok, score = _score(kind, X[i], v, sc, yi, has_y, P, buf)
        if not ok:
            return i
        scores[i] = score
    return -1


@njit(**JIT_PARALLEL)
def _score_keyed(kind, X, y, rowslot, V, SC, P, scores, empty_score):
    """Score row i against key slot rowslot[i] (``-1``: unseen key -> ``empty_score``).

    Pure; chunks of rows run in parallel. Returns the number of non-finite rows (scored NaN).
    """
    has_y = y.shape[0] > 0
    n = X.shape[0]
    chunk = 1024
    nchunks = (n + chunk - 1) // chunk
    nbad = np.zeros(nchunks, np.int64)
    for c in prange(nchunks):
        buf = np.empty(4, V.dtype)
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            k = rowslot[i]
            yi = y[i] if has_y else 0.0
            if k < 0:
                ok = True
                for j in range(X.shape[1]):
                    if not np.isfinite(X[i, j]):
                        ok = False
                score = empty_score
                if not has_y and kind == LOGISTIC:
                    score = 0.5
            else:
                ok, score = _score(kind, X[i], V[k], SC[k], yi, has_y, P, buf)
            if not ok:
                nbad[c] += 1
                score = np.nan
            scores[i] = score
    return nbad.sum()


# ----------------------------------------------------------------------------- threshold
@njit(**JIT)
def _threshold_run(scores, SC, P, flags, thresholds):
    """Standalone AdaptiveThreshold over a score stream (slot 0), prequential; NaN skipped."""
    sc = SC[0]
    want = thresholds.shape[0] > 0
    for i in range(scores.shape[0]):
        s = scores[i]
        if want:
            thresholds[i] = _threshold_value(sc, P) if sc[TH_N] >= P[P_TH_WARMUP] else np.inf
        if not np.isfinite(s):
            flags[i] = 0
            continue
        flags[i] = _threshold_step(s, sc, P)


@njit(**JIT_PARALLEL)
def _threshold_flags_keyed(scores, rowslot, SC, P, flags):
    """Pure: flag score i against the threshold of key rowslot[i] (no flag while warming up)."""
    for i in prange(scores.shape[0]):
        k = rowslot[i]
        f = 0
        if k >= 0:
            sc = SC[k]
            if sc[TH_N] >= P[P_TH_WARMUP] and sc[TH_N] > 0.0 \
                    and scores[i] > _threshold_value(sc, P):
                f = 1
        flags[i] = f


@njit(**JIT)
def _group_by_slot(slots, n_slots):
    """Counting sort of rows by slot (stable). Returns (order, starts, group_slots)."""
    n = slots.shape[0]
    counts = np.zeros(n_slots + 1, np.int64)
    for i in range(n):
        counts[slots[i] + 1] += 1
    G = 0
    for k in range(1, n_slots + 1):
        if counts[k] > 0:
            G += 1
    group_slots = np.empty(G, np.int64)
    starts = np.empty(G + 1, np.int64)
    g = 0
    for k in range(n_slots):
        c = counts[k + 1]
        if c > 0:
            group_slots[g] = k
            g += 1
    for k in range(n_slots):
        counts[k + 1] += counts[k]
    for g in range(G):
        starts[g] = counts[group_slots[g]]
    starts[G] = n
    pos = counts[:n_slots].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        k = slots[i]
        order[pos[k]] = i
        pos[k] += 1
    return order, starts, group_slots


@njit(**JIT)
def _first_invalid_row_serial(X, bound):
    """Serial _first_invalid_row for small batches."""
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            if not (abs(X[i, j]) <= bound):   # also true for NaN
                return i
    return -1


@njit(**JIT_PARALLEL)
def _first_invalid_row(X, bound):
    """Smallest row index holding NaN/inf or |x| > bound, or -1 (parallel, read-only)."""
    n = X.shape[0]
    d = X.shape[1]
    chunk = 4096
    nchunks = (n + chunk - 1) // chunk
    first = np.full(nchunks, -1, np.int64)
    for c in prange(nchunks):
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            m = 0.0
            for j in range(d):
                a = abs(X[i, j])
                if not (a <= bound):          # also true for NaN
                    m = 1.0
            if m > 0.0:
                first[c] = i
                break
    for c in range(nchunks):
        if first[c] >= 0:
            return first[c]
    return -1


@njit(**JIT)
def _check_labels(y, binary):
    """(first non-finite index or -1, first index not in {0, 1} when ``binary``, or -1)."""
    # fast path: a branch-free (vectorised) count of good labels; the search below runs only
    # when some label is bad
    n_good = 0
    if binary:
        for i in range(y.shape[0]):
            n_good += (y[i] == 0.0) | (y[i] == 1.0)
    else:
        for i in range(y.shape[0]):
            n_good += np.isfinite(y[i])
    if n_good == y.shape[0]:
        return -1, -1
    bad_fin = -1
    bad_bin = -1
    for i in range(y.shape[0]):
        v = y[i]
        if not np.isfinite(v):
            if bad_fin < 0:
                bad_fin = i
        elif binary and v != 0.0 and v != 1.0:
            if bad_bin < 0:
                bad_bin = i
    return bad_fin, bad_bin


@njit(**JIT)
def _copy_rows(src, dst):
    """Plain copy, the memory-bandwidth yardstick of the benchmarks."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


# ----------------------------------------------------------------------------- anomaly probability
# A causal tail probability of the latest scores against the long-run ones, in the spirit of
# Numenta's anomaly likelihood (Ahmad et al., "Unsupervised real-time anomaly detection for
# streaming data", Neurocomputing 2017): the mean of log1p(score) over a short window is
# compared with the running mean and variance of that same short mean over a long window.
# Raw scores differ in scale from one stream (key) to the next; the probability does not.
LK_SD_REL = 1e-3   # the long-run spread is floored at this fraction of its mean...
LK_SD_ABS = 1e-12  # ...and at this absolute value (a constant score stream has none)


# Compiled without ``reassoc`` and not inlined at the Numba level: the probability then rounds
# the same way in every kernel that calls it (batch, keyed, serial, single event).
@njit(**JIT_STRICT)
def _proba_step(score, sc, P, learn):
    """P(short-window mean below its long-run distribution) for ``score`` (NaN: NaN), against the state before it.

    With ``learn``, then fold ``score`` into the state.
    """
    if not np.isfinite(score):
        return np.nan
    n = sc[LK_N] - P[P_LK_SKIP]            # scores that count (the first P_LK_SKIP do not)
    if n < 0.0:
        if learn:
            sc[LK_N] += 1.0
        return 0.5
    v = math.log1p(score) if score > 0.0 else 0.0
    if n == 0.0:
        a = v
    else:
        rs = 1.0 / (n + 1.0)
        if rs < 1.0 / P[P_LK_SHORT]:
            rs = 1.0 / P[P_LK_SHORT]
        a = sc[LK_SHORT] + rs * (v - sc[LK_SHORT])
    g = a
    m = sc[LK_MEAN]
    var = sc[LK_VAR]
    p = 0.5
    if n >= P[P_LK_WARMUP]:
        fl = LK_SD_REL * abs(m) + LK_SD_ABS
        z = (g - m) / math.sqrt(var + fl * fl)
        p = 0.5 * math.erfc(-z * 0.7071067811865476)
    if learn:
        sc[LK_SHORT] = a
        if n == 0.0:
            sc[LK_MEAN] = g
            sc[LK_VAR] = 0.0
        else:
            rl = 1.0 / (n + 1.0)
            if rl < 1.0 / P[P_LK_LONG]:
                rl = 1.0 / P[P_LK_LONG]
            delta = g - m
            sc[LK_MEAN] = m + rl * delta
            sc[LK_VAR] = (1.0 - rl) * (var + rl * delta * delta)
        sc[LK_N] += 1.0
    return p


@njit(**JIT)
def _proba_run(scores, SC, P, out, learn):
    """Anomaly probabilities of a score stream of slot 0.

    Anomaly probabilities of a score stream of slot 0 (prequential when ``learn``, else each
    score against the current state); ``out`` may be empty (state update only).
    """
    sc = SC[0]
    want = out.shape[0] > 0
    for i in range(scores.shape[0]):
        p = _proba_step(scores[i], sc, P, learn)
        if want:
            out[i] = p


@njit(**JIT_PARALLEL)
def _proba_keyed(scores, order, starts, slots, SC, P, out):
    """Prequential anomaly probabilities, rows grouped by key as in _process_keyed."""
    want = out.shape[0] > 0
    for g in prange(slots.shape[0]):
        sc = SC[slots[g]]
        for t in range(starts[g], starts[g + 1]):
            i = order[t]
            p = _proba_step(scores[i], sc, P, True)
            if want:
                out[i] = p


@njit(**JIT)
def _proba_keyed_serial(scores, order, starts, slots, SC, P, out):
    """Serial _proba_keyed for small batches."""
    want = out.shape[0] > 0
    for g in range(slots.shape[0]):
        sc = SC[slots[g]]
        for t in range(starts[g], starts[g + 1]):
            i = order[t]
            p = _proba_step(scores[i], sc, P, True)
            if want:
                out[i] = p


@njit(**JIT_PARALLEL)
def _proba_pure_keyed(scores, rowslot, SC, P, out):
    """Pure: probability of score i against key rowslot[i] (-1, an unseen key: 0.5)."""
    for i in prange(scores.shape[0]):
        k = rowslot[i]
        if k < 0:
            out[i] = 0.5 if np.isfinite(scores[i]) else np.nan
        else:
            out[i] = _proba_step(scores[i], SC[k], P, False)


# ----------------------------------------------------------------------------- single events
@njit(**JIT_INLINE)
def _row_ok(x, yv, has_y):
    for j in range(x.shape[0]):
        if not np.isfinite(x[j]):
            return False
    return (not has_y) or np.isfinite(yv)


_NO_ORDER = np.empty(0, np.int64)   # a frozen constant of the single-event kernel


@njit(**JIT_ONE)
def _one(kind, x, yv, has_y, V, SC, P, slot, learn, mode, scores, y1):
    """One event of key ``slot`` (-1: an unseen key, scored as a fresh state).

    Its (score, probability, flag) against the state before it; with ``learn``, then learn
    it by the same sequence kernel as the batch path (so the numbers are the same, bit for
    bit). A row with NaN/inf (or a non-finite label) returns NaN scores and leaves the state
    as it was, except that ``mode == 1`` (skip) counts it in N_INVALID when learning.
    """
    if not _row_ok(x, yv, has_y):
        if learn and mode == 1 and slot >= 0:
            SC[slot, N_INVALID] += 1.0
        return np.nan, np.nan, 0
    if slot < 0:
        return (0.5 if (kind == LOGISTIC and not has_y) else 0.0), 0.5, 0
    sc = SC[slot]
    if not learn:
        buf = np.empty(4, V.dtype)
        ok, score = _score(kind, x, V[slot], sc, yv, has_y, P, buf)
        return score, _proba_step(score, sc, P, False), _flag_of(score, sc, P)
    X1 = x.reshape((1, x.shape[0]))     # a view: rows reach this kernel C-contiguous
    if has_y:
        y1[0] = yv
    yy = y1[:1] if has_y else y1[:0]
    warm = sc[TH_N] >= P[P_TH_WARMUP] and sc[TH_N] > 0.0
    thr = _threshold_value(sc, P)       # the threshold before this event (prequential flag)
    bad = _seq_any(kind, X1, yy, _NO_ORDER, 0, 1, False, V[slot], sc, P, scores, mode)
    if bad >= 0:                         # overflow inside the step: the caller restores
        return np.nan, np.nan, 0
    score = scores[0]
    return score, _proba_step(score, sc, P, True), 1 if (warm and score > thr) else 0
