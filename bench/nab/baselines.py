"""Simple causal baselines for the NAB harness.

Every detector is ``fn(values, timestamps) -> scores``: a float64 array as long as ``values``
in which the score of row ``t`` depends only on rows ``<= t`` and is computed before row ``t``
is learned (prequential). Higher means more anomalous.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

__all__ = [
    "PUBLISHED_DETECTORS",
    "ewm_zscore",
    "published",
    "river_gaussian",
    "river_hst",
    "rolling_zscore",
]

PUBLISHED_DETECTORS = (
    "ARTime",
    "numenta",
    "contextOSE",
    "knncad",
    "randomCutForest",
    "windowedGaussian",
    "null",
)

_STD_FLOOR = 1e-9


def rolling_zscore(values, timestamps=None, window: int = 100) -> np.ndarray:
    """``|x_t - mean| / std`` with mean and std over the previous ``window`` rows.

    Until ``window`` rows have been seen the statistics use all previous rows; rows with fewer
    than two predecessors score 0.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    out = np.zeros(n, dtype=np.float64)
    if n < 3:
        return out
    # warm-up rows (t < window): expanding statistics of x[:t], shifted for precision
    t_warm = min(window, n)
    xc = x[:t_warm] - x[0]
    c1 = np.cumsum(xc)
    c2 = np.cumsum(xc * xc)
    for t in range(2, t_warm):
        m = c1[t - 1] / t
        var = max(c2[t - 1] / t - m * m, 0.0)
        out[t] = abs(xc[t] - m) / max(np.sqrt(var), _STD_FLOOR)
    if n > window:
        # full windows: rows t >= window use x[t - window : t]
        win = np.lib.stride_tricks.sliding_window_view(x[:-1], window)[: n - window]
        mean = win.mean(axis=1)
        std = win.std(axis=1)
        out[window:] = np.abs(x[window:] - mean) / np.maximum(std, _STD_FLOOR)
    return out


def ewm_zscore(values, timestamps=None, alpha: float = 0.02) -> np.ndarray:
    """Exponentially weighted z-score; each row is scored against the state before it."""
    x = np.asarray(values, dtype=np.float64)
    out = np.zeros(x.size, dtype=np.float64)
    if x.size == 0:
        return out
    mean = float(x[0])
    var = 0.0
    for t in range(1, x.size):
        d = float(x[t]) - mean
        out[t] = abs(d) / max(var**0.5, _STD_FLOOR)
        mean += alpha * d
        var = (1.0 - alpha) * (var + alpha * d * d)
    return out


def river_gaussian(values, timestamps=None, window_size=None, grace_period: int = 100):
    """river's ``anomaly.GaussianScorer`` (a supervised detector: the value goes in ``y``)."""
    from river import anomaly

    det = anomaly.GaussianScorer(window_size=window_size, grace_period=grace_period)
    x = np.asarray(values, dtype=np.float64)
    out = np.empty(x.size, dtype=np.float64)
    for t, v in enumerate(x.tolist()):
        out[t] = det.score_one(None, v)
        det.learn_one(None, v)
    return out


def river_hst(values, timestamps=None, n_trees: int = 10, height: int = 8,
              window_size: int = 250, seed: int = 42):
    """river ``MinMaxScaler | HalfSpaceTrees`` on the single feature ``{"x": value}``."""
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=n_trees, height=height, window_size=window_size, seed=seed
    )
    x = np.asarray(values, dtype=np.float64)
    out = np.empty(x.size, dtype=np.float64)
    for t, v in enumerate(x.tolist()):
        row = {"x": v}
        out[t] = model.score_one(row)
        model.learn_one(row)
    return out


@cache
def _published_arrays(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: np.asarray(z[k], dtype=np.float64) for k in z.files}


def published(detector: str, data_root: str | Path | None = None):
    """Detector that replays NAB's published scores of ``detector`` (e.g. ``"ARTime"``).

    The returned function takes ``(values, timestamps, *, name, data_root=None)``: ``name`` is
    the series key and ``data_root`` the NAB folder (holding ``published_scores/``); the harness
    passes both. A ``data_root`` given here takes precedence.
    """
    bound_root = data_root

    def replay(values, timestamps=None, *, name: str, data_root=None) -> np.ndarray:
        root = bound_root if bound_root is not None else data_root
        if root is None:
            raise ValueError("published detectors need the NAB data folder (data_root)")
        path = Path(root) / "published_scores" / f"{detector}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"published scores missing: {path}")
        arrays = _published_arrays(str(path.resolve()))
        if name not in arrays:
            raise KeyError(f"{path} has no scores for series {name!r}")
        s = arrays[name]
        if s.shape[0] != len(values):
            raise ValueError(f"{path}[{name}]: {s.shape[0]} scores for {len(values)} rows")
        return s.copy()

    replay.__name__ = f"published_{detector}"
    return replay
