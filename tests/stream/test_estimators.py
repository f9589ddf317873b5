import pickle
import threading

import numpy as np
import pytest

import pygad.stream as ps

ESTS = [ps.ClippedSGDMean, ps.ClippedSGDLinear, ps.ClippedSGDLogistic]


def _xy(cls, rng, n=500, d=6):
    X = rng.standard_normal((n, d)).astype(np.float32)
    if cls is ps.ClippedSGDMean:
        return X, None
    w = rng.standard_normal(d)
    if cls is ps.ClippedSGDLinear:
        return X, X @ w
    return X, (X @ w > 0).astype(np.float32)


def _ysl(y, a, b):
    return None if y is None else y[a:b]


@pytest.mark.parametrize("cls", ESTS)
def test_prequential_and_one_vs_many(cls, rng):
    X, y = _xy(cls, rng, n=60)
    a, b = cls(), cls()
    s = a.process_many(X, y)
    for i in range(len(X)):
        yi = None if y is None else y[i]
        pre = b.score_one(X[i], yi)
        b.learn_one(X[i], yi)
        assert pre == pytest.approx(s[i], rel=1e-5, abs=1e-6)
    np.testing.assert_array_equal(a.theta_, b.theta_)
    assert a.n_seen_ == b.n_seen_ == len(X)
    c = cls()
    c.learn_many(X, y)
    np.testing.assert_array_equal(a.theta_, c.theta_)


@pytest.mark.parametrize("cls", ESTS)
def test_score_is_pure(cls, rng):
    X, y = _xy(cls, rng)
    m = cls()
    m.learn_many(X[:300], _ysl(y, 0, 300))
    before = m.to_bytes()
    s1 = m.score_many(X[300:], _ysl(y, 300, None))
    m.score_one(X[0], None if y is None else y[0])
    m.predict_many(X[300:], _ysl(y, 300, None))
    assert m.to_bytes() == before
    np.testing.assert_array_equal(s1, m.score_many(X[300:], _ysl(y, 300, None)))


def test_mean_scores_outliers_higher(rng):
    X = (rng.standard_normal((2000, 8)) * [1, 10, 100, 0.1, 1, 1, 1, 1] + 5).astype(np.float32)
    m = ps.ClippedSGDMean(score_clip=None)
    m.learn_many(X)
    out = X[:100].copy()
    out[:, 3] += 2.0                                   # 20 sigma in the small-scale feature
    assert np.median(m.score_many(out)) > 3 * np.median(m.score_many(X[:100]))
    capped = ps.ClippedSGDMean()                       # default: per-feature cap of 3
    capped.learn_many(X)
    out[:, [0, 4, 5]] += 3.0                           # a broad shift stands out
    assert np.median(capped.score_many(out)) > 1.5 * np.median(capped.score_many(X[:100]))
    assert np.all(np.abs(m.location_ - 5) < 0.5 * np.array([1, 10, 100, .1, 1, 1, 1, 1]))


def test_mean_robust_to_corruption(rng):
    X = rng.standard_normal((5000, 4))
    bad = rng.random(5000) < 0.1
    X[bad] = 1e4
    clipped = ps.ClippedSGDMean().fit if False else ps.ClippedSGDMean()
    clipped.learn_many(X)
    assert np.abs(clipped.location_).max() < 1.0
    unclipped = ps.ClippedSGDMean(clip=1e12)
    unclipped.learn_many(X)
    assert np.abs(unclipped.location_).max() > 10.0


@pytest.mark.parametrize("cls", [ps.ClippedSGDLinear, ps.ClippedSGDLogistic])
def test_glm_learns(cls, rng):
    X, y = _xy(cls, rng, n=20000, d=5)
    m = cls()
    m.learn_many(X, y)
    if cls is ps.ClippedSGDLinear:
        Xt, yt = X[:1000], y[:1000]
        assert np.mean((m.predict_value_many(Xt) - yt) ** 2) < 0.05 * np.var(yt)
    else:
        assert ((m.predict_proba_many(X[:2000]) > 0.5) == y[:2000]).mean() > 0.95


