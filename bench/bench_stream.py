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
* one-event-d16 / logistic-one-d16 / keyed-one-d16 / micro-batch-d16: the single-event path
  (``process_one``, ``learn_one``, keyed with 1M keys) and small batches, per event / per row,
  against river's per-event API and an empty njit call (see the section at the end);
* bandwidth-d784: bytes a call must move (read X, y, keys once; write the scores; read and
  write the touched state rows once) per second, as a fraction of a plain single-thread copy
  of X (``2 * X.nbytes`` per copy time) timed alternately with the call in the same run.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import pygad.stream as ps
from pygad.stream._kernels import _copy_rows

QUICK = os.environ.get("PYGAD_BENCH_QUICK", "") not in ("", "0")  # bench/conftest.py: CI smoke sizes
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
        n = (20_000 if d == 16 else 2_000) if QUICK else (4_000_000 if d == 16 else 400_000)
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
        n = 20_000 if QUICK else 4_000_000
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
    n = 20_000 if QUICK else 2_000_000
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
    d, n = 16, (20_000 if QUICK else 2_000_000)
    n_keys = min(n_keys, n)
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
    d, n = 784, (4_000 if QUICK else 400_000)
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


# ---------------------------------------------------------------- single events (d = 16)
# Per-event cost of the one-event path against river's per-event API and the floor of any
# njit call, side by side in one run. Rows are pre-made (the rows of a C-contiguous float32
# array, or dicts for river), every estimator is warmed (compilation outside the timing), and
# each round times a loop of ONE_N events; ``per_event_us`` in extra_info is median / events.
ONE_D = 16
ONE_N = 2_000 if QUICK else 20_000
ONE_N_HST = 400 if QUICK else 4_000          # river HalfSpaceTrees is ~100x slower per event
ONE_TARGETS = {            # reported next to the measured ratios, never asserted
    ("one-event-d16", "river-lr"): ("process_one vs river LR learn_one", ">= 5x"),
    ("one-event-d16", "river-hst"): ("process_one vs river HST score+learn", ">= 20x"),
    ("logistic-one-d16", "river"): ("Logistic.learn_one vs river LR learn_one", ">= 3x"),
}


def _one_rows(n, d=ONE_D, uniform=False):
    X = RNG.random((n, d), dtype=np.float32) if uniform else \
        RNG.standard_normal((n, d), dtype=np.float32)
    return X, [X[i] for i in range(n)]


def _record_per_event(benchmark, group, impl, n, unit="per_event_us"):
    """``_record`` plus the per-event (per-row) time and, on the pygad entry, the speed ratio
    to every entry of the group recorded before it (``ratio_vs_<impl>``, > 1: pygad faster)."""
    _record(benchmark, group, impl, n)
    us = benchmark.stats.stats.median / n * 1e6
    benchmark.extra_info[unit] = us
    RESULTS.setdefault(("per-event", group), {})[impl] = us
    if benchmark.extra_info.get("impl") == "pygad":
        for other, t in RESULTS[("per-event", group)].items():
            if other != impl:
                benchmark.extra_info[f"ratio_vs_{other}"] = t / us


def _numba_floor():
    import numba

    @numba.njit(nogil=False)
    def floor(kind, x, yv, has_y, V, SC, P, slot, learn, mode, scores, y1):
        """Nothing but the call: same arguments as pygad.stream._kernels._one, and a constant
        result of the same type (a (float, float, int) tuple to box)."""
        return 0.0, 0.5, 0
    return floor


@pytest.mark.parametrize("impl", ["njit-floor-dispatch", "njit-floor-entry", "river-lr",
                                  "river-hst", "pygad"])
