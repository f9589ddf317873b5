"""Numerics of every stream estimator on degenerate and extreme streams.

Streams (one feature): (a) constant, (b) all zeros, (c) 90% exact zeros with occasional
positive values, (d) magnitude 1e12 (1e12 + noise of 1e6), (e) magnitude 1e-12 (1e-12 + noise
of 1e-18), (f) a 1e6x step in scale half way. ClippedSGDLinear learns ``y = 2 x + noise``,
ClippedSGDLogistic labels from a threshold on ``x``; the Forecaster runs without a season.
Each check runs with float32 and float64 state.

Where a property does not hold the test is marked ``xfail(strict=True)`` with the numbers
measured; see the reasons.
"""
import math

import numpy as np
import pytest

import pygad.stream as ps

DTYPES = ["float32", "float64"]
NAMES = ["mean", "linear", "logistic", "forecaster"]
CASES = ["constant", "zeros", "sparse", "huge", "tiny", "scale_step"]
N = 6000


def _est(name, dtype, **kw):
    if name == "forecaster":
        return ps.ClippedSGDForecaster(dtype=dtype, season=None, **kw)
    cls = {"mean": ps.ClippedSGDMean, "linear": ps.ClippedSGDLinear,
           "logistic": ps.ClippedSGDLogistic}[name]
    return cls(dtype=dtype, **kw)


def _X(est, x):
    return np.ascontiguousarray(np.asarray(x, np.float64).reshape(len(x), -1), est.dtype)


def _process(est, x, y=None, proba=False):
    X = _X(est, x)
    if y is None:
        return est.process_many(X, proba=proba)
    return est.process_many(X, y, proba=proba)


def _score(est, x, y=None):
    X = _X(est, x)
    return est.score_many(X) if y is None else est.score_many(X, y)


def _stream(case, rng, n=N):
    u = rng.standard_normal(n)
    if case == "constant":
        return np.full(n, 3.7)
    if case == "zeros":
        return np.zeros(n)
    if case == "sparse":
        return np.where(rng.random(n) < 0.1, rng.uniform(1.0, 2.0, n), 0.0)
    if case == "huge":
        return 1e12 + 1e6 * u
    if case == "tiny":
        return 1e-12 + 1e-18 * u
    return u * np.where(np.arange(n) < n // 2, 1.0, 1e6)


def _targets(name, case, x, rng):
    """y for the GLMs (None for the others)."""
    n = len(x)
    if name == "linear":
        sd = {"constant": 0.0, "zeros": 0.0, "sparse": 0.05 * (x > 0), "huge": 1e5,
              "tiny": 1e-19}.get(case)
        if sd is None:                                 # scale step
            sd = 0.1 * np.where(np.arange(n) < n // 2, 1.0, 1e6)
        return 2.0 * x + sd * rng.standard_normal(n)
    if name == "logistic":
        if case in ("constant", "zeros"):
            return (rng.random(n) < 0.3).astype(np.float64)
        cut = {"huge": 1e12, "tiny": 1e-12}.get(case, 0.0)
        return (x > cut).astype(np.float64)
    return None


def _auc(hi, lo):
    """P(a score of ``hi`` > a score of ``lo``), ties counted half."""
    hi, lo = np.asarray(hi)[:, None], np.asarray(lo)[None, :]
    return float((hi > lo).mean() + 0.5 * (hi == lo).mean())


# ----------------------------------------------------------------------------- finiteness
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_scores_and_probabilities_finite(name, dtype, case, rng):
    x = _stream(case, rng)
    y = _targets(name, case, x, rng)
    est = _est(name, dtype)
    s, p = _process(est, x, y, proba=True)
    assert np.isfinite(s).all(), f"{np.flatnonzero(~np.isfinite(s))[:5]}"
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert (s >= 0).all()
    assert np.isfinite(est._V).all() and np.isfinite(est._SC).all()
    # pure calls on the learned state too
    tail = slice(N - 200, N)
    yt = None if y is None else y[tail]
    X = _X(est, x[tail])
    assert np.isfinite(_score(est, x[tail], yt)).all()
    pp = est.score_proba_many(X) if yt is None else est.score_proba_many(X, yt)
    assert np.isfinite(pp).all() and (pp >= 0).all() and (pp <= 1).all()
    if name == "logistic":
        q = est.predict_proba_many(X)
        assert np.isfinite(q).all() and (q >= 0).all() and (q <= 1).all()


# ----------------------------------------------------------------------------- (c) zero runs
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["mean", "forecaster"])
def test_zero_run_does_not_collapse_the_scale(name, dtype, rng):
    """After 2,500 exact zeros, an ordinary nonzero value scores within 100x of the typical
    nonzero score, and a 20x value still clearly above ordinary ones."""
    x = _stream("sparse", rng, 3000)
    x = np.concatenate([x, np.zeros(2500), [1.5]])
    est = _est(name, dtype)
    s = _process(est, x)
    nz = np.flatnonzero(x[:3000] > 0)
    typical = np.median(s[nz[nz >= 1000]])
    after = s[-1]
    assert typical > 0 and np.isfinite(after)
    assert after < 100 * typical, (after, typical)
    big, ordinary = _score(est, [30.0, 1.5])
    assert big > 3 * ordinary and big > 3 * typical, (big, ordinary, typical)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_sparse_stream_scores_stay_stable(name, dtype, rng):
    """A stationary 90%-zero stream: the scores of its ordinary nonzero values do not drift
    (the median over samples 25k-30k within 10x of that over 1k-5k)."""
    n = 30000
    x = _stream("sparse", rng, n)
    y = _targets(name, "sparse", x, rng)
    s = _process(_est(name, dtype), x, y)
    nz = x > 0
    idx = np.arange(n)
    early = np.median(s[nz & (idx >= 1000) & (idx < 5000)])
    late = np.median(s[nz & (idx >= 25000)])
    assert np.isfinite(late) and late < 10 * early, (early, late)


# ----------------------------------------------------------------------------- (f) scale step
_DOWN_REASON = ("design limit, reported: after a 1e6x DROP in scale the scale can shrink only "
                "as fast as its slow floor (0.25 x a running mean over ~1,000 samples), so "
                "scores stay ~1e-5 to 1e-6 of normal for ~15,000 samples ({}); anomalies of "
                "the new regime are masked meanwhile")
_DOWN = {"mean": "Mean: median 0.89 before, 1.2e-5 at samples +1.5k..+2k",
         "linear": "Linear: median 0.65 before, 5.5e-6 at +1.5k..+2k",
         "forecaster": "Forecaster: median 4.5e-4 before, 6.6e-7 (float64) / 1.2e-5 "
                       "(float32) at +1.5k..+2k; its value envelope even forgets over ~1e5 "
                       "samples"}


def _step_case(name, direction):
    if direction == "down" and name in _DOWN:
        return pytest.param(name, direction, marks=pytest.mark.xfail(
            strict=True, reason=_DOWN_REASON.format(_DOWN[name])))
    return pytest.param(name, direction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,direction", [_step_case(nm, d) for nm in NAMES
                                            for d in ("up", "down")])