@pytest.mark.parametrize("cls", ESTS)
def test_bad_input(cls, rng):
    X, y = _xy(cls, rng, n=100)
    m = cls()
    m.learn_many(X[:50], _ysl(y, 0, 50))
    before = m.to_bytes()
    Xb = X[50:].copy()
    Xb[20, 3] = np.nan
    with pytest.raises(ValueError, match="row 20"):
        m.learn_many(Xb, _ysl(y, 50, None))
    assert m.to_bytes() == before
    Xb[20, 3] = np.inf
    with pytest.raises(ValueError):
        m.process_many(Xb, _ysl(y, 50, None))
    assert m.to_bytes() == before
    with pytest.raises(ValueError, match="features"):
        m.learn_many(X[:, :3], _ysl(y, 0, None))
    with pytest.raises(ValueError):
        m.learn_one(X[0, :3], None if y is None else y[0])
    assert m.to_bytes() == before
    # keyed: a bad row rolls back every key of the batch, new keys included
    keys = np.arange(50) % 7
    m.learn_many(X[:50], _ysl(y, 0, 50), keys=keys)
    before = m.to_bytes()
    with pytest.raises(ValueError):
        m.learn_many(Xb, _ysl(y, 50, None), keys=(np.arange(50) % 9))
    assert m.to_bytes() == before and m.n_keys_ == 7
    # skip mode
    s = cls(on_invalid="skip")
    sc = s.process_many(Xb, _ysl(y, 50, None))
    assert s.n_invalid_ == 1 and s.n_seen_ == 49 and np.isnan(sc[20])
    ref = cls()
    ref.learn_many(np.delete(Xb, 20, 0), None if y is None else np.delete(y[50:], 20))
    np.testing.assert_array_equal(s.theta_, ref.theta_)


def test_bad_labels(rng):
    X, y = _xy(ps.ClippedSGDLogistic, rng, n=10)
    with pytest.raises(ValueError, match="binary"):
        ps.ClippedSGDLogistic().learn_many(X, y + 2)
    y = y.astype(np.float64)
    y[3] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        ps.ClippedSGDLogistic().learn_many(X, y)
    m = ps.ClippedSGDLogistic(on_invalid="skip")
    m.learn_many(X, y)
    assert m.n_invalid_ == 1 and m.n_seen_ == 9
    with pytest.raises(TypeError):
        ps.ClippedSGDMean().learn_many(X, y)


@pytest.mark.parametrize("cls", ESTS)
@pytest.mark.parametrize("keyed", [False, True])
def test_save_load_continue_bit_identical(cls, keyed, rng, tmp_path):
    X, y = _xy(cls, rng, n=400)
    keys = rng.integers(0, 5, 400) if keyed else None
    k1 = None if keys is None else keys[:150]
    k2 = None if keys is None else keys[150:]
    full = cls()
    s_full = full.process_many(X, y, keys=keys)
    a = cls()
    s1 = a.process_many(X[:150], _ysl(y, 0, 150), keys=k1)
    path = tmp_path / "m.npz"
    a.save(path)
    b = cls.load(path)
    s2 = b.process_many(X[150:], _ysl(y, 150, None), keys=k2)
    np.testing.assert_array_equal(np.concatenate([s1, s2]), s_full)
    assert b.to_bytes() == full.to_bytes()
    # bytes, pickle, state_dict
    c = cls.from_bytes(a.to_bytes())
    d = pickle.loads(pickle.dumps(a))
    e = cls().load_state_dict(a.state_dict())
    for m in (c, d, e):
        np.testing.assert_array_equal(m.process_many(X[150:], _ysl(y, 150, None), keys=k2), s2)
    assert not list(tmp_path.glob(".tmp-*"))


