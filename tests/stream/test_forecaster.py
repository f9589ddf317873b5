"""ClippedSGDForecaster: the Numba kernel against its naive twin, detection, prequential
semantics, keys, persistence and input validation."""
import pickle

import numpy as np
import pytest

import pygad.stream as ps
from pygad.stream import _layout as L
from pygad.stream import _reference as R

FC = ps.ClippedSGDForecaster
T0 = np.datetime64("2024-03-01T00:00")


def _sine(rng, n, d=1, period=50, noise=0.1):
    t = np.arange(n)[:, None]
    return np.sin(2 * np.pi * t / period + np.arange(d)) + noise * rng.standard_normal((n, d))


def _minutes(n, step=10):
    return T0 + np.arange(n) * np.timedelta64(step, "m")


def _day_phase(t, bins=6):
    """Season phase of datetime64 ``t`` for season="day", computed independently."""
    minute_of_day = (t - t.astype("datetime64[D]")).astype("timedelta64[m]").astype(np.int64)
    return (minute_of_day // (24 * 60 // bins)).astype(np.float64)


def _slot(est, key):
    return int(est._slots_for(est._one_key(key), 1, add=False)[0][0])


def _twin(est, X, phases=(), mode=0):
    """Run the naive twins over X from a fresh state shaped like ``est``'s (the forecaster
    kernel, then the anomaly-probability pass the estimator runs on its scores); returns
    (scores, V[0], SC[0], first bad row or -1)."""
    V = np.zeros((1, est._m, X.shape[1]))
    SC = np.zeros((1, L.N_SCALARS))
    est._init_rows(SC, slice(0, 1))
    s = np.empty(len(X))
    bad = R.forecast_process_run(X, V, SC, est._P, s, mode, phases)
    if bad < 0:                                        # the estimator's probability pass
        R.proba_run(s, SC, est._P, np.empty(0), True)
    return s, V[0], SC[0], bad


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


CONFIGS = [({"season": None}, None), ({"season": 24}, "index"), ({"season": "day"}, "datetime")]


def _times(how, keys, n):
    if how is None:
        return None
    if how == "datetime":
        return _minutes(n, step=25)
    if keys is None:                                   # int season: the stream position
        return None
    t = np.empty(n, np.int64)
    for k in np.unique(keys):
        t[keys == k] = np.arange((keys == k).sum())
    return t


# ----------------------------------------------------------------------------- kernel vs twin
def _stream_univariate(rng):
    X = _sine(rng, 800)
    X[300] += 4.0                                     # spike
    X[500:] += 2.0                                    # level shift
    return X, {"season": None}, None


def _stream_d3(rng):
    n = 700
    X = np.column_stack([_sine(rng, n)[:, 0],
                         1e3 + rng.standard_normal(n),          # level with noise
                         np.cumsum(rng.standard_normal(n))])    # random walk
    X[[100, 400], 1] += 30.0
    return X, {"season": None, "lags": 3}, None


def _stream_nan_skip(rng):
    X = _sine(rng, 600, d=2)
    X[[0, 5, 300, 301, 599]] = np.nan
    X[200, 1] = np.inf
    return X, {"season": None, "on_invalid": "skip", "lags": 4}, None


def _stream_season7(rng):
    X = _sine(rng, 900, period=7)
    X[600] += 3.0
    return X, {"season": 7, "warmup": 20}, np.arange(900) % 7


def _stream_residual_fixed_clip(rng):
    X = _sine(rng, 600, d=2)
    X[250, 0] += 5.0
    return X, {"season": None, "score": "residual", "clip": 0.5, "horizon": 400, "l2": 0.01,
               "lags": 2, "change_threshold": 5.0}, None


STREAMS = {"univariate": _stream_univariate, "d3": _stream_d3, "nan_skip": _stream_nan_skip,
           "season7": _stream_season7, "residual_fixed_clip": _stream_residual_fixed_clip}


@pytest.mark.parametrize("name", list(STREAMS))
def test_estimator_matches_twin(name, rng):
    X, kw, phases = STREAMS[name](rng)
    est = FC(**kw)
    s = est.process_many(X)
    mode = 1 if kw.get("on_invalid") == "skip" else 0
    ph = () if phases is None else phases
    s2, v2, sc2, bad = _twin(est, X, ph, mode)
    assert bad == -1
    np.testing.assert_array_equal(np.isnan(s), np.isnan(s2))
    _close(s, s2)
    _close(est._V[0], v2)
    _close(est._SC[0], sc2)
    if mode == 1:
        assert est.n_invalid_ == int(sc2[L.N_INVALID]) == int((~np.isfinite(X).all(1)).sum())
    # pure scoring twin: more rows of the same kind against the final state
    Xs, _, _ = STREAMS[name](np.random.default_rng(7))
    Xs = Xs[:50]
    start = len(X) % 7 if phases is not None else 0
    got = est.score_many(Xs)
    want = np.empty(len(Xs))
    V, SC = v2[None].copy(), sc2[None].copy()
    sph = () if phases is None else (start + np.arange(len(Xs))) % 7
    if mode == 1:
        fin = np.isfinite(Xs).all(1)
        want[:] = np.nan
        sub = np.empty(fin.sum())
        R.forecast_score_run(Xs[fin], V, SC, est._P, sub, () if phases is None else sph[fin])
        want[fin] = sub
    else:
        assert R.forecast_score_run(Xs, V, SC, est._P, want, sph) == -1
    _close(got, want)
    _close(V[0], v2)                                   # the twin's scoring is pure too


def test_seasonal_timestamps_match_twin(rng):
    """season="day" with datetime64 t: the phase of each row (4-hour blocks) reaches the
    kernel; the seasonal envelopes then score a value new for its time of day."""
    n = 6 * 24 * 12                                    # 12 days of 10-minute samples
    t = _minutes(n)
    hours = np.arange(n) / 6.0
    X = (np.sin(2 * np.pi * hours / 24) + 0.05 * rng.standard_normal(n))[:, None]
    X[n - 50] = 1.0                                    # a daytime level at night
    est = FC(season="day", warmup=20)
    s = est.process_many(X, t=t)
    s2, v2, sc2, _ = _twin(est, X, _day_phase(t))
    _close(s, s2)
    _close(est._V[0], v2)
    _close(est._SC[0], sc2)
    # without the season the same value is ordinary (inside the global envelope)
    plain = FC(season=None, warmup=20).process_many(X)
    assert s[n - 50] > 0.05 and plain[n - 50] < 0.01


def test_keyed_seasonal_matches_twin(rng):
    n = 900
    X = _sine(rng, n, d=2, period=7)
    keys = rng.integers(0, 3, n)
    t = np.empty(n, np.int64)                          # each key's own sample index
    for k in range(3):
        t[keys == k] = np.arange((keys == k).sum())
    est = FC(season=7, warmup=10, lags=3)
    s = est.process_many(X, keys=keys, t=t)
    for k in range(3):
        idx = np.flatnonzero(keys == k)
        s2, v2, sc2, _ = _twin(est, X[idx], (t[idx] % 7).astype(np.float64))
        _close(s[idx], s2)
        _close(est._V[_slot(est, k)], v2)
        _close(est._SC[_slot(est, k)], sc2)


def test_raise_mode_twin_stops_at_the_bad_row(rng):
    """on_invalid="raise": the kernel stops at the first bad row with every earlier row
    learned (the estimator then restores its snapshot); so does the twin."""
    from pygad.stream import _forecast_kernels as F
    X = _sine(rng, 200, d=2)
    X[120, 1] = np.nan
    est = FC(season=None)
    est._lazy_init()
    states = []
    for fn in (lambda *a: F._process_run(3, X, np.empty(0), *a),
               lambda *a: R.forecast_process_run(X, *a)):
        V = np.zeros((1, est._m, 2))
        SC = np.zeros((1, L.N_SCALARS))
        est._init_rows(SC, slice(0, 1))
        s = np.full(len(X), -1.0)
        assert fn(V, SC, est._P, s, 0) == 120
        states.append((s, V, SC))
    for a, b in zip(*states):
        _close(a, b)
    assert (states[0][0][120:] == -1.0).all()          # nothing written from the bad row on
    ref = _twin(est, X[:120])
    _close(states[0][1][0, :2 * est.lags], ref[1][:2 * est.lags])


# ----------------------------------------------------------------------------- detection
def _with_anomaly(kind, rng):
    x = _sine(rng, 3000)[:, 0]
    if kind == "spike":
        x[2000] += 3.0
    elif kind == "level_shift":
        x[2000:] += 3.0
    else:                                              # slow ramp out of the range seen
        x[2000:2600] += np.linspace(0.0, 3.0, 600)
        x[2600:] += 3.0
    return x[:, None]


@pytest.mark.parametrize("kind", ["spike", "level_shift", "ramp"])
def test_anomalies_score_far_above_normal(kind, rng):
    s = FC().process_many(_with_anomaly(kind, rng))
    normal = s[1000:2000]
    top = s[2000:2700].max()
    assert np.isfinite(s).all()
    assert top > 30 * np.percentile(normal, 99)
    assert top > 2 * normal.max()
    if kind != "ramp":
        assert int(np.argmax(s)) == 2000


def test_adaptive_clip_is_active_after_warmup(rng):
    """Clipped SGD clips: after 5,000 samples the adaptive clip threshold is of the order of
    the gradient norms (a few units for standardised residuals), so corrupted samples (5% of
    +4 spikes) move the weights less than without a clip."""
    x = _sine(rng, 5000)
    x[rng.random(5000) < 0.05] += 4.0
    auto = FC(season=None)
    auto.learn_many(x)
    unclipped = FC(season=None, clip=1e300)
    unclipped.learn_many(x)
    assert auto._P[L.P_CLIP_MULT] * auto._SC[0, L.CLIP_Q] < 100.0
    assert not np.array_equal(auto.coef_, unclipped.coef_)


def test_threshold_flags_few_ordinary_samples(rng):
    x = _sine(rng, 4000)
    m = FC(season=None)
    m.learn_many(x[:3000])
    flags = m.predict_many(x[3000:])
    assert m.threshold_ > 0 and flags.mean() < 0.05, (m.threshold_, flags.mean())


# ----------------------------------------------------------------------------- semantics
@pytest.mark.parametrize("kw", [{"season": None}, {"season": 7, "warmup": 5}])
def test_score_then_learn(kw, rng):
    X = _sine(rng, 300, d=2)
    a = FC(**kw)
    s = a.process_many(X)
    b = FC(**kw)
    for i in range(len(X)):
        before = b.score_one(X[i])                     # against the state before row i
        b.learn_one(X[i])
        assert before == pytest.approx(s[i], rel=1e-12, abs=1e-15)
    assert s[0] == 0.0
    assert a.to_bytes() == b.to_bytes()
    # a spike is scored before it is learned: learning it makes it ordinary (with a season,
    # the next row's phase has not seen it: only its seasonal novelty remains)
    spike = X[-1] + 5.0
    pre = a.score_one(spike)
    assert a.process_one(spike) == pre
    assert a.score_one(spike) < (0.1 if kw["season"] is None else 0.5) * pre
    assert a.n_seen_ == len(X) + 1


@pytest.mark.parametrize("kw,how", CONFIGS, ids=["plain", "season24", "season_day"])
@pytest.mark.parametrize("keyed", [False, True])
def test_score_is_pure(kw, how, keyed, rng):
    X = _sine(rng, 400, d=2)
    keys = rng.integers(0, 3, 400) if keyed else None
    t = _times(how, keys, 400)
    m = FC(**kw)
    m.learn_many(X[:300], keys=None if keys is None else keys[:300],
                 t=None if t is None else t[:300])
    before = m.to_bytes()
    kk = None if keys is None else keys[300:]
    tt = None if t is None else t[300:]
    s1 = m.score_many(X[300:], keys=kk, t=tt)
    m.score_one(X[0], key=None if keys is None else int(keys[0]),
                t=None if tt is None else tt[0])
    m.predict_many(X[300:], keys=kk, t=tt)
    m.score_proba_many(X[300:], keys=kk, t=tt)
    assert m.to_bytes() == before
    np.testing.assert_array_equal(s1, m.score_many(X[300:], keys=kk, t=tt))


@pytest.mark.parametrize("kw,how,keyed", [
    ({"season": None}, None, False),
    ({"season": 24}, "index", False),
    ({"season": None}, None, True),
    ({"season": "day"}, "datetime", False),
], ids=["plain", "season24", "keyed", "season_day"])
def test_proba_and_flags_use_the_right_state(kw, how, keyed, rng):
    """score_proba_many and predict_many agree with score_many: the probability of each row's
    score against its key's probability state, the flag against its key's threshold."""
    X = _sine(rng, 1200, d=2)
    keys = rng.integers(0, 2, 1200) if keyed else None
    t = _times(how, keys, 1200)
    m = FC(**kw, warmup=10)
    m.learn_many(X[:1000], keys=None if keys is None else keys[:1000],
                 t=None if t is None else t[:1000])
    Xq = X[1000:1040].copy()
    Xq[::4] += 4.0                                     # novel rows among ordinary ones
    kq = None if keys is None else keys[1000:1040]
    tq = None if t is None else t[1000:1040]
    s = m.score_many(Xq, keys=kq, t=tq)
    slots = np.zeros(len(Xq), np.int64) if kq is None else \
        np.array([_slot(m, int(k)) for k in kq])
    want_p = [R.proba_step(float(s[i]), m._SC[slots[i]].copy(), m._P, False)
              for i in range(len(Xq))]
    want_f = [int(s[i] > R.threshold_value(m._SC[slots[i]], m._P)) for i in range(len(Xq))]
    np.testing.assert_allclose(m.score_proba_many(Xq, keys=kq, t=tq), want_p, rtol=1e-12)
    np.testing.assert_array_equal(m.predict_many(Xq, keys=kq, t=tq), want_f)
    assert max(want_f) == 1 and max(want_p) > 0.99


@pytest.mark.parametrize("season", [None, 7, "day"])
def test_keyed_equals_separate_estimators(season, rng):
    n = 900
    X = _sine(rng, n, d=2, period=7)
    X[700, 0] += 4.0
    keys = np.array(["pump-a", "pump-b", "fan"])[rng.integers(0, 3, n)]
    if season == 7:
        t = np.empty(n, np.int64)
        for k in np.unique(keys):
            t[keys == k] = np.arange((keys == k).sum())
    elif season == "day":
        t = _minutes(n, step=37)
    else:
        t = None
    m = FC(season=season, warmup=10)
    s, p = m.process_many(X, keys=keys, t=t, proba=True)
    for k in np.unique(keys):
        idx = np.flatnonzero(keys == k)
        solo = FC(season=season, warmup=10)
        s1, p1 = solo.process_many(X[idx], t=None if t is None else t[idx], proba=True)
        np.testing.assert_array_equal(s1, s[idx])
        np.testing.assert_array_equal(p1, p[idx])
        np.testing.assert_array_equal(solo._V[0], m._V[_slot(m, k)])
        np.testing.assert_array_equal(solo._SC[0], m._SC[_slot(m, k)])
        np.testing.assert_array_equal(solo.coef_, m.key_state(k)["theta"])
    assert m.n_keys_ == 3 and m.n_seen_ == n


# ----------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("kw,how", CONFIGS, ids=["plain", "season24", "season_day"])
@pytest.mark.parametrize("keyed", [False, True])
def test_resume_mid_stream_is_bit_exact(kw, how, keyed, rng, tmp_path):
    n = 900
    X = _sine(rng, n, d=2, period=24)
    X[[500, 800], 1] += 3.0
    keys = rng.integers(0, 4, n) if keyed else None
    t = _times(how, keys, n)

    def part(a, b):
        return (X[a:b], None if keys is None else keys[a:b], None if t is None else t[a:b])

    full = FC(**kw, warmup=10)
    s_full, p_full = full.process_many(X, keys=keys, t=t, proba=True)
    a = FC(**kw, warmup=10)
    x1, k1, t1 = part(0, 300)
    s1, p1 = a.process_many(x1, keys=k1, t=t1, proba=True)
    a.save(tmp_path / "fc.npz")
    b = FC.load(tmp_path / "fc.npz")
    x2, k2, t2 = part(300, 611)
    s2, p2 = b.process_many(x2, keys=k2, t=t2, proba=True)
    c = FC.from_bytes(b.to_bytes())
    x3, k3, t3 = part(611, n)
    s3, p3 = c.process_many(x3, keys=k3, t=t3, proba=True)
    np.testing.assert_array_equal(np.concatenate([s1, s2, s3]), s_full)
    np.testing.assert_array_equal(np.concatenate([p1, p2, p3]), p_full)
    assert c.to_bytes() == full.to_bytes()
    assert c.get_params() == full.get_params()
    # the other restore paths continue identically too
    for m in (pickle.loads(pickle.dumps(b)), FC().load_state_dict(b.state_dict())):
        np.testing.assert_array_equal(m.process_many(x3, keys=k3, t=t3), s3)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw,how", CONFIGS[::2], ids=["plain", "season_day"])
@pytest.mark.parametrize("keyed", [False, True])
def test_nan_raise_leaves_state_bit_identical(kw, how, keyed, rng):
    X = _sine(rng, 200, d=2)
    keys = rng.integers(0, 3, 200) if keyed else None
    t = _times(how, keys, 200)
    m = FC(**kw)
    m.learn_many(X[:100], keys=None if keys is None else keys[:100],
                 t=None if t is None else t[:100])
    before = m.to_bytes()
    Xb = X[100:].copy()
    Xb[17, 1] = np.nan
    kb = None if keys is None else keys[100:] + 1       # a new key too: must be forgotten
    tb = None if t is None else t[100:]
    for call in (m.learn_many, m.process_many):
        with pytest.raises(ValueError, match=r"NaN/inf.*row 17"):
            call(Xb, keys=kb, t=tb)
        assert m.to_bytes() == before
    Xb[17, 1] = -np.inf
    with pytest.raises(ValueError, match="row 17"):
        m.process_many(Xb, keys=kb, t=tb, proba=True)
    assert m.to_bytes() == before
    # the stream continues as if the bad batch never came
    ref = FC(**kw)
    ref.learn_many(X[:100], keys=None if keys is None else keys[:100],
                   t=None if t is None else t[:100])
    np.testing.assert_array_equal(m.process_many(X[100:], keys=kb, t=tb),
                                  ref.process_many(X[100:], keys=kb, t=tb))


def test_nan_raise_does_not_advance_the_season_counter(rng):
    X = _sine(rng, 200, d=2)
    m = FC(season=24)
    m.learn_many(X[:100])
    before = m.to_bytes()
    Xb = X[100:].copy()
    Xb[17, 1] = np.nan
    with pytest.raises(ValueError, match="row 17"):
        m.learn_many(Xb)
    assert m.to_bytes() == before


def test_bad_input_raises_clear_errors(rng):
    X = _sine(rng, 100, d=3)
    m = FC(season=None)
    m.learn_many(X[:50])
    before = m.to_bytes()
    with pytest.raises(ValueError, match="X has 2 features.*fitted with 3"):
        m.learn_many(X[:, :2])
    with pytest.raises(ValueError, match="features"):
        m.score_one(X[0, :2])
    with pytest.raises(ValueError, match="2-D"):
        m.process_many(X[:, 0])
    assert m.to_bytes() == before
    with pytest.raises(ValueError, match="lags must be an int >= 1, got 0"):
        FC(lags=0).learn_many(X)
    with pytest.raises(ValueError, match="lags"):
        FC(lags=2.5).process_many(X)
    with pytest.raises(ValueError, match="season must be .*'month'"):
        FC(season="month").learn_many(X)
    with pytest.raises(ValueError, match="season must be >= 2"):
        FC(season=1).learn_many(X)
    with pytest.raises(ValueError, match="score must be"):
        FC(score="zscore").learn_many(X)
    with pytest.raises(ValueError, match="t has 3 values for 100 samples"):
        FC(season="day").learn_many(X, t=_minutes(3))
    with pytest.raises(ValueError, match="needs t="):
        FC(season=24).learn_many(X, keys=np.arange(100) % 2)
    with pytest.raises(TypeError, match="numeric"):
        FC().learn_many(np.array([["a", "b"]]))


# ----------------------------------------------------------------------------- probabilities
def test_process_many_proba_in_unit_interval(rng):
    x = _with_anomaly("spike", rng)
    m = FC()
    s, p = m.process_many(x, proba=True)
    assert s.shape == p.shape == (len(x),)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    warm = int(m._P[L.P_LK_WARMUP])
    assert (p[:warm] == 0.5).all()
    assert p[2000] > 0.99 and np.median(p[1000:2000]) < 0.9
    q = m.score_proba_many(x[:20])
    assert ((q >= 0) & (q <= 1)).all()
