"""Naive Python twins of the Numba kernels in :mod:`._kernels` (tests compare against them).

Written for clarity, one sample and one coordinate at a time, in float64, following the
same formulas as the kernels; they mutate the same state arrays (``V``, ``SC``, ``P``).
"""
from __future__ import annotations

import math

import numpy as np

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
    P_FC_BINS,
    P_FC_CHANGE,
    P_FC_DRIFT,
    P_FC_FAST,
    P_FC_LAGS,
    P_FC_MODE,
    P_FC_WARMUP,
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


def advance_schedule(sc, P):
    sc[N_SEEN] += 1
    if P[P_HORIZON] <= 0 and sc[N_SEEN] >= sc[EPOCH_END]:
        T = sc[EPOCH_END] + 1
        sc[EPOCH_END] += T
        sc[ETA] = P[P_LR] * T ** (-P[P_ALPHA])


def _gcap(gn, gslow, cap=4.0):
    """A magnitude capped at ``cap`` times its slow mean.

    GN_SLOW_CAP = 4 for gradient norms, SLOW_CAP = 20 for the scales' floors.
    """
    return min(gn, cap * gslow) if gslow > 0 else gn


def slow_rate(n, P):
    return max(1.0 / (n + 1), P[P_SLOW_RATE])


def clip_factor(gn, sc, P):
    rate = slow_rate(sc[N_SEEN], P)
    lam = P[P_CLIP]
    if lam <= 0:
        q = sc[CLIP_Q]
        if q <= 0:
            if gn > 0:
                sc[CLIP_Q] = gn
            sc[GN_SLOW] += rate * (_gcap(gn, sc[GN_SLOW]) - sc[GN_SLOW])
            return 1.0
        lam = P[P_CLIP_MULT] * q
        p = P[P_CLIP_QUANTILE]
        q = q * (1 + P[P_CLIP_LR] * (1 - p)) if gn > q else q * (1 - P[P_CLIP_LR] * p)
        sc[CLIP_Q] = max(q, CLIP_FLOOR_SLOW * sc[GN_SLOW])
    sc[GN_SLOW] += rate * (_gcap(gn, sc[GN_SLOW]) - sc[GN_SLOW])
    return min(1.0, lam / gn) if gn > 0 else 1.0


def mean_floor(sc, P):
    return math.sqrt((P[P_REG] * sc[AUX]) ** 2 + (P[P_EPS_MAG] * sc[MAG]) ** 2)


def linear_scale(sc, P):
    return sc[AUX] + SCALE_FLOOR_SLOW * sc[AUX_SLOW] + P[P_EPS_MAG] * sc[MAG] + TINY


def proba_step(score, sc, P, learn):
    """Twin of ``_proba_step``."""
    if not math.isfinite(score):
        return math.nan
    n = sc[LK_N] - P[P_LK_SKIP]
    if n < 0:
        if learn:
            sc[LK_N] += 1
        return 0.5
    v = math.log1p(score) if score > 0 else 0.0
    a = v if n == 0 else sc[LK_SHORT] + max(1 / (n + 1), 1 / P[P_LK_SHORT]) * (v - sc[LK_SHORT])
    g = a
    m, var = sc[LK_MEAN], sc[LK_VAR]
    p = 0.5
    if n >= P[P_LK_WARMUP]:
        fl = 1e-3 * abs(m) + 1e-12
        p = 0.5 * math.erfc(-(g - m) / math.sqrt(var + fl * fl) / math.sqrt(2))
    if learn:
        sc[LK_SHORT] = a
        if n == 0:
            sc[LK_MEAN], sc[LK_VAR] = g, 0.0
        else:
            rl = max(1 / (n + 1), 1 / P[P_LK_LONG])
            sc[LK_MEAN] = m + rl * (g - m)
            sc[LK_VAR] = (1 - rl) * (var + rl * (g - m) ** 2)
        sc[LK_N] += 1
    return p


def threshold_value(sc, P):
    return sc[TH_HI] + P[P_TH_MARGIN] * sc[TH_DEV]


