"""Scoring for the Numenta Anomaly Benchmark (NAB) corpus, in plain NumPy.

This module is self-contained (no pygad import) so it can be tested and reused on its own.

What is here
------------
* :func:`load_corpus` reads ``data/<category>/<series>.csv`` and
  ``labels/combined_windows.json`` into :class:`Series` records (windows as inclusive row
  ranges, probation length per series).
* :func:`nab_score` is the NAB "standard" application-profile score, reimplemented from the
  published rules: one detection threshold for the whole corpus, chosen by an exact sweep over
  every distinct score value (or fixed by the caller), early detections inside a window are
  worth more, false alarms cost less the closer they follow a window, a missed window costs
  ``A_fn``. The result is normalised so that detecting nothing scores 0 and detecting every
  window at its first row with no false alarm scores 100.
* :func:`point_auc` is a threshold-free per-point ROC AUC (window rows vs other rows).
* :func:`event_recall_at_budget` fixes a false-alarm budget per series and reports how many
  windows are caught and how late.

Conventions shared by all metrics: the first ``probation`` rows of a series are never scored;
scores are used as float64 and NaN is treated as ``-inf`` (never a detection); ``+inf`` is
mapped to the largest finite float so that ``threshold=inf`` means "detect nothing".
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "STANDARD",
    "NabResult",
    "Profile",
    "Series",
    "event_recall_at_budget",
    "load_corpus",
    "nab_score",
    "nab_score_at",
    "point_auc",
    "probation_length",
    "row_weights",
    "scaled_sigmoid",
]

PROBATION_FRACTION = 0.15
PROBATION_CAP = 750


# --------------------------------------------------------------------------------------------
# corpus
# --------------------------------------------------------------------------------------------
@dataclass
class Series:
    """One NAB series.

    ``windows`` holds ``(start_idx, end_idx)`` inclusive row indices; ``probation`` is the
    number of leading rows that are not scored.
    """

    name: str
    category: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)
    probation: int = 0

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def in_window_mask(self) -> np.ndarray:
        """Boolean mask of rows that lie inside any window."""
        mask = np.zeros(len(self), dtype=bool)
        for a, b in self.windows:
            mask[a : b + 1] = True
        return mask


def probation_length(n: int) -> int:
    """NAB's probationary period: 15% of the series, at most 750 rows."""
    return int(min(math.floor(PROBATION_FRACTION * n), PROBATION_CAP))


def _parse_timestamps(raw: Sequence[str]) -> np.ndarray:
    # NAB stamps look like "2014-04-10 07:15:00" or "2014-04-10 07:15:00.000000"; numpy's
    # parser wants a "T" between date and time.
    return np.array([s.strip().replace(" ", "T") for s in raw], dtype="datetime64[ns]")


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    stamps: list[str] = []
    vals: list[float] = []
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        if header[:2] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected header 'timestamp,value', got {header}")
        for line in fh:
            line = line.strip()
            if not line:
                continue
            ts, val = line.split(",")[:2]
            stamps.append(ts)
            vals.append(float(val))
    return _parse_timestamps(stamps), np.asarray(vals, dtype=np.float64)


def load_corpus(root: str | Path, names: Sequence[str] | None = None) -> list[Series]:
    """Load the NAB corpus under ``root`` (holding ``data/`` and ``labels/``).

    ``names`` restricts loading to those series (keys like ``"realTraffic/speed_7578.csv"``);
    by default every series listed in ``labels/combined_windows.json`` is loaded, sorted by name.
    Windows are mapped to rows by timestamp, both ends inclusive.
    """
    root = Path(root)
    labels_path = root / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise FileNotFoundError(
            f"NAB labels not found at {labels_path}; point --data at the folder holding "
            "data/ and labels/ (e.g. ../shared/data/nab)"
        )
    with open(labels_path, encoding="utf-8") as fh:
        labels: dict[str, list[list[str]]] = json.load(fh)
    keys = sorted(labels) if names is None else list(names)
    corpus: list[Series] = []
    for key in keys:
        if key not in labels:
            raise KeyError(f"series {key!r} has no entry in {labels_path}")
        csv_path = root / "data" / key
        if not csv_path.is_file():
            raise FileNotFoundError(f"NAB series file missing: {csv_path}")
        ts, vals = _read_csv(csv_path)
        windows: list[tuple[int, int]] = []
        for start, end in labels[key]:
            lo, hi = _parse_timestamps([start, end])
            idx = np.flatnonzero((ts >= lo) & (ts <= hi))
            if idx.size == 0:
                raise ValueError(f"{key}: window [{start}, {end}] covers no rows")
            windows.append((int(idx[0]), int(idx[-1])))
        windows.sort()
        corpus.append(
            Series(
                name=key,
                category=key.split("/", 1)[0],
                timestamps=ts,
                values=vals,
                windows=windows,
                probation=probation_length(len(vals)),
            )
        )
    return corpus


