"""Numba kernels of :class:`~pygad.stream.ClippedSGDSubspace` (robust streaming PCA).

Same conventions as :mod:`._kernels`. Rows of ``V[k]`` (``rank`` = r):

* ``0``: the location ``mu``;
* ``1 .. r``: the basis ``U`` (unit rows, kept near-orthogonal by Sanger's rule);
* ``r + 1``: the first r entries hold the component variances ``lam``;
* ``r + 2``: the first r entries hold their slow running means (floors).

Scalars: ``AUX`` the mean squared residual off the subspace, ``AUX_SLOW`` its slow mean,
``MAG`` the data's magnitude. The naive twin is :func:`pygad.stream._reference.subspace_row`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._config import JIT, JIT_ONE, JIT_PARALLEL, JIT_STRICT

# the estimator calls these generic kernels through this module too (one module per kind)
from ._kernels import (  # noqa: F401
    BURN_IN,
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
    AUX,
    AUX_SLOW,
    CLIP_Q,
    EPOCH_END,
    ETA,
    GN_SLOW,
    MAG,
    N_INVALID,
    N_SEEN,
    P_ALPHA,
    P_EPS_MAG,
    P_HORIZON,
    P_LR,
    P_REG,
    P_SUB_BASIS_LR,
    P_TH_WARMUP,
    SCALE_FLOOR_SLOW,
    TH_DEV,
    TH_HI,
    TH_MED,
    TH_N,
    TINY,
)

VAR_CLIP = 16.0    # variances learn squared deviations clipped at this many variances
N_EXTRA = 3        # rows besides the basis: mu, lam, slow lam


# Compiled without ``reassoc`` and not inlined at the Numba level, so a row rounds the same way
# in the batch, keyed and single-event kernels (bit-identical results across the paths).
@njit(**JIT_STRICT)
def _sub_row(x, v, sc, P, learn, c):
    """(finite, score) of one row against (v, sc); with ``learn``, then learn it.

    ``c`` is float64 scratch of length ``rank`` (the row's coordinates in the subspace).

    Score: sqrt(0.5 * (A + B)), A the squared residual off the subspace over its running mean,
    B the mean over components of the squared coordinate over the component's variance (both
    about 1 for a typical sample; variances floored at a quarter of their slow means and at the
    data's roundoff, so they cannot collapse).
    """
    d = x.shape[0]
    r_ = int(P[P_REG])
    mu = v[0]
    n = sc[N_SEEN]
    rr = 0.0
    xa = 0.0
    for j in range(d):
        t = x[j] - mu[j]
        rr += t * t
        xa += abs(x[j])
    if not np.isfinite(rr):
        return False, 0.0
    if n == 0.0:
        if learn:
            for j in range(d):
                mu[j] = x[j]
            for i in range(1, r_ + N_EXTRA):
                for j in range(d):
                    v[i, j] = 0.0
            sc[AUX] = 0.0
            sc[AUX_SLOW] = 0.0
            sc[MAG] = xa / d
            sc[N_SEEN] = 1.0
        return True, 0.0
    lamr = v[r_ + 1]
    lams = v[r_ + 2]
    eps = P[P_EPS_MAG] * sc[MAG]
    eps2 = eps * eps + TINY
    k2 = SCALE_FLOOR_SLOW * SCALE_FLOOR_SLOW
    cc = 0.0
    B = 0.0
    for i in range(r_):
        ui = v[1 + i]
        s = 0.0
        for j in range(d):
            s += ui[j] * (x[j] - mu[j])
        c[i] = s
        cc += s * s
        B += s * s / (lamr[i] + k2 * lams[i] + eps2)
    res = rr - cc
    if res < 0.0:
        res = 0.0
    A = res / (sc[AUX] + k2 * sc[AUX_SLOW] + d * eps2)
    score = math.sqrt(0.5 * (A + B / r_)) if n >= 2.0 else 0.0
    if not learn:
        return True, score
    rate = _slow_rate(n, P)
    f, q, gslow = _clip_local(math.sqrt(rr), sc[CLIP_Q], sc[GN_SLOW], rate, P)
    sc[CLIP_Q] = q
    sc[GN_SLOW] = gslow
    step = sc[ETA] * f
    vstep = step if step < 1.0 else 1.0      # averaging rate of the scales: at most 1
    # Sanger's rule, normalised by ||x - mu||^2 (scale-free): U_i += step * c_i * e_i / rr,
    # e_i = (x - mu) - sum_{l <= i} c_l U_l; an all-zero row (not started) takes e_i itself
    inv = 1.0 / (rr + TINY)
    bstep = step * P[P_SUB_BASIS_LR]
    if bstep > 1.0:
        bstep = 1.0
    for i in range(r_):
        ui = v[1 + i]
        nrm0 = 0.0
        for j in range(d):
            nrm0 += ui[j] * ui[j]
        # e_i, computed from the running residual of the components before i
        e2 = 0.0
        for j in range(d):
            e = x[j] - mu[j]
            for l in range(i + 1):
                e -= c[l] * v[1 + l, j]
            if nrm0 == 0.0:
                ui[j] = e
            else:
                ui[j] += bstep * c[i] * e * inv
            e2 += ui[j] * ui[j]
        if e2 > 0.0:
            s = 1.0 / math.sqrt(e2)
            for j in range(d):
                ui[j] *= s
            if nrm0 == 0.0:             # a new direction: its coordinate on this sample
                cs = 0.0
                for j in range(d):
                    cs += ui[j] * (x[j] - mu[j])
                c[i] = cs
        a = c[i] * c[i]
        if n > 10.0 and a > VAR_CLIP * lamr[i]:
            a = VAR_CLIP * lamr[i]
        lamr[i] += vstep * (a - lamr[i])
        lams[i] += rate * (lamr[i] - lams[i])
    a = res
    if n > 10.0 and a > VAR_CLIP * sc[AUX]:
        a = VAR_CLIP * sc[AUX]
    sc[AUX] += vstep * (a - sc[AUX])
    sc[AUX_SLOW] += rate * (sc[AUX] - sc[AUX_SLOW])
    for j in range(d):
        mu[j] += step * (x[j] - mu[j])
    sc[MAG] += rate * (xa / d - sc[MAG])
    n += 1.0
    sc[N_SEEN] = n
    if P[P_HORIZON] <= 0.0 and n >= sc[EPOCH_END]:
        T = sc[EPOCH_END] + 1.0
        sc[EPOCH_END] = sc[EPOCH_END] + T
        sc[ETA] = P[P_LR] * T ** (-P[P_ALPHA])
    if n > BURN_IN:
        sc[TH_MED], sc[TH_HI], sc[TH_DEV], sc[TH_N] = _threshold_local(
            score, sc[TH_MED], sc[TH_HI], sc[TH_DEV], sc[TH_N], P)
    return True, score


@njit(**JIT)
def _seq_sub(X, order, lo, hi_, use_order, v, sc, P, scores, mode):
    want = scores.shape[0] > 0
    c = np.empty(max(1, int(P[P_REG])))
    bad = -1
    for t in range(lo, hi_):
        i = order[t] if use_order else t
        if use_order:
            _prefetch_next_row(X, order, t + PREFETCH_ROWS)
        ok, score = _sub_row(X[i], v, sc, P, True, c)
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
    dummy = np.empty(0, np.int64)
    return _seq_sub(X, dummy, 0, X.shape[0], False, V[0], SC[0], P, scores, mode)


@njit(**JIT_PARALLEL)
def _process_keyed(kind, X, y, order, starts, slots, V, SC, P, scores, mode):
    G = slots.shape[0]
    bad = np.full(G, -1, np.int64)
    for g in prange(G):
        k = slots[g]
        bad[g] = _seq_sub(X, order, starts[g], starts[g + 1], True, V[k], SC[k], P, scores, mode)
    return bad


@njit(**JIT)
def _process_keyed_serial(kind, X, y, order, starts, slots, V, SC, P, scores, mode):
    """Serial twin of _process_keyed, for small batches."""
    G = slots.shape[0]
    bad = np.full(G, -1, np.int64)
    for g in range(G):
        k = slots[g]
        bad[g] = _seq_sub(X, order, starts[g], starts[g + 1], True, V[k], SC[k], P, scores, mode)
    return bad


@njit(**JIT)
def _score_run(kind, X, y, V, SC, P, scores):
    c = np.empty(max(1, int(P[P_REG])))
    for i in range(X.shape[0]):
        ok, score = _sub_row(X[i], V[0], SC[0], P, False, c)
        if not ok:
            return i
        scores[i] = score
    return -1


@njit(**JIT_PARALLEL)
def _score_keyed(kind, X, y, rowslot, V, SC, P, scores, empty_score):
    n = X.shape[0]
    nbad = np.zeros(n, np.int64)
    for i in prange(n):
        c = np.empty(max(1, int(P[P_REG])))
        k = rowslot[i]
        if k < 0:
            ok = True
            for j in range(X.shape[1]):
                if not np.isfinite(X[i, j]):
                    ok = False
            score = empty_score
        else:
            ok, score = _sub_row(X[i], V[k], SC[k], P, False, c)
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
        tmp = np.empty(max(1, int(P[P_REG])))
        ok, score = _sub_row(x, V[slot], sc, P, False, tmp)
        return score, _proba_step(score, sc, P, False), _flag_of(score, sc, P)
    X1 = x.reshape((1, x.shape[0]))     # a view: rows reach this kernel C-contiguous
    if has_y:
        y1[0] = yv
    warm = sc[TH_N] >= P[P_TH_WARMUP] and sc[TH_N] > 0.0
    thr = _threshold_value(sc, P)
    bad = _seq_sub(X1, _NO_ORDER, 0, 1, False, V[slot], sc, P, scores, mode)
    if bad >= 0:
        return np.nan, np.nan, 0
    score = scores[0]
    return score, _proba_step(score, sc, P, True), 1 if (warm and score > thr) else 0