def threshold_step(score, sc, P):
    n = sc[TH_N]
    if n == 0:
        sc[TH_MED] = sc[TH_HI] = score
        sc[TH_DEV] = 0.0
        sc[TH_N] = 1
        return 0
    flag = int(n >= P[P_TH_WARMUP] and score > threshold_value(sc, P))
    rate = max(P[P_TH_LR], 1 / (n + 1))
    med = sc[TH_MED]
    a = abs(score - med)
    if n >= 5 and sc[TH_DEV] > 0:
        a = min(a, 4 * sc[TH_DEV])
    sc[TH_DEV] += rate * (a - sc[TH_DEV])
    step = rate * sc[TH_DEV]
    sc[TH_MED] = med + 0.5 * step if score > med else med - 0.5 * step
    p = P[P_TH_QUANTILE]
    hi = sc[TH_HI]
    hi = hi + step * p if score > hi else hi - step * (1 - p)
    sc[TH_HI] = max(hi, sc[TH_MED])
    sc[TH_N] = n + 1
    return flag


def score_row(kind, x, v, sc, y, has_y, P):
    """(finite, score) of one row, pure."""
    x = [float(t) for t in x]
    d = len(x)
    if not all(math.isfinite(t) for t in x):
        return False, 0.0
    if kind == MEAN:
        mu, s, sl = v[0], v[1], v[2]
        fl = mean_floor(sc, P)
        c2 = P[P_SCORE_CLIP] ** 2
        with np.errstate(over="ignore"):      # a huge ratio is clipped to c2, as in the kernel
            acc = sum(min((x[j] - mu[j]) ** 2 / (s[j] ** 2 + (SCALE_FLOOR_SLOW * sl[j]) ** 2
                                                  + fl * fl + P[P_TINY_SQ]), c2) for j in range(d))
        return True, 0.0 if sc[N_SEEN] < 2 else math.sqrt(acc / d)
    w = v[0]
    z = sc[BIAS] + sum(w[j] * x[j] for j in range(d))
    if kind == LINEAR:
        return True, 0.0 if sc[N_SEEN] == 0 else abs(y - z) / linear_scale(sc, P)
    p = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
    if not has_y:
        return True, p
    return True, -math.log(p) if y > 0.5 else -math.log1p(-p)


def step(kind, x, v, sc, y, P):
    """Score one row (prequential), then learn it. Returns (finite, score)."""
    ok, score = score_row(kind, x, v, sc, y, True, P)
    if not ok:
        return False, 0.0
    x = np.asarray(x, np.float64)
    d = len(x)
    rate = slow_rate(sc[N_SEEN], P)
    if kind == MEAN:
        mu, s, sl = v[0], v[1], v[2]
        if sc[N_SEEN] == 0:
            mu[:] = x
            s[:] = 0
            sl[:] = 0
            sc[AUX] = 0.0
        else:
            r = [x[j] - float(mu[j]) for j in range(d)]
            f = clip_factor(math.sqrt(sum(t * t for t in r)), sc, P)
            eta = sc[ETA] * f
            for j in range(d):
                mu[j] = mu[j] + eta * r[j]
                s[j] = s[j] + eta * (abs(r[j]) - s[j])
                sl[j] = sl[j] + rate * (_gcap(abs(r[j]), float(sl[j]), 20.0) - sl[j])
            sc[AUX] = float(np.mean(s.astype(np.float64)))
        sc[MAG] += rate * (float(np.mean(np.abs(x))) - sc[MAG])
    else:
        w = v[0]
        z = sc[BIAS] + sum(float(w[j]) * x[j] for j in range(d))
        pred = z if kind == LINEAR else 1 / (1 + math.exp(-z))
        err = pred - y
        nx = 1 + sum(t * t for t in x)
        f = clip_factor(abs(err) * math.sqrt(nx), sc, P)
        eta = sc[ETA]
        stp = -eta * f * err / nx
        for j in range(d):
            w[j] = w[j] * (1 - eta * P[P_REG]) + stp * x[j]
        sc[BIAS] += stp
        if kind == LINEAR:
            sc[AUX] += eta * f * (abs(err) - sc[AUX])
            sc[AUX_SLOW] += rate * (_gcap(abs(err), sc[AUX_SLOW], 20.0) - sc[AUX_SLOW])
            sc[MAG] += rate * (abs(y) - sc[MAG])
    advance_schedule(sc, P)
    if sc[N_SEEN] > 2:
        threshold_step(score, sc, P)
    return True, score


def process_run(kind, X, y, V, SC, P, scores, mode):
    """Twin of ``_process_run``."""
    has_y = len(y) > 0
    for i in range(len(X)):
        ok, score = step(kind, X[i], V[0], SC[0], float(y[i]) if has_y else 0.0, P)
        if not ok:
            if mode == 0:
                return i
            SC[0, N_INVALID] += 1
            score = np.nan
        if len(scores):
            scores[i] = score
    return -1