# --------------------------------------------------------------------------------------------
# NAB score
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Application-profile weights: reward per true positive, cost per false positive and
    per missed window."""

    a_tp: float = 1.0
    a_fp: float = 0.11
    a_fn: float = 1.0


STANDARD = Profile()


def scaled_sigmoid(y):
    """``2 / (1 + exp(5 y)) - 1`` for ``y <= 3``, else ``-1`` (vectorised)."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0
    out = np.where(y > 3.0, -1.0, out)
    return out if out.ndim else float(out)


_SIG_MINUS_ONE = scaled_sigmoid(-1.0)


def row_weights(series: Series, profile: Profile = STANDARD) -> tuple[np.ndarray, np.ndarray]:
    """Per-row value of a detection, for every row of ``series``.

    Returns ``(value, window_id)``: for a row inside window ``k`` (``window_id == k``) the value
    is the weighted true-positive reward ``A_tp * sig(y) / sig(-1)`` with ``y = -(R - i + 1) / W``;
    for a row outside every window (``window_id == -1``) it is the (negative) false-positive
    cost: ``-A_fp`` before the first window, ``A_fp * sig(|R - i| / (W - 1))`` after a window
    with right edge ``R`` and width ``W``. Probation rows are included here (the scorers drop
    them).
    """
    n = len(series)
    value = np.full(n, -profile.a_fp, dtype=np.float64)
    window_id = np.full(n, -1, dtype=np.int64)
    idx = np.arange(n, dtype=np.float64)
    for k, (a, b) in enumerate(series.windows):
        width = float(b - a + 1)
        rows = slice(a, b + 1)
        y = -(b - idx[rows] + 1.0) / width
        value[rows] = profile.a_tp * scaled_sigmoid(y) / _SIG_MINUS_ONE
        window_id[rows] = k
        # rows after this window, up to the next one, are weighted by distance from it
        nxt = series.windows[k + 1][0] if k + 1 < len(series.windows) else n
        after = slice(b + 1, nxt)
        if width > 1:
            y_after = np.abs(b - idx[after]) / (width - 1.0)
        else:  # a one-row window: W - 1 = 0, every later row is "far" from it
            y_after = np.full(nxt - b - 1, np.inf)
        value[after] = profile.a_fp * scaled_sigmoid(y_after)
    return value, window_id


def _clean_scores(scores, n: int, name: str = "") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != n:
        raise ValueError(f"{name}: {s.shape[0]} scores for {n} rows")
    s = np.where(np.isnan(s), -np.inf, s)
    big = np.finfo(np.float64).max
    return np.where(s == np.inf, big, s)


@dataclass
class NabResult:
    """Outcome of :func:`nab_score`.

    ``score`` is normalised (0 = detect nothing, 100 = perfect); ``raw`` is the summed profile
    score, ``null`` and ``perfect`` the raw scores of those two references. ``tp`` counts
    detected windows, ``fn`` missed ones and ``fp`` detections outside windows (after
    probation). ``threshold`` is ``inf`` when detecting nothing is best.
    """

    score: float
    raw: float
    threshold: float
    tp: int
    fp: int
    fn: int
    null: float
    perfect: float
    per_series: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "score": self.score,
            "raw": self.raw,
            "threshold": self.threshold,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "null": self.null,
            "perfect": self.perfect,
        }