def test_one_event_d16(benchmark, impl):
    """One event at a time: ClippedSGDMean.process_one vs river LogisticRegression.learn_one
    (dict rows) vs river HalfSpaceTrees score_one + learn_one vs an empty njit call with
    _one's arguments, through its compiled entry point and through the dispatcher."""
    group = benchmark.group = "one-event-d16"
    benchmark.extra_info["impl"] = impl
    n = ONE_N_HST if impl == "river-hst" else ONE_N
    X, rows = _one_rows(n, uniform=impl == "river-hst")
    if impl.startswith("river"):
        if impl == "river-lr":
            river_lm = pytest.importorskip("river.linear_model")
            model = river_lm.LogisticRegression()
            drows = [dict(enumerate(r.tolist())) for r in X]
            yb = [bool(v) for v in (X[:, 0] > 0)]

            def run():
                learn = model.learn_one
                for xi, yi in zip(drows, yb):
                    learn(xi, yi)
        else:
            anomaly = pytest.importorskip("river.anomaly")
            model = anomaly.HalfSpaceTrees(seed=0)
            drows = [dict(enumerate(r.tolist())) for r in X]
            for xi in drows[:300]:                           # past its first window
                model.score_one(xi)
                model.learn_one(xi)

            def run():
                score, learn = model.score_one, model.learn_one
                for xi in drows:
                    score(xi)
                    learn(xi)
        run()                                                # warm
        benchmark.pedantic(run, rounds=3, iterations=1)
    elif impl == "pygad":
        m = ps.ClippedSGDMean()
        m.process_many(X[:100])
        m.process_one(rows[0])                               # compile + entry point cached

        def run():
            po = m.process_one
            for x in rows:
                po(x)
        benchmark.pedantic(run, rounds=5, iterations=1)
    else:
        m = ps.ClippedSGDMean()
        m.process_many(X[:100])
        fn = _numba_floor()
        V, SC, P, s1, y1 = m._V, m._SC, m._P, np.empty(1), np.empty(1, np.float32)
        fn(0, rows[0], 0.0, False, V, SC, P, 0, True, 0, s1, y1)          # compile
        call = fn if impl == "njit-floor-dispatch" else \
            fn.overloads[fn.signatures[0]].entry_point

        def run():
            for x in rows:
                call(0, x, 0.0, False, V, SC, P, 0, True, 0, s1, y1)
        benchmark.pedantic(run, rounds=5, iterations=1)
    _record_per_event(benchmark, group, impl, n)
    if impl == "pygad":
        per = RESULTS[("per-event", group)]
        if "njit-floor-entry" in per:
            benchmark.extra_info["overhead_over_floor_us"] = per["pygad"] - per["njit-floor-entry"]


@pytest.mark.parametrize("impl", ["river", "pygad"])
def test_logistic_one_d16(benchmark, impl):
    """ClippedSGDLogistic.learn_one(x, y) vs river LogisticRegression.learn_one, one event at
    a time."""
    group = benchmark.group = "logistic-one-d16"
    benchmark.extra_info["impl"] = impl
    X, rows = _one_rows(ONE_N)
    w = RNG.standard_normal(ONE_D).astype(np.float32)
    y = (X @ w > 0).tolist()
    if impl == "river":
        river_lm = pytest.importorskip("river.linear_model")
        model = river_lm.LogisticRegression()
        drows = [dict(enumerate(r.tolist())) for r in X]

        def run():
            learn = model.learn_one
            for xi, yi in zip(drows, y):
                learn(xi, yi)
        run()
        benchmark.pedantic(run, rounds=3, iterations=1)
    else:
        yf = [float(v) for v in y]
        m = ps.ClippedSGDLogistic()
        m.learn_many(X[:100], np.asarray(yf[:100]))
        m.learn_one(rows[0], yf[0])

        def run():
            lo = m.learn_one
            for x, yi in zip(rows, yf):
                lo(x, yi)
        benchmark.pedantic(run, rounds=5, iterations=1)
    _record_per_event(benchmark, group, impl, ONE_N)


@pytest.mark.parametrize("impl", ["keyed-1M", "pygad"])
def test_keyed_one_d16(benchmark, impl):
    """ClippedSGDMean.process_one(x, key=k) with 1,000,000 live int keys (random keys, so the
    state rows come from memory) vs un-keyed process_one ("pygad")."""
    group = benchmark.group = "keyed-one-d16"
    benchmark.extra_info["impl"] = impl
    X, rows = _one_rows(ONE_N)
    m = ps.ClippedSGDMean()
    m.process_many(X[:100])
    if impl == "keyed-1M":
        n_keys = 20_000 if QUICK else 1_000_000
        m.process_many(RNG.standard_normal((n_keys, ONE_D), dtype=np.float32),
                       keys=np.arange(n_keys))
        keys = RNG.integers(0, n_keys, ONE_N).tolist()
        m.process_one(rows[0], key=keys[0])

        def run():
            po = m.process_one
            for x, k in zip(rows, keys):
                po(x, key=k)
        benchmark.extra_info["n_keys"] = m.n_keys_
    else:
        m.process_one(rows[0])

        def run():
            po = m.process_one
            for x in rows:
                po(x)
    benchmark.pedantic(run, rounds=5, iterations=1)
    _record_per_event(benchmark, group, impl, ONE_N)
    per = RESULTS[("per-event", group)]
    if impl == "pygad" and "keyed-1M" in per:
        benchmark.extra_info["keyed_1M_over_unkeyed"] = per["keyed-1M"] / per["pygad"]