def test_archive_is_plain_npz(tmp_path, rng):
    m = ps.ClippedSGDMean()
    m.learn_many(rng.standard_normal((20, 16)).astype(np.float32))
    m.save(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert str(z["__format__"]) == "pygad.stream/1"
    assert len(m.to_bytes()) < 4096
    with pytest.raises(ValueError, match="ClippedSGDMean"):
        ps.ClippedSGDLogistic.from_bytes(m.to_bytes())
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        ps.ClippedSGDMean.load(tmp_path / "junk.npz")


@pytest.mark.parametrize("cls", ESTS)
def test_keyed_equals_per_key_serial(cls, rng):
    X, y = _xy(cls, rng, n=600)
    keys = np.array(["acct-%d" % k for k in rng.integers(0, 6, 600)])
    m = cls()
    s = m.process_many(X, y, keys=keys)
    for k in np.unique(keys):
        idx = np.flatnonzero(keys == k)
        solo = cls()
        np.testing.assert_array_equal(solo.process_many(X[idx], None if y is None else y[idx]), s[idx])
        np.testing.assert_array_equal(solo.theta_, m.key_state(k)["theta"])
    assert m.n_keys_ == 6 and m.n_seen_ == 600
    sc = m.score_many(X[:10], _ysl(y, 0, 10), keys=keys[:10])
    assert np.isfinite(sc).all()
    assert m.score_one(X[0], None if y is None else y[0], key="unseen") in (0.0,)


@pytest.mark.parametrize("cls", ESTS)
def test_two_threads_disjoint_keys_equal_serial(cls, rng):
    X, y = _xy(cls, rng, n=20000, d=8)
    keys = rng.integers(0, 2000, 20000)
    serial = cls()
    s_serial = serial.process_many(X, y, keys=keys)
    m = cls()
    out = np.empty(20000)
    parts = [np.flatnonzero(keys % 2 == 0), np.flatnonzero(keys % 2 == 1)]
    barrier = threading.Barrier(2)
    errors = []

    def work(idx):
        try:
            barrier.wait()
            for chunk in np.array_split(idx, 10):   # many calls, new keys in each
                out[chunk] = m.process_many(X[chunk], None if y is None else y[chunk],
                                            keys=keys[chunk])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(p,)) for p in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    np.testing.assert_array_equal(out, s_serial)
    for k in (0, 1, 777, 1999):
        np.testing.assert_array_equal(m.key_state(k)["theta"], serial.key_state(k)["theta"])


def test_one_million_keys():
    n, d = 1_000_000, 16
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d), dtype=np.float32)
    keys = rng.permutation(n).astype(np.int64)
    m = ps.ClippedSGDMean()
    s = m.process_many(X, keys=keys)
    assert m.n_keys_ == n and np.all(s == 0.0)      # first sample of each key
    s2 = m.process_many(X[:1000] + 0.1, keys=keys[:1000])
    assert np.isfinite(s2).all()
    st = m.key_state(int(keys[5000]))
    assert st["n_seen"] == 1


def test_threshold_adapts_after_shift(rng):
    t = ps.AdaptiveThreshold()
    s = np.abs(rng.standard_normal(6000))
    s[3000:] = s[3000:] * 5 + 10                       # the score distribution shifts
    flags, thr = t.process_many(s, return_thresholds=True)
    assert flags[:60].sum() == 0                        # warm-up
    assert flags[100:3000].mean() < 0.05                # few false alarms before the shift
    assert flags[3000:3050].mean() > 0.5                # shift flagged at first ...
    assert flags[4500:].mean() < 0.05                   # ... then the threshold re-adapts
    assert thr[-1] > 10 and t.threshold_ == pytest.approx(thr[-1], rel=0.05)
    t2 = ps.AdaptiveThreshold.from_bytes(t.to_bytes())
    assert t2.threshold_ == t.threshold_ and pickle.loads(pickle.dumps(t)).threshold_ == t.threshold_


def test_estimator_predict_flags_anomalies(rng):
    X = rng.standard_normal((3000, 10)).astype(np.float32)
    m = ps.ClippedSGDMean()
    m.learn_many(X)
    assert np.isfinite(m.threshold_)
    assert m.predict_many(X[:500]).mean() < 0.1
    assert m.predict_one(X[0] + 8) == 1
    Xk = X[:200]
    mk = ps.ClippedSGDMean()
    mk.learn_many(np.tile(X[:1000], (2, 1)), keys=np.repeat([1, 2], 1000))
    assert mk.predict_many(Xk + 8, keys=np.full(200, 2)).mean() > 0.9


