"""pygad.stream throughput vs peers, side by side in one run (pytest-benchmark).

Run:  python -P -m pytest bench/bench_stream.py --benchmark-only -s -p no:cacheprovider
      (add --benchmark-json=out.json to keep the numbers)

Groups (impl = peer | numpy | pygad; ratios in ``extra_info`` and printed at the end):
* logistic-d16 / logistic-d784: ``ClippedSGDLogistic().learn_many`` vs river
  ``LogisticRegression.learn_one`` vs a pure NumPy per-sample clipped-SGD loop;
* mean-d16: ``ClippedSGDMean.process_many`` vs river ``HalfSpaceTrees`` score_one+learn_one
  vs NumPy loop;
* forecaster-d1: ``ClippedSGDForecaster.process_many`` (with and without probabilities) vs
  river ``HalfSpaceTrees`` on a univariate series;
* keyed: ``ClippedSGDMean.process_many(keys=...)`` at 1k and 1M keys (d=16);
* bandwidth-d784: bytes a call must move (read X, y, keys once; write the scores; read and
  write the touched state rows once) per second, as a fraction of a plain single-thread copy
  of X (``2 * X.nbytes`` per copy time) timed alternately with the call in the same run.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import pygad.stream as ps
from pygad.stream._kernels import _copy_rows

RESULTS: dict = {}
RNG = np.random.default_rng(0)


def _data(d, n):
    X = RNG.standard_normal((n, d), dtype=np.float32)
    w = RNG.standard_normal(d).astype(np.float32)
    return X, (X @ w > 0).astype(np.float32)


def _record(benchmark, group, impl, n):
    rate = n / benchmark.stats.stats.median
    RESULTS[(group, impl)] = rate
    benchmark.extra_info["samples_per_s"] = rate
    for peer in ("river", "numpy"):
        if (group, peer) in RESULTS and impl == "pygad":
            benchmark.extra_info[f"ratio_vs_{peer}"] = rate / RESULTS[(group, peer)]


def numpy_clipped_sgd_logistic(X, y, lr=1.0, alpha=0.5, clip_mult=2.0):
    """The same algorithm as ClippedSGDLogistic, one sample at a time in NumPy."""
    w = np.zeros(X.shape[1], np.float32)
    b, q, T, end, eta = 0.0, 0.0, 1, 1, lr
    for t in range(X.shape[0]):
        x = X[t]
        z = float(w @ x) + b
        p = 1.0 / (1.0 + np.exp(-z))
        nx = float(x @ x) + 1.0
        err = p - y[t]
        gn = abs(err) * np.sqrt(nx)
        f = 1.0
        if q == 0.0:
            q = gn
        else:
            f = min(1.0, clip_mult * q / max(gn, 1e-30))
            q *= 1.025 if gn > q else 0.975
        step = -eta * f * err / nx
        w += np.float32(step) * x
        b += step
        if t + 1 >= end:
            T = end + 1
            end += T
            eta = lr * T ** -alpha
    return w


def numpy_clipped_sgd_mean(X, lr=1.0, alpha=0.5):
    mu = X[0].astype(np.float32).copy()
    s = np.zeros_like(mu)
    out = np.empty(X.shape[0])
    eta, end = lr, 1
    for t in range(X.shape[0]):
        r = X[t] - mu
        z2 = np.minimum(r * r / (s * s + 1e-4), 9.0)
        out[t] = np.sqrt(z2.mean())
        f = 1.0
        mu += np.float32(eta * f) * r
        s += np.float32(eta * f) * (np.abs(r) - s)
        if t + 1 >= end:
            T = end + 1
            end += T
            eta = lr * T ** -alpha
    return out


# ---------------------------------------------------------------- logistic regression
@pytest.mark.parametrize("d", [16, 784])
@pytest.mark.parametrize("impl", ["river", "numpy", "pygad"])
def test_logistic_learn(benchmark, impl, d):
    benchmark.group = f"logistic-d{d}"
    if impl == "river":
        river_lm = pytest.importorskip("river.linear_model")
        n = 20000 if d == 16 else 2000
        X, y = _data(d, n)
        rows = [dict(enumerate(r.tolist())) for r in X]
        yb = [bool(v) for v in y]

        def run():
            m = river_lm.LogisticRegression()
            for xi, yi in zip(rows, yb):
                m.learn_one(xi, yi)
        benchmark.pedantic(run, rounds=3, iterations=1)
    elif impl == "numpy":
        n = 20000
        X, y = _data(d, n)
        benchmark.pedantic(numpy_clipped_sgd_logistic, args=(X, y), rounds=3, iterations=1)
    else:
        n = 4_000_000 if d == 16 else 400_000
        X, y = _data(d, n)
        ps.ClippedSGDLogistic().learn_many(X[:100], y[:100])          # compile outside
        benchmark.pedantic(lambda m: m.learn_many(X, y),
                           setup=lambda: ((ps.ClippedSGDLogistic(),), {}), rounds=5, iterations=1)
    _record(benchmark, benchmark.group, impl, n)


# ---------------------------------------------------------------- mean + anomaly score
@pytest.mark.parametrize("impl", ["river", "numpy", "pygad"])
def test_mean_process(benchmark, impl):
    d = 16
    benchmark.group = "mean-d16"
    if impl == "river":
        anomaly = pytest.importorskip("river.anomaly")
        n = 5000
        X = RNG.random((n, d), dtype=np.float32)
        rows = [dict(enumerate(r.tolist())) for r in X]

        def run():
            h = anomaly.HalfSpaceTrees(seed=0)
            for xi in rows:
                h.score_one(xi)
                h.learn_one(xi)
        benchmark.pedantic(run, rounds=3, iterations=1)
    elif impl == "numpy":
        n = 20000
        X = RNG.random((n, d), dtype=np.float32)
        benchmark.pedantic(numpy_clipped_sgd_mean, args=(X,), rounds=3, iterations=1)
    else:
        n = 4_000_000
        X = RNG.random((n, d), dtype=np.float32)
        ps.ClippedSGDMean().process_many(X[:100])
        benchmark.pedantic(lambda m: m.process_many(X),
                           setup=lambda: ((ps.ClippedSGDMean(),), {}), rounds=5, iterations=1)
    _record(benchmark, "mean-d16", impl, n)


# ---------------------------------------------------------------- time-series detector
@pytest.mark.parametrize("impl", ["river", "pygad", "pygad-proba"])
def test_forecaster_process(benchmark, impl):
    """ClippedSGDForecaster.process_many on a univariate series (the NAB setting) against river
    HalfSpaceTrees score_one + learn_one on the same values; target >= 1M points/s."""
    benchmark.group = "forecaster-d1"
    if impl == "river":
        anomaly = pytest.importorskip("river.anomaly")
        n = 5000
        x = RNG.random(n).tolist()

        def run():
            h = anomaly.HalfSpaceTrees(seed=0)
            for v in x:
                h.score_one({0: v})
                h.learn_one({0: v})
        benchmark.pedantic(run, rounds=3, iterations=1)
        _record(benchmark, "forecaster-d1", "river", n)
        return
    n = 2_000_000
    X = np.cumsum(RNG.standard_normal(n))[:, None]
    proba = impl == "pygad-proba"
    ps.ClippedSGDForecaster().process_many(X[:100], proba=proba)          # compile outside
    benchmark.pedantic(lambda m: m.process_many(X, proba=proba),
                       setup=lambda: ((ps.ClippedSGDForecaster(),), {}), rounds=5, iterations=1)
    _record(benchmark, "forecaster-d1", "pygad" if not proba else impl, n)
    if not proba:
        benchmark.extra_info["impl"] = "pygad"


# ---------------------------------------------------------------- keyed throughput
@pytest.mark.parametrize("n_keys", [1000, 1_000_000])
def test_keyed_throughput(benchmark, n_keys):
    d, n = 16, 2_000_000
    benchmark.group = "keyed-d16"
    X = RNG.standard_normal((n, d), dtype=np.float32)
    keys = RNG.integers(0, n_keys, n)
    warm = ps.ClippedSGDMean()
    warm.process_many(X[:1000], keys=keys[:1000])

    def setup():
        m = ps.ClippedSGDMean()
        m.process_many(X[:n_keys], keys=np.arange(n_keys))            # keys already known
        return (m,), {}
    benchmark.pedantic(lambda m: m.process_many(X, keys=keys), setup=setup, rounds=3,
                       iterations=1)
    _record(benchmark, "keyed-d16", f"{n_keys} keys", n)


# ---------------------------------------------------------------- memory bandwidth
def _required_bytes(m, X, y, keys, want_scores):
    """Bytes a call must move at the least: read X (and y, keys) once, write the scores (when
    returned), read and write the state rows of the keys it touched once."""
    b = X.nbytes + (0 if y is None else y.nbytes) + (0 if keys is None else keys.nbytes)
    if want_scores:
        b += 8 * X.shape[0]
    rows = 1 if keys is None else len(np.unique(keys))
    row_bytes = m._V[0].nbytes + m._SC[0].nbytes
    return b + 2 * rows * row_bytes


@pytest.mark.parametrize("what", ["copy", "logistic", "mean", "mean-keyed-1k"])
def test_bandwidth_d784(benchmark, what):
    """Fraction of memory bandwidth: (required bytes / time of the call) / (2 * X.nbytes / time
    of a plain single-thread copy of X). A copy of X is timed right before every round of the
    call (alternating, so both see the same machine load), and the median of the per-round
    fractions is reported."""
    d, n = 784, 400_000
    benchmark.group = "bandwidth-d784"
    X, y = _data(d, n)
    dst = np.empty_like(X)
    _copy_rows(X[:10], dst[:10])
    if what == "copy":
        benchmark.pedantic(_copy_rows, args=(X, dst), rounds=5, iterations=1)
        bw = 2 * X.nbytes / benchmark.stats.stats.median                 # read + write
        RESULTS[("bandwidth", what)] = bw
        benchmark.extra_info["bytes_per_s"] = bw
        return
    keys = RNG.integers(0, 1000, n) if what == "mean-keyed-1k" else None
    cls = ps.ClippedSGDLogistic if what == "logistic" else ps.ClippedSGDMean
    yy = y if what == "logistic" else None
    if what == "logistic":
        def call(m):
            m.learn_many(X, yy)
    else:
        def call(m):
            m.process_many(X, keys=keys)
    cls().learn_many(X[:100], None if yy is None else yy[:100],
                     keys=None if keys is None else keys[:100])             # compile outside
    fractions, copy_times = [], []

    def setup():
        t = time.perf_counter()
        _copy_rows(X, dst)
        copy_times.append(time.perf_counter() - t)
        return (cls(),), {}

    def timed(m):
        t = time.perf_counter()
        call(m)
        elapsed = time.perf_counter() - t
        req = _required_bytes(m, X, yy, keys, want_scores=what != "logistic")
        fractions.append((req / elapsed) / (2 * X.nbytes / copy_times[-1]))
        RESULTS.setdefault(("bandwidth-bytes", what), []).append(req / elapsed)
    benchmark.pedantic(timed, setup=setup, rounds=5 if keys is None else 3, iterations=1)
    frac = float(np.median(fractions))
    RESULTS[("bandwidth", what)] = float(np.median(RESULTS[("bandwidth-bytes", what)]))
    RESULTS[("fraction", what)] = frac
    RESULTS[("copy-in-run", what)] = 2 * X.nbytes / float(np.median(copy_times))
    benchmark.extra_info["bytes_per_s"] = RESULTS[("bandwidth", what)]
    benchmark.extra_info["fraction_of_copy_bandwidth"] = frac


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Print the ratios of this run once the module's benchmarks are done (use -s)."""
    yield
    lines = []
    for group in ("logistic-d16", "logistic-d784", "mean-d16"):
        p = RESULTS.get((group, "pygad"))
        for peer in ("river", "numpy"):
            if p and (group, peer) in RESULTS:
                lines.append(f"{group}: pygad {p:,.0f}/s vs {peer} {RESULTS[(group, peer)]:,.0f}/s"
                             f" = {p / RESULTS[(group, peer)]:,.0f}x")
    for k in ("1000 keys", "1000000 keys"):
        if ("keyed-d16", k) in RESULTS:
            lines.append(f"keyed d=16, {k}: {RESULTS[('keyed-d16', k)]:,.0f} samples/s")
    for w in ("logistic", "mean", "mean-keyed-1k"):
        if ("fraction", w) in RESULTS:
            b, cp = RESULTS[("bandwidth", w)], RESULTS[("copy-in-run", w)]
            lines.append(f"d=784 {w}: {b / 1e9:.1f} GB/s required bytes = "
                         f"{RESULTS[('fraction', w)]:.2f} of copy bandwidth ({cp / 1e9:.1f} GB/s, "
                         "interleaved)")
    if lines:
        print("\n\npygad.stream ratios (this run):\n" + "\n".join(lines))
