"""Numba kernels of :class:`~pygad.stream.ClippedSGDForecaster` (the time-series detector).

Same conventions as :mod:`._kernels` (state ``V [K, m, d]``, ``SC [K, N_SCALARS]``, ``P``;
``*_run`` for slot 0, ``*_keyed`` over key groups in parallel; the first bad row or -1), so
the estimator machinery (keys, validation, snapshots, persistence) is shared. Every
coordinate ``j`` of a d-dimensional stream has its own model; the rows of ``V[k]`` are:

* ``W`` (``lags`` rows): autoregressive weights on the standardised lag deviations;
* ``B`` (``lags`` rows): the last ``lags`` values, most recent first;
* ``LVL``, ``XS``: slow level and slow mean absolute deviation of the value;
* ``RS``, ``RSL``: fast (clipped) and slow mean absolute forecast residual;
* ``CP``, ``CN``: two-sided CUSUM of the standardised deviation from the slow level;
* ``HI``, ``LO``: envelope of the values seen (running max/min, shrinking very slowly);
* per season phase ``b`` (``P_FC_BINS`` phases, none without a season): ``SHI``, ``SLO``,
  ``SN``, the envelope of the values seen at that phase and their count (``SHI < SLO``:
  empty). The phase of each row arrives in the ``y`` argument (-1: none).

The naive twin is :func:`pygad.stream._reference.forecast_step`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._config import JIT, JIT_ONE, JIT_PARALLEL, JIT_STRICT

# the estimator calls these generic kernels through this module too (one module per kind)
from ._kernels import (  # noqa: F401
    PREFETCH_ROWS,
    _check_labels,
    _clip_local,
    _first_invalid_row,
    _first_invalid_row_serial,
    _flag_of,
    _group_by_slot,
    _prefetch_next_row,
    _proba_keyed,
    _proba_keyed_serial,
    _proba_pure_keyed,
    _proba_run,
    _proba_step,
    _row_ok,
    _slow_rate,
    _threshold_flags_keyed,
    _threshold_local,
    _threshold_value,
)
from ._layout import (
    CLIP_Q,
    ENVELOPE_RATE,
    EPOCH_END,
    ETA,
    GN_SLOW,
    MAG,
    N_INVALID,
    N_SEEN,
    P_ALPHA,
    P_EPS_MAG,
    P_FC_BINS,
    P_FC_CHANGE,
    P_FC_DRIFT,
    P_FC_FAST,
    P_FC_LAGS,
    P_FC_MODE,
    P_FC_WARMUP,
    P_HORIZON,
    P_LR,
    P_REG,
    P_TH_WARMUP,
    SCALE_FLOOR_SLOW,
    TH_DEV,
    TH_HI,
    TH_MED,
    TH_N,
    TINY,
)

N_EXTRA = 8                  # state rows after W and B
LVL, XS, RS, RSL, CP, CN, HI, LO = range(N_EXTRA)
TIEBREAK = 1e-3              # weight of the bounded residual that orders non-novel samples
LEARN_AFTER = 10             # samples before the weights (and the clip) start learning
SEASON_WEIGHT = 0.3          # weight of novelty at the sample's season phase
RESID_CLIP = 4.0             # the fast residual scale learns |e| clipped at this many scales


# Compiled without ``reassoc`` and not inlined at the Numba level, so a row rounds the same way
# in the batch, keyed and single-event kernels (bit-identical results across the paths).
@njit(**JIT_STRICT)
def _fc_row(x, v, sc, P, learn, tmp, ph):
    """(finite, score) of one row against key state (v, sc); with ``learn``, then learn it.

    ``tmp`` is float64 scratch [7, d] (carries pass-1 quantities to the update pass).

    Score (``P_FC_MODE`` 0, novelty): the largest over coordinates of how far the value lies
    outside the envelope of values seen, relative to the envelope's width, and SEASON_WEIGHT
    times the same for the envelope of the values seen at this row's season phase ``ph``
    (once that phase has seen ``P_FC_WARMUP`` samples), plus
    TIEBREAK * z / (1 + z), z the largest standardised forecast residual, so that samples that
    are not new are still ordered by how well they were forecast. Mode 1 (residual): the root
    mean square over coordinates of the standardised forecast residual.
    """
    d = x.shape[0]
    p = int(P[P_FC_LAGS])
    n = sc[N_SEEN]
    for j in range(d):
        if not np.isfinite(x[j]):
            return False, 0.0
    o = 2 * p
    so = o + N_EXTRA
    b = -1
    if ph >= 0.0 and ph < P[P_FC_BINS]:
        b = int(ph)
    if n == 0.0:
        if learn:
            xa = 0.0
            for j in range(d):
                for l in range(p):
                    v[l, j] = 1.0 if l == 0 else 0.0     # start from the persistence forecast
                    v[p + l, j] = x[j]
                v[o + LVL, j] = x[j]
                v[o + HI, j] = x[j]
                v[o + LO, j] = x[j]
                for r in (XS, RS, RSL, CP, CN):
                    v[o + r, j] = 0.0
                xa += abs(x[j])
                for bb in range(int(P[P_FC_BINS])):
                    v[so + 3 * bb, j] = -np.inf
                    v[so + 3 * bb + 1, j] = np.inf
                    v[so + 3 * bb + 2, j] = 0.0
                if b >= 0:
                    v[so + 3 * b, j] = x[j]
                    v[so + 3 * b + 1, j] = x[j]
                    v[so + 3 * b + 2, j] = 1.0
            sc[MAG] = xa / d
            sc[N_SEEN] = 1.0
        return True, 0.0
    epsm = P[P_EPS_MAG] * sc[MAG] + TINY
    kdrift = P[P_FC_DRIFT]
    hchange = P[P_FC_CHANGE]
    best = 0.0
    zmax = 0.0
    zsum = 0.0
    gsum = 0.0
    for j in range(d):
        xj = x[j]
        lvl = v[o + LVL, j]
        sx = v[o + XS, j] + epsm
        pu = 0.0
        uu = 1.0
        for l in range(p):
            u = (v[p + l, j] - lvl) / sx
            pu += v[l, j] * u
            uu += u * u
        e = xj - (lvl + sx * pu)
        rsl = v[o + RSL, j]
        rs = v[o + RS, j]
        den = math.sqrt(rs * rs + SCALE_FLOOR_SLOW * SCALE_FLOOR_SLOW * rsl * rsl + epsm * epsm)
        z = abs(e) / den
        c = (xj - lvl) / sx
        cp = v[o + CP, j] + c - kdrift
        cp = cp if cp > 0.0 else 0.0
        cn = v[o + CN, j] - c - kdrift
        cn = cn if cn > 0.0 else 0.0
        g = (cp if cp > cn else cn) / hchange
        hi = v[o + HI, j]
        lo = v[o + LO, j]
        ex = xj - hi
        if lo - xj > ex:
            ex = lo - xj
        s = ex / (hi - lo + epsm) if ex > 0.0 else 0.0
        if s > best:
            best = s
        if b >= 0 and v[so + 3 * b + 2, j] >= P[P_FC_WARMUP]:
            shi = v[so + 3 * b, j]
            slo = v[so + 3 * b + 1, j]
            ex = xj - shi
            if slo - xj > ex:
                ex = slo - xj
            if ex > 0.0:
                s = SEASON_WEIGHT * ex / (shi - slo + epsm)
                if s > best:
                    best = s
        if z > zmax:
            zmax = z
        zsum += z * z
        if learn:
            eu = e / sx
            gsum += eu * eu * uu
            tmp[0, j] = eu
            tmp[1, j] = uu
            tmp[2, j] = abs(e)
            tmp[3, j] = den
            tmp[4, j] = cp
            tmp[5, j] = cn
            tmp[6, j] = g
    if P[P_FC_MODE] == 0.0:
        score = best + TIEBREAK * zmax / (1.0 + zmax)
    else:
        score = math.sqrt(zsum / d)
    if n < P[P_FC_WARMUP]:
        score = 0.0
    if not learn:
        return True, score
    # one clipped, normalised LMS step of every coordinate's weights, one clip per key
    rate = _slow_rate(n, P)
    rfast = 1.0 / (n + 1.0)
    if rfast < P[P_FC_FAST]:
        rfast = P[P_FC_FAST]
    gn = math.sqrt(gsum / d)
    if n >= LEARN_AFTER:             # the first steps' scales are ~0: their gradients are noise
        f, q, gslow = _clip_local(gn, sc[CLIP_Q], sc[GN_SLOW], rate, P)
        sc[CLIP_Q] = q
        sc[GN_SLOW] = gslow
    else:
        f = 0.0                      # no weight step, no clip statistics
    eta = sc[ETA] * f
    decay = 1.0 - sc[ETA] * P[P_REG]
    xa = 0.0
    for j in range(d):
        xj = x[j]
        lvl = v[o + LVL, j]
        sx = v[o + XS, j] + epsm
        st = eta * tmp[0, j] / tmp[1, j]
        for l in range(p):
            v[l, j] = v[l, j] * decay + st * ((v[p + l, j] - lvl) / sx)
        for l in range(p - 1, 0, -1):
            v[p + l, j] = v[p + l - 1, j]
        v[p, j] = xj
        g = tmp[6, j]
        if g >= 1.0:                      # a change: restart the CUSUM at the new level
            v[o + CP, j] = 0.0
            v[o + CN, j] = 0.0
            v[o + LVL, j] = xj
        else:
            v[o + CP, j] = tmp[4, j]
            v[o + CN, j] = tmp[5, j]
            v[o + LVL, j] = lvl + rate * (xj - lvl)
        a = tmp[2, j]
        den = tmp[3, j]
        if n > 10.0 and a > RESID_CLIP * den:
            a = RESID_CLIP * den
        rs = v[o + RS, j] + rfast * (a - v[o + RS, j])
        v[o + RS, j] = rs
        v[o + RSL, j] += rate * (rs - v[o + RSL, j])
        dv = abs(xj - lvl)
        if n > 10.0 and dv > RESID_CLIP * sx:
            dv = RESID_CLIP * sx
        v[o + XS, j] += rate * (dv - v[o + XS, j])
        hi = v[o + HI, j]
        lo = v[o + LO, j]
        mid = 0.5 * (hi + lo)
        hi = mid + (hi - mid) * (1.0 - ENVELOPE_RATE)
        lo = mid + (lo - mid) * (1.0 - ENVELOPE_RATE)
        v[o + HI, j] = xj if xj > hi else hi
        v[o + LO, j] = xj if xj < lo else lo
        if b >= 0:
            shi = v[so + 3 * b, j]
            slo = v[so + 3 * b + 1, j]
            if shi < slo:                 # the phase's first sample
                shi = xj
                slo = xj
            mid = 0.5 * (shi + slo)
            shi = mid + (shi - mid) * (1.0 - ENVELOPE_RATE)
            slo = mid + (slo - mid) * (1.0 - ENVELOPE_RATE)
            v[so + 3 * b, j] = xj if xj > shi else shi
            v[so + 3 * b + 1, j] = xj if xj < slo else slo
            v[so + 3 * b + 2, j] += 1.0
        xa += abs(xj)
    sc[MAG] += rate * (xa / d - sc[MAG])
    n += 1.0
    sc[N_SEEN] = n
    if P[P_HORIZON] <= 0.0 and n >= sc[EPOCH_END]:
        T = sc[EPOCH_END] + 1.0
        sc[EPOCH_END] = sc[EPOCH_END] + T
        sc[ETA] = P[P_LR] * T ** (-P[P_ALPHA])
    if n > P[P_FC_WARMUP]:                # its warm-up scores (0) would freeze the threshold
        sc[TH_MED], sc[TH_HI], sc[TH_DEV], sc[TH_N] = _threshold_local(
            score, sc[TH_MED], sc[TH_HI], sc[TH_DEV], sc[TH_N], P)
    return True, score


@njit(**JIT)
def _seq_fc(X, y, order, lo, hi_, use_order, v, sc, P, scores, mode):
    want = scores.shape[0] > 0
    has_ph = y.shape[0] > 0
    tmp = np.empty((7, X.shape[1]))
    bad = -1
    for t in range(lo, hi_):
        i = order[t] if use_order else t
        if use_order:
            _prefetch_next_row(X, order, t + PREFETCH_ROWS)
        ok, score = _fc_row(X[i], v, sc, P, True, tmp, y[i] if has_ph else -1.0)
        if not ok:
            if mode == 0:
                bad = i
                break
            sc[N_INVALID] += 1.0
            score = np.nan
        if want:
            scores[i] = score
    return bad


@njit(**JIT)
def _process_run(kind, X, y, V, SC, P, scores, mode):
    """One stream (slot 0): score then learn each row. Returns the first bad row or -1."""
    dummy = np.empty(0, np.int64)
    return _seq_fc(X, y, dummy, 0, X.shape[0], False, V[0], SC[0], P, scores, mode)


@njit(**JIT_PARALLEL)
def _process_keyed(kind, X, y, order, starts, slots, V, SC, P, scores, mode):
    """Keyed prequential kernel (groups of rows per key slot, in parallel)."""
    G = slots.shape[0]
    bad = np.full(G, -1, np.int64)
    for g in prange(G):
        k = slots[g]
        bad[g] = _seq_fc(X, y, order, starts[g], starts[g + 1], True, V[k], SC[k], P, scores,
                         mode)
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
        bad[g] = _seq_fc(X, y, order, starts[g], starts[g + 1], True, V[k], SC[k], P, scores,
                         mode)
    return bad


@njit(**JIT)
def _score_run(kind, X, y, V, SC, P, scores):
    """Score rows against slot 0 without changing state. Returns the first bad row or -1."""
    tmp = np.empty((7, 0))
    has_ph = y.shape[0] > 0
    for i in range(X.shape[0]):
        ok, score = _fc_row(X[i], V[0], SC[0], P, False, tmp, y[i] if has_ph else -1.0)
        if not ok:
            return i
        scores[i] = score
    return -1


@njit(**JIT_PARALLEL)
def _score_keyed(kind, X, y, rowslot, V, SC, P, scores, empty_score):
    """Score row i against key rowslot[i] (-1: unseen, ``empty_score``).

    Pure; returns the number of non-finite rows (scored NaN).
    """
    n = X.shape[0]
    nbad = np.zeros(n, np.int64)
    tmp = np.empty((7, 0))
    has_ph = y.shape[0] > 0
    for i in prange(n):
        k = rowslot[i]
        if k < 0:
            ok = True
            for j in range(X.shape[1]):
                if not np.isfinite(X[i, j]):
                    ok = False
            score = empty_score
        else:
            ok, score = _fc_row(X[i], V[k], SC[k], P, False, tmp, y[i] if has_ph else -1.0)
        if not ok:
            nbad[i] = 1
            score = np.nan
        scores[i] = score
    return nbad.sum()


_NO_ORDER = np.empty(0, np.int64)   # a frozen constant of the single-event kernel


@njit(**JIT_ONE)
def _one(kind, x, yv, has_y, V, SC, P, slot, learn, mode, scores, y1):
    """One event (see :func:`pygad.stream._kernels._one`)."""
    if not _row_ok(x, 0.0, False):
        if learn and mode == 1 and slot >= 0:
            SC[slot, N_INVALID] += 1.0
        return np.nan, np.nan, 0
    if slot < 0:
        return 0.0, 0.5, 0
    sc = SC[slot]
    if not learn:
        tmp = np.empty((7, 0))
        ok, score = _fc_row(x, V[slot], sc, P, False, tmp, yv if has_y else -1.0)
        return score, _proba_step(score, sc, P, False), _flag_of(score, sc, P)
    X1 = x.reshape((1, x.shape[0]))     # a view: rows reach this kernel C-contiguous
    if has_y:
        y1[0] = yv
    yy = y1[:1] if has_y else y1[:0]
    warm = sc[TH_N] >= P[P_TH_WARMUP] and sc[TH_N] > 0.0
    thr = _threshold_value(sc, P)
    bad = _seq_fc(X1, yy, _NO_ORDER, 0, 1, False, V[slot], sc, P, scores, mode)
    if bad >= 0:
        return np.nan, np.nan, 0
    score = scores[0]
    return score, _proba_step(score, sc, P, True), 1 if (warm and score > thr) else 0