def process_keyed(kind, X, y, slots_per_row, V, SC, P, scores, mode):
    """Twin of ``_process_keyed`` given one slot per row (rows of a key in arrival order)."""
    has_y = len(y) > 0
    stopped = set()
    for i in range(len(X)):
        k = int(slots_per_row[i])
        if k in stopped:
            continue
        ok, score = step(kind, X[i], V[k], SC[k], float(y[i]) if has_y else 0.0, P)
        if not ok:
            if mode == 0:
                stopped.add(k)
                continue
            SC[k, N_INVALID] += 1
            score = np.nan
        if len(scores):
            scores[i] = score


def score_run(kind, X, y, V, SC, P, scores):
    """Twin of ``_score_run``."""
    has_y = len(y) > 0
    for i in range(len(X)):
        ok, score = score_row(kind, X[i], V[0], SC[0], float(y[i]) if has_y else 0.0, has_y, P)
        if not ok:
            return i
        scores[i] = score
    return -1


def threshold_run(scores, SC, P, flags, thresholds):
    """Twin of ``_threshold_run``."""
    sc = SC[0]
    for i, s in enumerate(scores):
        if len(thresholds):
            thresholds[i] = threshold_value(sc, P) if sc[TH_N] >= P[P_TH_WARMUP] else np.inf
        if not math.isfinite(s):
            flags[i] = 0
            continue
        flags[i] = threshold_step(float(s), sc, P)


def proba_run(scores, SC, P, out, learn):
    """Twin of ``_proba_run``."""
    for i, s in enumerate(scores):
        p = proba_step(float(s), SC[0], P, learn)
        if len(out):
            out[i] = p



# ----------------------------------------------------------------------------- forecaster
# Twins of :mod:`._forecast_kernels` (ClippedSGDForecaster). The key's vector state ``v`` has
# one column per coordinate and the rows: AR weights (``lags``), the last ``lags`` values
# (most recent first), slow level, slow scale of the value, fast and slow residual scale, the
# two CUSUM sums, the envelope of values (high, low), then per season phase its envelope
# (high, low; empty while high < low) and its count of samples.

FC_LVL, FC_XS, FC_RS, FC_RSL, FC_CP, FC_CN, FC_HI, FC_LO = range(8)
FC_N_EXTRA = 8
FC_TIEBREAK = 1e-3
FC_SEASON_WEIGHT = 0.3
FC_RESID_CLIP = 4.0
FC_ENVELOPE_RATE = 1e-5


def _fc_phase(ph, P):
    """Index of the season phase of a row, or -1 (none, or outside the phases)."""
    return int(ph) if 0 <= ph < P[P_FC_BINS] else -1


def _fc_outside(x, hi, lo, epsm):
    """How far ``x`` lies outside [lo, hi], relative to the width (0 inside)."""
    ex = max(x - hi, lo - x)
    return ex / (hi - lo + epsm) if ex > 0 else 0.0


def _fc_shrink(hi, lo):
    """An envelope after one sample: both ends move towards the middle by ENVELOPE_RATE."""
    mid = (hi + lo) / 2
    return mid + (hi - mid) * (1 - FC_ENVELOPE_RATE), mid + (lo - mid) * (1 - FC_ENVELOPE_RATE)


def _fc_coordinate(xj, v, j, p, b, epsm, P):
    """Quantities of coordinate ``j`` before learning (pure).

    The standardised lags ``u``, the forecast residual ``e`` and its scale ``den``,
    ``z = |e| / den``, the CUSUM sums and the change statistic ``g``, and the value novelty ``s``
    (global and seasonal envelopes).
    """
    o = 2 * p
    so = o + FC_N_EXTRA
    lvl = float(v[o + FC_LVL, j])
    sx = float(v[o + FC_XS, j]) + epsm
    # forecast: slow level + the AR weights times the lags' standardised deviations from it
    u = [(float(v[p + lag, j]) - lvl) / sx for lag in range(p)]
    e = xj - (lvl + sx * sum(float(v[lag, j]) * u[lag] for lag in range(p)))
    rs, rsl = float(v[o + FC_RS, j]), float(v[o + FC_RSL, j])
    den = math.sqrt(rs ** 2 + (SCALE_FLOOR_SLOW * rsl) ** 2 + epsm ** 2)
    # two-sided CUSUM of the standardised deviation from the slow level
    c = (xj - lvl) / sx
    cp = max(0.0, float(v[o + FC_CP, j]) + c - P[P_FC_DRIFT])
    cn = max(0.0, float(v[o + FC_CN, j]) - c - P[P_FC_DRIFT])
    # novelty of the value: outside the envelope of all values, or (weighted) outside the
    # envelope of the values of this season phase once the phase has seen `warmup` samples
    s = _fc_outside(xj, float(v[o + FC_HI, j]), float(v[o + FC_LO, j]), epsm)
    if b >= 0 and v[so + 3 * b + 2, j] >= P[P_FC_WARMUP]:
        s = max(s, FC_SEASON_WEIGHT * _fc_outside(xj, float(v[so + 3 * b, j]),
                                                  float(v[so + 3 * b + 1, j]), epsm))
    return {"lvl": lvl, "sx": sx, "u": u, "e": e, "den": den, "z": abs(e) / den, "cp": cp,
            "cn": cn, "g": max(cp, cn) / P[P_FC_CHANGE], "s": s}