MICRO_ROWS = 4_096 if QUICK else 65_536        # rows per round of the micro-batch entries
MICRO_LARGE = 65_536 if QUICK else 1_000_000


@pytest.mark.parametrize("impl", ["pygad", "large-1M-keyed1k", "batch-1", "batch-8", "batch-64",
                                  "batch-1-keyed1k", "batch-8-keyed1k", "batch-64-keyed1k"])
def test_micro_batch_d16(benchmark, impl):
    """ClippedSGDMean.process_many on batches of 1, 8 and 64 rows (un-keyed, and keyed with
    1,000 keys) vs one batch of 1M rows ("pygad": un-keyed; "large-1M-keyed1k"): per-row cost
    (``per_row_us``; ``vs_large`` = per-row cost / that of the large batch of the same kind)."""
    group = benchmark.group = "micro-batch-d16"
    benchmark.extra_info["impl"] = impl
    keyed = "keyed" in impl
    large = impl in ("pygad", "large-1M-keyed1k")
    n = MICRO_LARGE if large else MICRO_ROWS
    X = RNG.standard_normal((n, ONE_D), dtype=np.float32)
    keys = RNG.integers(0, 1000, n) if keyed else None
    m = ps.ClippedSGDMean()
    m.process_many(X[:2000], keys=None if keys is None else np.arange(2000) % 1000)
    if large:
        m.process_many(X[:1000], keys=None if keys is None else keys[:1000])

        def run():
            m.process_many(X, keys=keys)
        benchmark.pedantic(run, rounds=5, iterations=1)
    else:
        b = int(impl.split("-")[1])
        batches = [X[i:i + b] for i in range(0, n, b)]                 # C-contiguous slices
        kb = [None] * len(batches) if keys is None else [keys[i:i + b] for i in range(0, n, b)]
        m.process_many(batches[0], keys=kb[0])

        def run():
            pm = m.process_many
            for xb, k in zip(batches, kb):
                pm(xb, keys=k)
        benchmark.pedantic(run, rounds=3, iterations=1)
    _record_per_event(benchmark, group, impl, n, unit="per_row_us")
    per = RESULTS[("per-event", group)]
    base = per.get("large-1M-keyed1k" if keyed else "pygad")
    if base:
        benchmark.extra_info["vs_large"] = per[impl] / base


@pytest.fixture(scope="module", autouse=True)
def summary_one_event():
    """Print the per-event / per-row table of the single-event groups and the target ratios
    (reported, not asserted) once the module's benchmarks are done (use -s)."""
    yield
    lines = []
    for group in ("one-event-d16", "logistic-one-d16", "keyed-one-d16", "micro-batch-d16"):
        per = RESULTS.get(("per-event", group))
        if not per:
            continue
        unit = "row" if group.startswith("micro") else "event"
        base = per.get("pygad")
        lines.append(f"[{group}]")
        for impl, us in per.items():
            r = f"  {us / base:8.2f}x the pygad entry" if base and impl != "pygad" else ""
            lines.append(f"  {impl:<22} {us:10.3f} us/{unit}{r}")
        for (g, peer), (what, target) in ONE_TARGETS.items():
            if g == group and base and peer in per:
                lines.append(f"  target {what}: {per[peer] / base:.1f}x (target {target})")
        if group == "keyed-one-d16" and base and "keyed-1M" in per:
            lines.append(f"  target keyed 1M / un-keyed: {per['keyed-1M'] / base:.2f} "
                         "(target <= 1.5)")
        if group == "micro-batch-d16" and base:
            for b in ("batch-64", "batch-64-keyed1k"):
                lb = per.get("large-1M-keyed1k" if "keyed" in b else "pygad")
                if b in per and lb:
                    lines.append(f"  target {b} per row / large batch: {per[b] / lb:.2f} "
                                 "(target <= 2)")
    if lines:
        print("\n\npygad.stream single events (this run):\n" + "\n".join(lines))