def _normalise(raw: float, null: float, perfect: float) -> float:
    if perfect == null:  # corpus without windows: nothing to normalise against
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def _prepare(corpus: Sequence[Series], scores: Mapping[str, np.ndarray], profile: Profile):
    """Flatten the scored rows of every series: (score, value, global window id)."""
    all_s, all_v, all_w = [], [], []
    offset = 0
    for s in corpus:
        sc = _clean_scores(scores[s.name], len(s), s.name)
        value, wid = row_weights(s, profile)
        p = s.probation
        all_s.append(sc[p:])
        all_v.append(value[p:])
        all_w.append(np.where(wid[p:] >= 0, wid[p:] + offset, -1))
        offset += len(s.windows)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return cat(all_s, np.float64), cat(all_v, np.float64), cat(all_w, np.int64), offset


def nab_score_at(
    corpus: Sequence[Series],
    scores: Mapping[str, np.ndarray],
    threshold: float,
    profile: Profile = STANDARD,
) -> NabResult:
    """NAB score with a fixed threshold: a row is a detection when ``score >= threshold``."""
    raw_total = 0.0
    tp = fp = fn = 0
    per_series: dict[str, float] = {}
    n_windows = 0
    for s in corpus:
        sc = _clean_scores(scores[s.name], len(s), s.name)
        value, wid = row_weights(s, profile)
        p = s.probation
        det = np.zeros(len(s), dtype=bool)
        det[p:] = (sc[p:] >= threshold) & (sc[p:] > -np.inf)
        out = det & (wid < 0)
        raw = float(value[out].sum())
        fp += int(out.sum())
        for k in range(len(s.windows)):
            hits = np.flatnonzero(det & (wid == k))
            if hits.size:
                raw += float(value[hits[0]])  # the earliest detection is the one that counts
                tp += 1
            else:
                raw -= profile.a_fn
                fn += 1
        n_windows += len(s.windows)
        per_series[s.name] = raw
        raw_total += raw
    null = -profile.a_fn * n_windows
    perfect = profile.a_tp * n_windows
    return NabResult(
        score=_normalise(raw_total, null, perfect),
        raw=raw_total,
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        fn=fn,
        null=null,
        perfect=perfect,
        per_series=per_series,
    )


def _sweep(sc: np.ndarray, val: np.ndarray, wid: np.ndarray, n_windows: int, profile: Profile):
    """Corpus raw score for every distinct threshold, exactly, in O(N log N).

    Returns ``(thresholds, totals)``: ``thresholds[0] = inf`` (detect nothing) followed by the
    distinct finite scores in decreasing order, and the raw corpus score at each.
    """
    null = -profile.a_fn * n_windows
    keep = sc > -np.inf
    sc, val, wid = sc[keep], val[keep], wid[keep]
    if sc.size == 0:
        return np.array([np.inf]), np.array([null])
    order = np.argsort(-sc, kind="stable")
    sc, val, wid = sc[order], val[order], wid[order]

    # False positives just add their (negative) cost.
    delta = np.where(wid < 0, val, 0.0)

    # Windows: the window's contribution is the best (= earliest) detected value so far, or
    # -A_fn while undetected. Per window, a running max over rows in sweep order gives the
    # contribution after each row; its increments are the row's delta.
    in_win = np.flatnonzero(wid >= 0)
    if in_win.size:
        w = wid[in_win]
        grp = np.argsort(w, kind="stable")  # keeps sweep order within each window
        rows = in_win[grp]
        cuts = np.flatnonzero(np.diff(w[grp])) + 1
        for seg in np.split(rows, cuts):
            run = np.maximum.accumulate(np.maximum(val[seg], -profile.a_fn))
            delta[seg] = np.diff(run, prepend=-profile.a_fn)

    totals = null + np.cumsum(delta)
    # thresholds: evaluate at the end of each group of tied scores
    last_of_group = np.r_[sc[1:] != sc[:-1], True]
    return np.r_[np.inf, sc[last_of_group]], np.r_[null, totals[last_of_group]]