def forecast_row(x, v, sc, P, learn, ph=-1.0):
    """Twin of ``_forecast_kernels._fc_row``.

    (finite, score) of row ``x`` (season phase ``ph``, -1 for none) against the key state
    ``v``, ``sc``; with ``learn``, then learn it (in place).
    """
    x = [float(t) for t in x]
    d = len(x)
    p = int(P[P_FC_LAGS])
    o = 2 * p
    so = o + FC_N_EXTRA
    n = sc[N_SEEN]
    b = _fc_phase(ph, P)
    if not all(math.isfinite(t) for t in x):
        return False, 0.0
    if n == 0:
        # the first sample: the persistence forecast (weight 1 on the last value), the lags,
        # the level and the envelope at the value, scales and CUSUM at 0, the season phases
        # empty but this row's; its score is 0
        if learn:
            for j in range(d):
                for lag in range(p):
                    v[lag, j] = 1.0 if lag == 0 else 0.0
                    v[p + lag, j] = x[j]
                v[o + FC_LVL, j] = v[o + FC_HI, j] = v[o + FC_LO, j] = x[j]
                for r in (FC_XS, FC_RS, FC_RSL, FC_CP, FC_CN):
                    v[o + r, j] = 0.0
                for bb in range(int(P[P_FC_BINS])):
                    v[so + 3 * bb, j], v[so + 3 * bb + 1, j], v[so + 3 * bb + 2, j] = \
                        -math.inf, math.inf, 0.0
                if b >= 0:
                    v[so + 3 * b, j], v[so + 3 * b + 1, j], v[so + 3 * b + 2, j] = x[j], x[j], 1.0
            sc[MAG] = sum(abs(t) for t in x) / d
            sc[N_SEEN] = 1.0
        return True, 0.0
    epsm = P[P_EPS_MAG] * sc[MAG] + TINY
    coords = [_fc_coordinate(x[j], v, j, p, b, epsm, P) for j in range(d)]
    if P[P_FC_MODE] == 0:
        zmax = max(cq["z"] for cq in coords)
        score = max(cq["s"] for cq in coords) + FC_TIEBREAK * zmax / (1 + zmax)
    else:
        score = math.sqrt(sum(cq["z"] ** 2 for cq in coords) / d)
    if n < P[P_FC_WARMUP]:
        score = 0.0
    if not learn:
        return True, score
    # one clipped, normalised LMS step of all coordinates' weights: one gradient norm per key
    rate = slow_rate(n, P)
    rfast = max(1.0 / (n + 1), P[P_FC_FAST])
    gn = math.sqrt(sum((cq["e"] / cq["sx"]) ** 2 * (1 + sum(t * t for t in cq["u"]))
                       for cq in coords) / d)
    lam = P[P_CLIP]
    q, gslow = sc[CLIP_Q], sc[GN_SLOW]
    if n >= 10:                        # LEARN_AFTER: no weight step, no clip statistics before
        if lam <= 0:
            if q <= 0:
                lam = math.inf
                if gn > 0:
                    q = gn
            else:
                lam = P[P_CLIP_MULT] * q
                pq = P[P_CLIP_QUANTILE]
                q = q * (1 + P[P_CLIP_LR] * (1 - pq)) if gn > q else q * (1 - P[P_CLIP_LR] * pq)
                q = max(q, CLIP_FLOOR_SLOW * gslow)
        f = 1.0 if gn <= lam else lam / gn
        sc[GN_SLOW] = gslow + rate * (_gcap(gn, gslow) - gslow)
        sc[CLIP_Q] = q
    else:
        f = 0.0
    eta = sc[ETA] * f
    decay = 1 - sc[ETA] * P[P_REG]
    for j, cq in enumerate(coords):
        xj, lvl, sx = x[j], cq["lvl"], cq["sx"]
        # weights: normalised LMS on the standardised lags
        stp = eta * (cq["e"] / sx) / (1 + sum(t * t for t in cq["u"]))
        for lag in range(p):
            v[lag, j] = v[lag, j] * decay + stp * cq["u"][lag]
        # lags: shift, newest first
        for lag in range(p - 1, 0, -1):
            v[p + lag, j] = v[p + lag - 1, j]
        v[p, j] = xj
        # CUSUM and level: a detected change restarts both at the new value
        if cq["g"] >= 1:
            v[o + FC_CP, j] = v[o + FC_CN, j] = 0.0
            v[o + FC_LVL, j] = xj
        else:
            v[o + FC_CP, j], v[o + FC_CN, j] = cq["cp"], cq["cn"]
            v[o + FC_LVL, j] = lvl + rate * (xj - lvl)
        # residual scales (fast, of |e| clipped; slow) and the slow scale of the value
        a = abs(cq["e"])
        if n > 10:
            a = min(a, FC_RESID_CLIP * cq["den"])
        v[o + FC_RS, j] = v[o + FC_RS, j] + rfast * (a - v[o + FC_RS, j])
        v[o + FC_RSL, j] = v[o + FC_RSL, j] + rate * (v[o + FC_RS, j] - v[o + FC_RSL, j])
        dv = abs(xj - lvl)
        if n > 10:
            dv = min(dv, FC_RESID_CLIP * sx)
        v[o + FC_XS, j] = v[o + FC_XS, j] + rate * (dv - v[o + FC_XS, j])
        # envelopes: shrink very slowly towards their middle, then take in the value
        hi, lo = _fc_shrink(float(v[o + FC_HI, j]), float(v[o + FC_LO, j]))
        v[o + FC_HI, j], v[o + FC_LO, j] = max(xj, hi), min(xj, lo)
        if b >= 0:
            shi, slo = float(v[so + 3 * b, j]), float(v[so + 3 * b + 1, j])
            if shi < slo:                                  # the phase's first sample
                shi = slo = xj
            shi, slo = _fc_shrink(shi, slo)
            v[so + 3 * b, j], v[so + 3 * b + 1, j] = max(xj, shi), min(xj, slo)
            v[so + 3 * b + 2, j] += 1
    sc[MAG] += rate * (sum(abs(t) for t in x) / d - sc[MAG])
    sc[N_SEEN] = n + 1
    if P[P_HORIZON] <= 0 and sc[N_SEEN] >= sc[EPOCH_END]:
        T = sc[EPOCH_END] + 1
        sc[EPOCH_END] += T
        sc[ETA] = P[P_LR] * T ** (-P[P_ALPHA])
    if sc[N_SEEN] > P[P_FC_WARMUP]:
        threshold_step(score, sc, P)
    return True, score


#: the name the kernel module's docstring uses
forecast_step = forecast_row


def forecast_process_run(X, V, SC, P, scores, mode, phases=()):
    """Twin of ``_forecast_kernels._process_run``: score then learn each row.

    Twin of ``_forecast_kernels._process_run`` (slot 0; ``phases``: the kernel's ``y``, the
    season phase of each row, empty for none): score then learn each row. Returns the first
    bad row (``mode`` 0: stop there) or -1 (``mode`` 1: count it and go on).
    """
    for i in range(len(X)):
        ph = float(phases[i]) if len(phases) else -1.0
        ok, score = forecast_row(X[i], V[0], SC[0], P, True, ph)
        if not ok:
            if mode == 0:
                return i
            SC[0, N_INVALID] += 1
            score = np.nan
        if len(scores):
            scores[i] = score
    return -1


def forecast_score_run(X, V, SC, P, scores, phases=()):
    """Twin of ``_forecast_kernels._score_run`` (pure)."""
    for i in range(len(X)):
        ph = float(phases[i]) if len(phases) else -1.0
        ok, score = forecast_row(X[i], V[0], SC[0], P, False, ph)
        if not ok:
            return i
        scores[i] = score
    return -1