def test_scale_step_readapts(name, direction, dtype, rng):
    """Within 2,000 samples of a 1e6x step in scale the median score is back within 3x of its
    median before the step (the model re-adapts: the state is not frozen). For the Logistic
    (labels from the sign of x) the log-loss is back below 0.6 log 2 (better than chance)."""
    n, st = 8000, 4000
    u = rng.standard_normal(n)
    scale = np.where(np.arange(n) < st, 1.0, 1e6)
    if direction == "down":
        scale = 1e6 / scale
    x = u * scale
    if name == "linear":
        y = 2.0 * x + 0.1 * scale * rng.standard_normal(n)
    elif name == "logistic":
        y = (u > 0).astype(np.float64)
    else:
        y = None
    s = _process(_est(name, dtype), x, y)
    assert np.isfinite(s).all()
    before = np.median(s[st - 500:st])
    after = np.median(s[st + 1500:st + 2000])
    if name == "logistic":
        assert after < 0.6 * math.log(2), (before, after)
    else:
        assert before / 3 < after < 3 * before, (before, after)


# ----------------------------------------------------------------------------- (d), (e)
def _magnitude_case(name, case):
    if case == "tiny" and name in ("linear", "logistic"):
        return pytest.param(name, case, marks=pytest.mark.xfail(strict=True, reason=(
            "defect (documented claim 'no feature scaling is needed'): the normalised-LMS "
            "preconditioner 1 / (1 + ||x||^2) is ~1 for features of size 1e-12, so weight "
            "steps are ~1e-24 of what they are at scale 1 and the weights never learn (Linear "
            "w = 2e-24 instead of 2; Logistic w ~ 6e-11): +10 sigma targets / flipped labels "
            "score at AUC 0.50-0.58 against normal rows (1.00 at magnitude 1e12)")))
    return pytest.param(name, case)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,case", [_magnitude_case(nm, c) for nm in NAMES
                                       for c in ("huge", "tiny")])