def test_params_and_repr():
    m = ps.ClippedSGDMean(lr=0.5, threshold=ps.AdaptiveThreshold(quantile=0.9))
    assert "lr=0.5" in repr(m)
    with pytest.raises(ValueError):
        ps.ClippedSGDMean(alpha=1.5).learn_many(np.zeros((2, 2)))
    with pytest.raises(ValueError):
        ps.ClippedSGDMean(on_invalid="ignore").learn_many(np.zeros((2, 2)))
    m.learn_one({"a": 1.0, "b": 2.0})
    m.learn_one({"b": 3.0, "a": 1.0})
    np.testing.assert_allclose(m.location_[1], 2.0 + (3.0 - 2.0) * 0.5 ** 0.5 * 0.5, rtol=1e-5)


@pytest.mark.parametrize("keys", [np.array([5, -3, 7, 10**15, 5, -3]), np.array([3, 1, 2, 3, 1, 9])])
def test_int_keys_dense_and_sparse(keys, rng):
    X = rng.standard_normal((6, 3)).astype(np.float32)
    m = ps.ClippedSGDMean()
    s = m.process_many(X, keys=keys)
    assert m.n_keys_ == len(set(keys.tolist()))
    for k in set(keys.tolist()):
        idx = np.flatnonzero(keys == k)
        np.testing.assert_array_equal(ps.ClippedSGDMean().process_many(X[idx]), s[idx])
    m2 = ps.ClippedSGDMean.from_bytes(m.to_bytes())
    np.testing.assert_array_equal(m2.score_many(X, keys=keys), m.score_many(X, keys=keys))


def test_threshold_archive_sets_only_its_own_parameters():
    from pygad.stream import state as _state
    t = ps.AdaptiveThreshold()
    t.learn_many(np.random.default_rng(0).normal(size=100))
    name, params, arrays = _state.unpack(t.state_dict())
    tampered = _state.pack(name, {**params, "learn_many": 1, "_fill": 2}, arrays)
    with pytest.raises(ValueError, match="unknown AdaptiveThreshold parameters"):
        ps.AdaptiveThreshold().load_state_dict(tampered)
    bad = _state.pack(name, params, {**arrays, "scalars": np.full(3, np.nan)})
    with pytest.raises(ValueError, match="'scalars' must hold"):
        ps.AdaptiveThreshold().load_state_dict(bad)
    assert ps.AdaptiveThreshold().load_state_dict(t.state_dict()).get_params() == t.get_params()


# ----------------------------------------------------------------------------- key hardening
def test_uint64_keys_above_int64_are_refused(rng):
    m = ps.ClippedSGDMean()
    X = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="fit in int64"):
        m.process_many(X, keys=np.array([2 ** 63 + 5, 1], np.uint64))
    m.process_many(X, keys=np.array([3, 1], np.uint64))           # small uint64 keys are fine
    assert m.n_keys_ == 2


def test_nan_keys_are_refused(rng):
    m = ps.ClippedSGDMean()
    X = rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match="NaN is not a valid key"):
        m.process_many(X, keys=np.array([0.5, np.nan, 1.5]))
    with pytest.raises(ValueError, match="NaN is not a valid key"):
        m.process_many(X, keys=["a", float("nan"), "b"])
    assert m.n_keys_ == 0


def test_str_keys_with_trailing_nul_cannot_be_saved(rng):
    m = ps.ClippedSGDMean()
    m.process_many(rng.standard_normal((2, 2)), keys=["a", "a\x00"])
    assert m.n_keys_ == 2
    with pytest.raises(ValueError, match="NUL"):
        m.to_bytes()


def test_archive_with_duplicate_keys_is_refused(rng):
    m = ps.ClippedSGDMean()
    m.process_many(rng.standard_normal((3, 2)), keys=np.array([4, 7, 9]))
    st = m.state_dict()
    st["keys_int"] = np.array([4, 7, 7])
    with pytest.raises(ValueError, match="distinct keys"):
        ps.ClippedSGDMean().load_state_dict(st)
    m2 = ps.ClippedSGDMean()
    m2.process_many(rng.standard_normal((2, 2)), keys=["x", "y"])
    st = m2.state_dict()
    st["keys_str"] = np.array(["x", "x"])
    with pytest.raises(ValueError, match="distinct keys"):
        ps.ClippedSGDMean().load_state_dict(st)
