"""Ranking metrics for anomaly scores (higher score = more anomalous), NumPy only.

* :func:`roc_auc`: area under the ROC curve; ties count one half (Mann-Whitney U).
* :func:`average_precision`: step-wise area under the precision-recall curve, tied scores
  forming one threshold (the scikit-learn definition).
* :func:`recall_at_k`: share of the anomalies among the ``k`` highest scores, with ``k`` the
  number of true anomalies in the evaluated set by default (then it equals precision@k).
* :func:`evaluate`: all three as a dict of fractions in [0, 1].
"""
from __future__ import annotations

import numpy as np


def _check(y, scores) -> tuple:
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"'y' and 'scores' must be 1-D, got shapes {list(y.shape)} and {list(s.shape)}")
    if y.shape != s.shape:
        raise ValueError(f"'y' ({y.shape[0]}) and 'scores' ({s.shape[0]}) must have the same length")
    if y.dtype == bool:
        y = y.astype(np.int8)
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise ValueError(f"'y' must hold labels 0 (normal) and 1 (anomaly) only; found {np.unique(y[bad])[:5].tolist()} "
                         "(drop unknown -1 labels before evaluating)")
    if not np.isfinite(s).all():
        raise ValueError("'scores' contains NaN or infinite values")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError(f"'y' must contain both anomalies and normal nodes to rank them; got {int(y.sum())} "
                         f"anomalies among {y.shape[0]}")
    return y, s


def _rankdata(s: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    new = np.r_[True, ss[1:] != ss[:-1]]
    grp = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], ss.shape[0]]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1..ends
    ranks = np.empty_like(s)
    ranks[order] = avg[grp]
    return ranks


def roc_auc(y, scores) -> float:
    """Area under the ROC curve of ``scores`` for binary labels ``y`` (1 = anomaly)."""
    y, s = _check(y, scores)
    r = _rankdata(s)
    n1 = int(y.sum())
    n0 = y.shape[0] - n1
    return float((r[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def average_precision(y, scores) -> float:
    """Average precision: sum over thresholds of (recall step) x precision, ties as one threshold."""
    y, s = _check(y, scores)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    last = np.r_[ss[1:] != ss[:-1], True]   # last position of each tied group
    tp = np.cumsum(yy)[last]
    fp = (np.arange(1, yy.shape[0] + 1))[last] - tp
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    dr = np.diff(np.r_[0.0, recall])
    return float(np.sum(dr * precision))


def recall_at_k(y, scores, k: int | None = None) -> float:
    """Fraction of the anomalies found among the ``k`` highest-scored items.

    ``k`` defaults to the number of true anomalies in ``y`` (so the value is also precision@k).
    Ties at the cut-off are broken by position (stable), not in the detector's favour.
    """
    y, s = _check(y, scores)
    n1 = int(y.sum())
    k = n1 if k is None else int(k)
    if not 1 <= k <= y.shape[0]:
        raise ValueError(f"'k' must be in [1, {y.shape[0]}], got {k}")
    top = np.argsort(-s, kind="mergesort")[:k]
    return float(y[top].sum() / n1)


def evaluate(y, scores) -> dict:
    """``{"auc", "ap", "rec_at_k"}`` of ``scores`` against binary labels ``y`` (fractions in [0, 1])."""
    return {"auc": roc_auc(y, scores), "ap": average_precision(y, scores), "rec_at_k": recall_at_k(y, scores)}


__all__ = ["roc_auc", "average_precision", "recall_at_k", "evaluate"]