def test_anomalies_stand_out_at_any_magnitude(name, case, dtype, rng):
    """Trained on 3,000 rows of magnitude 1e12 (or 1e-12), injected anomalies score above
    held-out normal rows: AUC > 0.95 and a median 3x higher. Mean, Forecaster: x + 10 sigma;
    Linear: y + 10 noise sigma; Logistic: flipped labels of confidently classified rows. The
    Logistic's features are centred (x = 1e12 u): an offset of 1e12 with label-deciding
    fluctuations of 1e6 would need an intercept of -1e12 w, out of reach of normalised SGD."""
    n, m = 3000, 300
    off, sd = (1e12, 1e6) if case == "huge" else (1e-12, 1e-18)
    u = rng.standard_normal(n + 2 * m)
    est = _est(name, dtype)
    if name in ("mean", "forecaster", "linear"):
        x = off + sd * u
        y = None
        if name == "linear":
            y = 2.0 * x + 0.1 * sd * rng.standard_normal(len(x))
        _process(est, x[:n], None if y is None else y[:n])
        if y is None:
            normal = _score(est, x[n:n + m])
            anomalous = _score(est, x[n + m:] + 10 * sd)
        else:
            normal = _score(est, x[n:n + m], y[n:n + m])
            anomalous = _score(est, x[n + m:], y[n + m:] + sd)
    else:
        x = off * u
        y = (u > 0).astype(np.float64)
        _process(est, x[:n], y[:n])
        rows = n + np.flatnonzero(np.abs(u[n:]) > 1.0)
        normal = _score(est, x[rows], y[rows])
        anomalous = _score(est, x[rows], 1.0 - y[rows])
    assert np.isfinite(normal).all() and np.isfinite(anomalous).all()
    auc = _auc(anomalous, normal)
    ratio = np.median(anomalous) / max(np.median(normal), 1e-300)
    assert auc > 0.95 and ratio > 3, (auc, ratio)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", [2.0 ** 40, 2.0 ** -40], ids=["2**40", "2**-40"])
@pytest.mark.parametrize("name", ["mean", "forecaster"])
def test_scores_do_not_depend_on_the_unit(name, factor, dtype, rng, request):
    """Scale-free scores: the stream 1 + 1e-6 (noise + spikes) gives the same scores and
    probabilities when multiplied by 2**40 (~1.1e12) or 2**-40 (~9.1e-13); powers of two, so
    the rounding of the input is the same."""
    if name == "mean" and factor < 1 and dtype == "float32":
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "limit: in float32 the squared scale (9.1e-19 noise: 8e-37) is within a few "
            "units of the smallest normal float32 (1.2e-38) that floors it, so the scores "
            "of the 2**-40 stream are not those of the unit one; float64 is exact")))
    n = 3000
    u = rng.standard_normal(n)
    u[[700, 1500, 2200]] += 12.0
    base = 1.0 + 1e-6 * u
    s0, p0 = _process(_est(name, dtype), base, proba=True)
    s1, p1 = _process(_est(name, dtype), base * factor, proba=True)
    np.testing.assert_allclose(s1, s0, rtol=1e-6, atol=0)
    np.testing.assert_allclose(p1, p0, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- threshold


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_constant_start_does_not_freeze_the_threshold(name, dtype, rng):
    """20 constant samples, then 3,000 ordinary noisy ones: the learned threshold flags few
    of further ordinary samples (< 5%)."""
    n = 3020
    x = np.concatenate([np.full(20, 3.0), 3.0 + rng.standard_normal(n - 20)])
    if name == "linear":
        y = 2.0 * x + 0.1 * rng.standard_normal(n)
        y[:20] = 6.0
    elif name == "logistic":
        y = (x > 3.0).astype(np.float64)
        y[:20] = 1.0
    else:
        y = None
    est = _est(name, dtype)
    _process(est, x[:2020], None if y is None else y[:2020])
    X = _X(est, x[2020:])
    flags = est.predict_many(X) if y is None else est.predict_many(X, y[2020:])
    assert est.threshold_ > 0 and flags.mean() < 0.05, (est.threshold_, flags.mean())


def test_adaptive_threshold_recovers_from_equal_first_scores(rng):
    s = np.concatenate([np.zeros(10), np.abs(rng.standard_normal(3000))])
    t = ps.AdaptiveThreshold()
    flags = t.process_many(s)
    assert t.threshold_ > 1.0 and flags[1000:].mean() < 0.05, (t.threshold_, flags[1000:].mean())
