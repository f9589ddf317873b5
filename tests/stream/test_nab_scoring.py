"""Tests of the NAB scorer in bench/nab/scoring.py on tiny hand-made corpora.

Expected values are worked out by hand from the NAB standard-profile rules (A_tp = 1,
A_fp = 0.11, A_fn = 1); none of this needs the shared NAB data.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

NAB_DIR = Path(__file__).resolve().parents[2] / "bench" / "nab"
if str(NAB_DIR) not in sys.path:
    sys.path.insert(0, str(NAB_DIR))

import scoring
from scoring import Series


def sig(y: float) -> float:
    return -1.0 if y > 3 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def make_series(n: int, windows, name: str = "cat/s.csv", probation: int | None = None) -> Series:
    ts = np.datetime64("2020-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    return Series(
        name=name,
        category=name.split("/")[0],
        timestamps=ts.astype("datetime64[ns]"),
        values=np.zeros(n),
        windows=list(windows),
        probation=scoring.probation_length(n) if probation is None else probation,
    )


def hits(n: int, rows, value: float = 1.0) -> np.ndarray:
    s = np.zeros(n)
    s[list(rows)] = value
    return s


# 20 rows -> probation floor(0.15 * 20) = 3 rows; one window over rows 10..14 (W = 5)
N = 20
WIN = (10, 14)


@pytest.fixture
def one_window():
    return [make_series(N, [WIN])]


def test_probation_length():
    assert scoring.probation_length(20) == 3
    assert scoring.probation_length(1000) == 150
    assert scoring.probation_length(4032) == 604
    assert scoring.probation_length(10_000) == 750  # capped


def test_scaled_sigmoid_values():
    assert scoring.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scoring.scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scoring.scaled_sigmoid(3.5) == -1.0
    assert scoring.scaled_sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1)


def test_first_row_of_window_scores_100(one_window):
    res = scoring.nab_score(one_window, {"cat/s.csv": hits(N, [10])})
    assert res.raw == pytest.approx(1.0)
    assert res.score == pytest.approx(100.0)
    assert (res.tp, res.fp, res.fn) == (1, 0, 0)
    assert res.threshold == 1.0
    assert (res.null, res.perfect) == (-1.0, 1.0)


def test_detecting_nothing_scores_0(one_window):
    scores = {"cat/s.csv": hits(N, [10])}
    res = scoring.nab_score(one_window, scores, threshold=2.0)  # above every score
    assert res.raw == pytest.approx(-1.0)
    assert res.score == pytest.approx(0.0)
    assert (res.tp, res.fp, res.fn) == (0, 0, 1)
    # NaN means "never a detection": the sweep can only detect nothing
    nan = {"cat/s.csv": np.full(N, np.nan)}
    res = scoring.nab_score(one_window, nan)
    assert res.score == pytest.approx(0.0)
    assert res.threshold == math.inf


def test_one_false_positive_before_any_window_costs_011(one_window):
    res = scoring.nab_score(one_window, {"cat/s.csv": hits(N, [5, 10])}, threshold=1.0)
    assert res.raw == pytest.approx(1.0 - 0.11)
    assert res.score == pytest.approx(100 * (0.89 + 1) / 2)
    assert (res.tp, res.fp, res.fn) == (1, 1, 0)
    # a series without windows: every detection is "before the first window"
    empty = [make_series(N, [])]
    res = scoring.nab_score(empty, {"cat/s.csv": hits(N, [7])}, threshold=1.0)
    assert res.raw == pytest.approx(-0.11)
    assert res.fp == 1


def test_detections_in_probation_are_ignored():
    series = [make_series(N, [WIN])]
    res = scoring.nab_score(series, {"cat/s.csv": hits(N, [0, 1, 2, 10])}, threshold=1.0)
    assert res.raw == pytest.approx(1.0)
    assert res.fp == 0


def test_only_first_detection_in_window_counts(one_window):
    # first detection at row 12: y = -(14 - 12 + 1) / 5 = -0.6
    expected = sig(-0.6) / sig(-1.0)
    for rows in ([12], [12, 13], [12, 13, 14]):
        res = scoring.nab_score(one_window, {"cat/s.csv": hits(N, rows)}, threshold=1.0)
        assert res.raw == pytest.approx(expected)
        assert (res.tp, res.fp, res.fn) == (1, 0, 0)
    # the last row of the window: y = -1/5
    res = scoring.nab_score(one_window, {"cat/s.csv": hits(N, [14])}, threshold=1.0)
    assert res.raw == pytest.approx(sig(-0.2) / sig(-1.0))


def test_false_positive_after_window_is_discounted(one_window):
    # row 15 is 1 row past the right edge 14 of a W = 5 window: cost 0.11 * sig(1 / 4)
    res = scoring.nab_score(one_window, {"cat/s.csv": hits(N, [10, 15])}, threshold=1.0)
    assert res.raw == pytest.approx(1.0 + 0.11 * sig(0.25))
    assert -0.11 < 0.11 * sig(0.25) < 0  # cheaper than a false alarm before the window
    # row 19 is 5 rows past: y = 5/4
    res = scoring.nab_score(one_window, {"cat/s.csv": hits(N, [10, 19])}, threshold=1.0)
    assert res.raw == pytest.approx(1.0 + 0.11 * sig(1.25))


def test_far_after_window_costs_full_fp():
    # W = 2 window at rows 4..5; row 10 is 5 rows past, y = 5 > 3 -> sig = -1
    series = [make_series(N, [(4, 5)])]
    res = scoring.nab_score(series, {"cat/s.csv": hits(N, [4, 10])}, threshold=1.0)
    assert res.raw == pytest.approx(1.0 - 0.11)


def test_ties_are_processed_as_a_group(one_window):
    # the window's first row and a false alarm share the top score: no threshold can take
    # one without the other, so the best is either nothing (-1) or both (1 - 0.11)
    for order in ([5, 10], [10, 5]):
        s = np.zeros(N)
        s[order] = 0.5
        res = scoring.nab_score(one_window, {"cat/s.csv": s})
        assert res.raw == pytest.approx(0.89)
        assert res.threshold == 0.5
        assert (res.tp, res.fp) == (1, 1)


def test_sweep_prefers_missing_the_window_over_many_false_alarms(one_window):
    s = np.zeros(N)
    s[3:10] = 1.0  # 7 false alarms before the window, tied with the window's first row
    s[10] = 1.0
    res = scoring.nab_score(one_window, {"cat/s.csv": s})
    # both -> 1 - 7 * 0.11 = 0.23 > -1: detecting is still better
    assert res.raw == pytest.approx(1 - 7 * 0.11)
    s[3:10] = 2.0  # now the false alarms come first at a higher threshold
    res = scoring.nab_score(one_window, {"cat/s.csv": s})
    assert res.raw == pytest.approx(1 - 7 * 0.11)
    assert res.threshold == 1.0


def naive_raw(series_list, scores, threshold):
    """Row-by-row reference scorer written straight from the rules."""
    total = 0.0
    for s in series_list:
        sc = np.nan_to_num(np.asarray(scores[s.name], float), nan=-np.inf)
        windows = sorted(s.windows)
        found = [None] * len(windows)
        prev = None  # (right edge, width) of the last window passed
        k = 0
        for i in range(len(s)):
            while k < len(windows) and i > windows[k][1]:
                prev = (windows[k][1], windows[k][1] - windows[k][0] + 1)
                k += 1
            inside = k < len(windows) and windows[k][0] <= i <= windows[k][1]
            if i < s.probation or not sc[i] >= threshold:
                continue
            if inside:
                a, b = windows[k]
                if found[k] is None:
                    found[k] = sig(-(b - i + 1) / (b - a + 1)) / sig(-1.0)
            elif prev is None:
                total -= 0.11
            else:
                r, w = prev
                total += 0.11 * sig(abs(r - i) / (w - 1) if w > 1 else math.inf)
        total += sum(-1.0 if f is None else f for f in found)
    return total


def random_corpus(rng, n_series=5):
    corpus, scores = [], {}
    for j in range(n_series):
        n = int(rng.integers(30, 80))
        windows = []
        start = int(rng.integers(2, 12))
        while start < n - 2 and len(windows) < 3:
            width = int(rng.integers(1, 8))
            end = min(start + width - 1, n - 1)
            windows.append((start, end))
            start = end + 1 + int(rng.integers(0, 15))
        s = make_series(n, windows, name=f"c{j % 2}/s{j}.csv")
        corpus.append(s)
        # coarse values so there are plenty of ties, plus a few NaNs
        sc = np.round(rng.random(n) * 12) / 12
        sc[rng.random(n) < 0.05] = np.nan
        scores[s.name] = sc
    return corpus, scores


@pytest.mark.parametrize("seed", range(8))
def test_sweep_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    corpus, scores = random_corpus(rng)
    res = scoring.nab_score(corpus, scores)
    values = np.concatenate([scores[s.name][s.probation:] for s in corpus])
    candidates = [math.inf] + sorted(set(values[~np.isnan(values)].tolist()))
    brute = {t: naive_raw(corpus, scores, t) for t in candidates}
    best = max(brute.values())
    assert res.raw == pytest.approx(best, abs=1e-9)
    assert brute[res.threshold] == pytest.approx(best, abs=1e-9)
    # the fixed-threshold scorer agrees with the reference at every threshold
    for t in candidates[:6]:
        assert scoring.nab_score_at(corpus, scores, t).raw == pytest.approx(brute[t], abs=1e-9)


def test_point_auc_by_hand():
    # probation 3; window rows 10..14 score 1, 2, 3, 4, 5; outside rows 3..9, 15..19
    s = make_series(N, [WIN])
    sc = np.zeros(N)
    sc[10:15] = [1, 2, 3, 4, 5]
    sc[3] = 3.0  # one negative ties with a positive, one beats three
    out = scoring.point_auc([s], {s.name: sc})
    # 12 negatives: 11 at 0, one at 3. positives 1,2: beat 11 each; 3: beats 11, ties 1;
    # 4, 5: beat 12 each -> (11 + 11 + 11.5 + 12 + 12) / (5 * 12)
    assert out["mean"] == pytest.approx((11 + 11 + 11.5 + 12 + 12) / 60)
    assert out["per_category"] == {"cat": pytest.approx(out["mean"])}
    # series without windows are left out
    out = scoring.point_auc([s, make_series(N, [], name="other/x.csv")],
                            {s.name: sc, "other/x.csv": np.zeros(N)})
    assert list(out["per_series"]) == [s.name]


def test_event_recall_at_budget_by_hand():
    n = 300  # probation 45
    s = make_series(n, [(100, 109), (200, 209)])
    rng = np.random.default_rng(0)
    sc = rng.random(n) * 0.5
    sc[100:110] = 0.0
    sc[200:210] = 0.0  # second window: silent, missed
    sc[104] = 10.0  # first window caught 4 rows in
    # one loud false alarm among the 235 scored rows outside windows stays within the 1%
    # budget, so it does not lift the threshold to 20
    sc[150] = 20.0
    out = scoring.event_recall_at_budget([s], {s.name: sc}, budget=0.01)
    assert out["windows"] == 2
    assert out["detected"] == 1
    assert out["recall"] == pytest.approx(0.5)
    assert out["delays"] == [4]
    assert out["median_delay"] == 4.0


def test_load_corpus_maps_windows_by_timestamp(tmp_path):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    rows = ["timestamp,value"] + [f"2020-01-01 00:{m:02d}:00,{m}" for m in range(40)]
    (tmp_path / "data" / "cat" / "s.csv").write_text("\n".join(rows) + "\n")
    labels = {"cat/s.csv": [["2020-01-01 00:10:00.000000", "2020-01-01 00:14:00.000000"]]}
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    (s,) = scoring.load_corpus(tmp_path)
    assert s.name == "cat/s.csv" and s.category == "cat"
    assert s.windows == [(10, 14)]  # both ends inclusive
    assert s.probation == 6
    assert s.values.dtype == np.float64 and s.values[39] == 39.0
    assert s.timestamps.dtype == np.dtype("datetime64[ns]")


def test_load_corpus_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="NAB labels not found"):
        scoring.load_corpus(tmp_path / "nope")


@pytest.mark.parametrize("name", ["rolling_zscore", "ewm_zscore"])
def test_numpy_baselines_are_causal(name):
    import baselines

    fn = getattr(baselines, name)
    rng = np.random.default_rng(3)
    x = rng.normal(size=300) + 50.0
    y = x.copy()
    y[200:] += 25.0  # changing the future must not change past scores
    a, b = fn(x, None), fn(y, None)
    assert a.dtype == np.float64 and a.shape == x.shape
    np.testing.assert_array_equal(a[:200], b[:200])
    assert b[200] > a[200]


def test_rolling_zscore_matches_definition():
    import baselines

    rng = np.random.default_rng(4)
    x = rng.normal(size=60) * 3.0 + 7.0
    got = baselines.rolling_zscore(x, None, window=10)
    for t in (2, 5, 10, 33, 59):
        past = x[max(0, t - 10) : t]
        assert got[t] == pytest.approx(abs(x[t] - past.mean()) / past.std())


def test_registry_register_and_context():
    import run

    seen = {}

    @run.register("test-only-detector")
    def det(values, timestamps, *, name):
        seen["name"] = name
        return np.asarray(values, dtype=np.float64)

    try:
        assert run.DETECTORS["test-only-detector"] is det
        with pytest.raises(ValueError, match="already registered"):
            run.register("test-only-detector", det)
        s = make_series(N, [WIN])
        out = run.call_detector(det, s, data_root=Path("."))
        assert seen["name"] == s.name and out.shape == (N,)
        assert run.select("published:*") == [f"published:{d}" for d in run.baselines.PUBLISHED_DETECTORS]
    finally:
        run.DETECTORS.pop("test-only-detector", None)