def nab_score(
    corpus: Sequence[Series],
    scores: Mapping[str, np.ndarray],
    profile: Profile = STANDARD,
    threshold: float | None = None,
) -> NabResult:
    """NAB score of one detector over the corpus.

    ``scores`` maps series names to per-row anomaly scores. With ``threshold=None`` the single
    corpus-wide threshold maximising the raw score is found by an exact sweep over all distinct
    score values (the highest such threshold on ties); otherwise that threshold is used.
    """
    if threshold is None:
        sc, val, wid, n_windows = _prepare(corpus, scores, profile)
        thresholds, totals = _sweep(sc, val, wid, n_windows, profile)
        best = int(np.argmax(totals))  # first maximum = highest threshold
        threshold = float(thresholds[best])
    return nab_score_at(corpus, scores, threshold, profile)


# --------------------------------------------------------------------------------------------
# threshold-free and budgeted metrics
# --------------------------------------------------------------------------------------------
def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(boundaries) - 1
    starts = np.flatnonzero(boundaries)
    ends = np.r_[starts[1:], xs.size]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1..end
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney ROC AUC, ties counted as one half."""
    n_pos, n_neg = pos.size, neg.size
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.r_[pos, neg])
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def point_auc(corpus: Sequence[Series], scores: Mapping[str, np.ndarray]) -> dict:
    """Per-point ROC AUC, averaged over the series that have windows.

    Positives are the post-probation rows inside windows, negatives the other post-probation
    rows. Returns ``{"mean": ..., "per_category": {cat: mean}, "per_series": {name: auc}}``.
    """
    per_series: dict[str, float] = {}
    by_cat: dict[str, list[float]] = {}
    for s in corpus:
        if not s.windows:
            continue
        sc = _clean_scores(scores[s.name], len(s), s.name)
        p = s.probation
        mask = s.in_window_mask()[p:]
        sc = sc[p:]
        a = _auc(sc[mask], sc[~mask])
        if math.isnan(a):
            continue
        per_series[s.name] = a
        by_cat.setdefault(s.category, []).append(a)
    vals = list(per_series.values())
    return {
        "mean": float(np.mean(vals)) if vals else float("nan"),
        "per_category": {c: float(np.mean(v)) for c, v in sorted(by_cat.items())},
        "per_series": per_series,
    }


def event_recall_at_budget(
    corpus: Sequence[Series], scores: Mapping[str, np.ndarray], budget: float = 0.01
) -> dict:
    """Window recall when each series may raise about ``budget`` false alarms per row.

    Per series the threshold is the ``1 - budget`` quantile (the ``"higher"`` order statistic,
    so at most ``budget`` of the rows lie strictly above it) of the post-probation rows outside
    windows. A window is detected when one of its post-probation rows scores strictly above
    the threshold; its delay is the number of rows from the window's first row to that
    detection. Returns ``{"recall", "median_delay", "detected", "windows", "delays"}``
    (``median_delay`` is NaN when nothing is detected).
    """
    if not 0.0 < budget < 1.0:
        raise ValueError("budget must lie in (0, 1)")
    detected = 0
    total = 0
    delays: list[int] = []
    for s in corpus:
        if not s.windows:
            continue
        sc = _clean_scores(scores[s.name], len(s), s.name)
        p = s.probation
        inwin = s.in_window_mask()
        neg = sc[p:][~inwin[p:]]
        thr = np.quantile(neg, 1.0 - budget, method="higher") if neg.size else -np.inf
        for a, b in s.windows:
            total += 1
            lo = max(a, p)
            if lo > b:
                continue
            hits = np.flatnonzero(sc[lo : b + 1] > thr)
            if hits.size:
                detected += 1
                delays.append(int(lo + hits[0] - a))
    return {
        "recall": detected / total if total else float("nan"),
        "median_delay": float(np.median(delays)) if delays else float("nan"),
        "detected": detected,
        "windows": total,
        "delays": delays,
    }
