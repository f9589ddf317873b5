"""Self-adjusting anomaly thresholds: a streaming quantile plus a confidence margin."""
from __future__ import annotations

import os

import numpy as np

from ..errors import InvalidArchiveError
from . import _layout as L
from . import state as _state

__all__ = ["AdaptiveThreshold"]


class AdaptiveThreshold:
    """Turn a stream of anomaly scores into 0/1 flags with a threshold that adapts to drift.

    The threshold is ``q + margin * dev`` where ``q`` is a streaming ``quantile`` of the scores
    (stochastic-approximation quantile, step ``lr * dev``) and ``dev`` a running mean absolute
    deviation of the scores from their streaming median. Steps are proportional to the score
    spread, so the threshold needs no scale, and constant (``lr``), so it re-adapts after a
    shift in the score distribution within about ``1 / lr`` samples. No flag is raised during
    the first ``warmup`` scores. NaN scores are ignored.

    Args:
        quantile: the streaming quantile the margin is added to (0 < quantile < 1).
        margin: confidence margin in units of the running absolute deviation.
        lr: adaptation rate of the quantile, median and deviation.
        warmup: scores to see before any flag is raised.

    Single-threshold use: ``process_many(scores)`` flags each score against the threshold in
    effect *before* it, then learns it (prequential); ``predict_one``/``predict_many`` are
    pure. Stream estimators hold one such threshold per key and expose it through their
    ``predict_one``/``predict_many``.
    """

    def __init__(self, quantile: float = 0.95, margin: float = 2.0, lr: float = 0.02,
                 warmup: int = 50):
        self.quantile = quantile
        self.margin = margin
        self.lr = lr
        self.warmup = warmup

    # -- parameters shared with the estimators
    def get_params(self) -> dict:
        """The constructor parameters."""
        return {"quantile": float(self.quantile), "margin": float(self.margin),
                "lr": float(self.lr), "warmup": int(self.warmup)}

    def _check(self):
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.margin < 0 or self.lr <= 0 or self.lr > 1 or self.warmup < 0:
            raise ValueError("margin must be >= 0, lr in (0, 1], warmup >= 0")

    def _fill(self, P: np.ndarray) -> None:
        self._check()
        P[L.P_TH_QUANTILE] = self.quantile
        P[L.P_TH_MARGIN] = self.margin
        P[L.P_TH_LR] = self.lr
        P[L.P_TH_WARMUP] = self.warmup

    def _ensure(self):
        if not hasattr(self, "_sc"):
            self._P = np.zeros(L.N_PARAMS)
            self._fill(self._P)
            self._sc = np.zeros((1, L.N_SCALARS))

    # -- streaming API
    @property
    def threshold_(self) -> float:
        """The current threshold (``inf`` while warming up)."""
        self._ensure()
        sc = self._sc[0]
        if sc[L.TH_N] < self._P[L.P_TH_WARMUP] or sc[L.TH_N] == 0:
            return float("inf")
        return float(sc[L.TH_HI] + self._P[L.P_TH_MARGIN] * sc[L.TH_DEV])

    @property
    def n_seen_(self) -> int:
        """The number of scores learned."""
        self._ensure()
        return int(self._sc[0, L.TH_N])

    def learn_one(self, score: float) -> None:
        """Learn one score."""
        self.process_many(np.array([score], np.float64))

    def predict_one(self, score: float) -> int:
        """Flag (0/1) of one score against the current threshold."""
        return int(float(score) > self.threshold_)

    def predict_many(self, scores) -> np.ndarray:
        """Flags (0/1) of the scores against the current threshold (pure)."""
        s = np.asarray(scores, np.float64)
        return (s > self.threshold_).astype(np.uint8)

    def learn_many(self, scores) -> None:
        """Learn the scores in order."""
        self.process_many(scores)

    def process_many(self, scores, return_thresholds: bool = False):
        """Flag each score against the threshold before it, then learn it.

        Returns the flags (uint8), and the thresholds in effect when ``return_thresholds``.
        """
        from ._kernels import _threshold_run
        self._ensure()
        s = np.ascontiguousarray(scores, np.float64).reshape(-1)
        flags = np.empty(s.shape[0], np.uint8)
        thr = np.empty(s.shape[0] if return_thresholds else 0, np.float64)
        _threshold_run(s, self._sc, self._P, flags, thr)
        return (flags, thr) if return_thresholds else flags

    # -- state
    def state_dict(self) -> dict:
        """The state as a dict of arrays (format tag, parameters, running statistics)."""
        self._ensure()
        return _state.pack(type(self).__name__, self.get_params(), {"scalars": self._sc.copy()})

    def load_state_dict(self, state: dict) -> "AdaptiveThreshold":
        """Restore a state written by :meth:`state_dict`; every field is validated first.

        Raises:
            pygad.InvalidArchiveError: wrong class, unknown or bad parameters, malformed scalars.
        """
        name, params, arrays = _state.unpack(state)
        if name != type(self).__name__:
            raise InvalidArchiveError(f"archive holds a {name}, not an {type(self).__name__}")
        own = {"quantile", "margin", "lr", "warmup"}   # the __init__ parameters
        unknown = sorted(set(params) - own)
        if unknown:   # only the threshold's own parameters: an archive never sets anything else
            raise InvalidArchiveError(f"corrupt archive: unknown AdaptiveThreshold parameters {unknown}")
        extra = sorted(set(arrays) - {"scalars"})
        if extra:
            raise InvalidArchiveError(f"corrupt archive: unknown arrays {extra}")
        for k, v in params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidArchiveError(f"corrupt archive: parameter {k!r} must be a number, got {v!r}")
        probe = AdaptiveThreshold(**params)   # missing parameters take their defaults
        try:
            probe._check()
        except ValueError as exc:
            raise InvalidArchiveError(f"corrupt archive: bad parameters ({exc})") from None
        scalars = arrays.get("scalars")
        if scalars is None or scalars.dtype.kind != "f" or scalars.ndim not in (1, 2) \
                or scalars.size not in (L.N_SCALARS, L.N_SCALARS_V1) or not np.isfinite(scalars).all():
            raise InvalidArchiveError(f"corrupt archive: 'scalars' must hold {L.N_SCALARS} finite numbers")
        for k in own:
            setattr(self, k, getattr(probe, k))
        self._P = np.zeros(L.N_PARAMS)
        self._fill(self._P)
        self._sc = np.zeros((1, L.N_SCALARS))
        self._sc[0, :scalars.size] = scalars.reshape(-1)
        return self

    def to_bytes(self) -> bytes:
        """The state as ``.npz`` bytes."""
        return _state.to_bytes(self.state_dict())

    @classmethod
    def from_bytes(cls, b: bytes) -> "AdaptiveThreshold":
        """A threshold restored from :meth:`to_bytes` output."""
        return cls().load_state_dict(_state.from_bytes(b))

    def save(self, path) -> None:
        """Save the state to ``path`` (``.npz``, written atomically)."""
        _state.save_atomic(path, self.state_dict())

    @classmethod
    def load(cls, path) -> "AdaptiveThreshold":
        """A threshold restored from a file written by :meth:`save`."""
        return _state.load_into(cls(), _state.load_file(path), os.fspath(path))

    def __getstate__(self):
        return self.state_dict()

    def __setstate__(self, state):
        self.load_state_dict(state)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"AdaptiveThreshold({args})"
