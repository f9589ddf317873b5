"""Numba kernels vs their naive Python twins (float64 state, tight tolerance)."""
import numpy as np
import pytest

import pygad.stream as ps
from pygad.stream import _kernels as K
from pygad.stream import _layout as L
from pygad.stream import _reference as R

KINDS = [(ps.ClippedSGDMean, K.MEAN), (ps.ClippedSGDLinear, K.LINEAR),
         (ps.ClippedSGDLogistic, K.LOGISTIC)]


def _data(kind, rng, n=300, d=7):
    X = rng.standard_normal((n, d)) * rng.uniform(0.1, 5, d)
    X[rng.random(n) < 0.05] *= 30                     # corruptions
    X[n // 2:] += 3.0                                  # drift
    if kind == K.MEAN:
        return X, np.empty(0)
    w = rng.standard_normal(d)
    if kind == K.LINEAR:
        return X, X @ w + 0.1 * rng.standard_normal(n)
    return X, (X @ w > 0).astype(np.float64)


def _fresh(est, d):
    est._lazy_init()
    est._alloc(d, 3)
    return est._V.copy(), est._SC.copy(), est._P.copy()


@pytest.mark.parametrize("cls,kind", KINDS)
@pytest.mark.parametrize("clip", ["auto", 0.7])
@pytest.mark.parametrize("horizon", [None, 500])
def test_process_run_matches_reference(cls, kind, clip, horizon, rng):
    X, y = _data(kind, rng)
    V, SC, P = _fresh(cls(dtype="float64", clip=clip, horizon=horizon), X.shape[1])
    V2, SC2 = V.copy(), SC.copy()
    s1, s2 = np.empty(len(X)), np.empty(len(X))
    assert K._process_run(kind, X, y, V, SC, P, s1, 0) == -1
    assert R.process_run(kind, X, y, V2, SC2, P, s2, 0) == -1
    np.testing.assert_allclose(s1, s2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(V, V2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(SC, SC2, rtol=1e-9, atol=1e-12)
    # the sample-at-a-time kernel built from _step agrees with the fused one (up to the
    # summation order fast-math may pick)
    V3, SC3, _ = _fresh(cls(dtype="float64", clip=clip, horizon=horizon), X.shape[1])
    s3 = np.empty(len(X))
    K._process_run_steps(kind, X, y, V3, SC3, P, s3, 0)
    np.testing.assert_allclose(s3, s1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(V3, V, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(SC3, SC, rtol=1e-12, atol=1e-14)
    # scoring twin, with and without labels
    for yy in ([y] if kind == K.LINEAR else [y, np.empty(0)]):
        if kind == K.MEAN and len(yy):
            continue
        a, b = np.empty(len(X)), np.empty(len(X))
        K._score_run(kind, X, yy, V, SC, P, a)
        R.score_run(kind, X, yy, V2, SC2, P, b)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls,kind", KINDS)
def test_process_keyed_matches_reference(cls, kind, rng):
    X, y = _data(kind, rng, n=400)
    V, SC, P = _fresh(cls(dtype="float64"), X.shape[1])
    rowslot = rng.integers(0, 3, len(X))
    V2, SC2 = V.copy(), SC.copy()
    order, starts, gslots = K._group_by_slot(rowslot, 3)
    s1, s2 = np.empty(len(X)), np.empty(len(X))
    K._process_keyed(kind, X, y, order, starts, gslots, V, SC, P, s1, 0)
    R.process_keyed(kind, X, y, rowslot, V2, SC2, P, s2, 0)
    np.testing.assert_allclose(s1, s2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(V, V2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(SC, SC2, rtol=1e-9, atol=1e-12)


def test_float32_state_close_to_reference(rng):
    X, _ = _data(K.MEAN, rng)
    V, SC, P = _fresh(ps.ClippedSGDMean(), X.shape[1])
    V2, SC2 = V.astype(np.float64), SC.copy()
    s1, s2 = np.empty(len(X)), np.empty(len(X))
    K._process_run(K.MEAN, X.astype(np.float32), np.empty(0), V, SC, P, s1, 0)
    R.process_run(K.MEAN, X, np.empty(0), V2, SC2, P, s2, 0)
    np.testing.assert_allclose(s1, s2, rtol=2e-3)


def test_threshold_kernel_matches_reference(rng):
    s = np.abs(rng.standard_normal(500))
    s[250:] += 4
    s[[10, 300]] = np.nan
    P = np.zeros(L.N_PARAMS)
    ps.AdaptiveThreshold(warmup=20)._fill(P)
    SC1, SC2 = np.zeros((1, L.N_SCALARS)), np.zeros((1, L.N_SCALARS))
    f1, f2 = np.empty(500, np.uint8), np.empty(500, np.uint8)
    t1, t2 = np.empty(500), np.empty(500)
    K._threshold_run(s, SC1, P, f1, t1)
    R.threshold_run(s, SC2, P, f2, t2)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_allclose(t1, t2, rtol=1e-12)
    np.testing.assert_allclose(SC1, SC2, rtol=1e-12)


def test_group_by_slot_is_stable(rng):
    slots = rng.integers(0, 50, 1000)
    order, starts, gslots = K._group_by_slot(slots, 60)
    np.testing.assert_array_equal(order, np.argsort(slots, kind="stable"))
    np.testing.assert_array_equal(gslots, np.unique(slots))
    assert starts[0] == 0 and starts[-1] == 1000


@pytest.mark.parametrize("cls,kind", KINDS)
def test_score_keyed_and_flags_match_reference(cls, kind, rng):
    X, y = _data(kind, rng, n=200)
    V, SC, P = _fresh(cls(dtype="float64"), X.shape[1])
    rowslot = rng.integers(0, 3, len(X))
    order, starts, gslots = K._group_by_slot(rowslot, 3)
    K._process_keyed(kind, X, y, order, starts, gslots, V, SC, P, np.empty(0), 0)
    probe = rng.integers(-1, 3, len(X))                    # -1: unseen key
    for yy in ([y] if kind == K.LINEAR else [y, np.empty(0)]):
        if kind == K.MEAN and len(yy):
            continue
        got = np.empty(len(X))
        assert K._score_keyed(kind, X, yy, probe, V, SC, P, got, 0.0) == 0
        for i in range(len(X)):
            if probe[i] < 0:
                want = 0.5 if (kind == K.LOGISTIC and not len(yy)) else 0.0
            else:
                k = probe[i]
                _, want = R.score_row(kind, X[i], V[k], SC[k], float(yy[i]) if len(yy) else 0.0,
                                      len(yy) > 0, P)
            assert got[i] == pytest.approx(want, rel=1e-9, abs=1e-12)
        flags = np.empty(len(X), np.uint8)
        K._threshold_flags_keyed(got, probe, SC, P, flags)
        for i in range(len(X)):
            k = probe[i]
            want = 0 if k < 0 or SC[k, L.TH_N] < P[L.P_TH_WARMUP] else \
                int(got[i] > R.threshold_value(SC[k], P))
            assert flags[i] == want


def test_validation_kernels(rng):
    X = rng.standard_normal((5000, 7)).astype(np.float32)
    assert K._first_invalid_row(X, 1e30) == -1
    X[4321, 3] = np.nan
    X[4400, 1] = np.inf
    assert K._first_invalid_row(X, 1e30) == 4321
    X[100, 0] = 1e20
    assert K._first_invalid_row(X, 1e19) == 100
    y = np.array([0, 1, 1, 0, 2, np.nan, 1], np.float64)
    assert K._check_labels(y, True) == (5, 4)
    assert K._check_labels(y, False) == (5, -1)


def test_log1p_unit_matches_libm():
    import math
    e = np.concatenate([[0.0, 1e-300, 1e-12, 0.5, 1.0], np.random.default_rng(3).random(2000)])
    got = np.array([K._log1p_unit(float(v)) for v in e])
    want = np.array([math.log1p(v) for v in e])
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)      # a few ulps


@pytest.mark.parametrize("cls,kind", KINDS[1:])
@pytest.mark.parametrize("d", [7, 16, 50])
def test_glm_lanes_and_wide_builds_match_reference(cls, kind, d, rng):
    """Both builds of the GLM sequence kernel (4-lane strict dot for small d, vectorised for
    large d; _process_run picks one by d) against the naive twin, float64."""
    X, y = _data(kind, rng, n=200, d=d)
    est = cls(dtype="float64")
    name = "linear" if kind == K.LINEAR else "logistic"
    ref = None
    for build in ("lanes", "wide"):
        V, SC, P = _fresh(est, d)
        s = np.empty(len(X))
        fn = getattr(K, f"_seq_{name}_{build}")
        assert fn(kind, X, y, np.empty(0, np.int64), 0, len(X), False, V[0], SC[0], P, s, 0) == -1
        if ref is None:
            V2, SC2, _ = _fresh(est, d)
            s2 = np.empty(len(X))
            R.process_run(kind, X, y, V2, SC2, P, s2, 0)
            ref = (s2, V2, SC2)
        np.testing.assert_allclose(s, ref[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(V, ref[1], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(SC, ref[2], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls,kind", KINDS)
def test_invalid_rows_skip_and_raise_match_reference(cls, kind, rng):
    """NaN rows first, in the middle and last: skip mode counts them and learns the rest; raise
    mode stops at the first one with every earlier row fully learned (the GLM kernel defers
    each row's score and threshold update by one row, so the stop must flush it)."""
    X, y = _data(kind, rng, n=120)
    X[[0, 40, 41, 77, 119]] = np.nan
    V, SC, P = _fresh(cls(dtype="float64"), X.shape[1])
    V2, SC2 = V.copy(), SC.copy()
    s1, s2 = np.empty(len(X)), np.empty(len(X))
    assert K._process_run(kind, X, y, V, SC, P, s1, 1) == -1
    R.process_run(kind, X, y, V2, SC2, P, s2, 1)
    np.testing.assert_array_equal(np.isnan(s1), np.isnan(s2))
    np.testing.assert_allclose(s1, s2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(SC, SC2, rtol=1e-9, atol=1e-12)
    assert SC[0, L.N_INVALID] == 5
    # raise mode: stops at row 40 (row 0 made finite again)
    X[0] = 1.0
    V, SC, _ = _fresh(cls(dtype="float64"), X.shape[1])
    V2, SC2 = V.copy(), SC.copy()
    s1, s2 = np.empty(len(X)), np.empty(40)
    assert K._process_run(kind, X, y, V, SC, P, s1, 0) == 40
    R.process_run(kind, X[:40], y[:40] if len(y) else y, V2, SC2, P, s2, 0)
    np.testing.assert_allclose(s1[:40], s2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(V, V2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(SC, SC2, rtol=1e-9, atol=1e-12)


def test_float32_logistic_close_to_reference(rng):
    X, y = _data(K.LOGISTIC, rng, d=16)
    V, SC, P = _fresh(ps.ClippedSGDLogistic(), X.shape[1])
    V2, SC2 = V.astype(np.float64), SC.copy()
    s1, s2 = np.empty(len(X)), np.empty(len(X))
    K._process_run(K.LOGISTIC, X.astype(np.float32), y.astype(np.float32), V, SC, P, s1, 0)
    R.process_run(K.LOGISTIC, X.astype(np.float32).astype(np.float64), y, V2, SC2, P, s2, 0)
    np.testing.assert_allclose(s1, s2, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(V[0, 0], V2[0, 0], rtol=1e-3, atol=1e-4)
