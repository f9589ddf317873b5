"""Clipped-SGD stream estimators (Sankararaman & Narayanaswamy, NeurIPS 2023).

Each sample's gradient of a strongly convex loss is clipped, ``g * min(1, lambda / ||g||)``,
so that no single (corrupted) sample moves the model far, while the learning rate
``lr * T**-alpha`` (0 < alpha < 1; constant inside each epoch of the doubling trick
T = 1, 2, 4, ... when the horizon is unknown) stays large enough to follow drift. The clip
threshold ``lambda`` is ``clip_mult`` times a running ``clip_quantile`` of the gradient norms,
learned from the stream (no prior variance bound), unless ``clip`` is a number.

Thread safety (see the README's stream section): keyed calls (``keys=...``) from several Python threads
with *disjoint* key sets may run at the same time and give the same result as one serial
call; the kernels release the GIL. Scoring calls never write state. Un-keyed learning calls
(all writing the one un-keyed state) on one estimator must not overlap.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from ..errors import InvalidArchiveError

from . import _layout as L
from . import state as _state
from ._keys import IntKeyMap, ObjectKeyMap, make_keymap
from .threshold import AdaptiveThreshold

__all__ = ["ClippedSGDMean", "ClippedSGDLinear", "ClippedSGDLogistic", "ClippedSGDForecaster",
           "ClippedSGDSubspace"]

_MEAN, _LINEAR, _LOGISTIC, _FORECAST, _SUBSPACE = 0, 1, 2, 3, 4
_EMPTY = np.empty(0, np.float64)


_ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: keyed batches below this many rows run the serial kernels: a parallel launch costs more
#: than it saves there (measured on 2 cores, d = 16, 1,000 keys: 256 rows 58 us serial vs
#: 84 us parallel, 1,024 rows 175 vs 126 us)
SERIAL_BELOW = 512


def _finite_bound(X) -> float:
    """Largest |x| accepted without an overflow risk in the kernels' sums of squares."""
    big = 1e37 if X.dtype == np.float32 else 1e300
    return float(np.sqrt(big / (4.0 * max(1, X.shape[1]))))


def _kernels():
    from . import _kernels  # imported lazily: numba loads on first use, not on import
    return _kernels


class _ClippedSGDBase:
    _kind: int = -1
    _m: int = 1            # vector-state rows per key
    _needs_y: bool = True
    _reg_name: str = "l2"
    _extra_params: tuple = ()

    def _kernel_module(self):
        return _kernels()

    def __init__(self, lr=1.0, alpha=0.5, horizon=None, clip="auto", clip_mult=2.0,
                 clip_quantile=0.5, clip_lr=0.05, threshold=None, on_invalid="raise",
                 dtype="float32", proba_window=10, proba_history=1000):
        self.lr = lr
        self.alpha = alpha
        self.horizon = horizon
        self.clip = clip
        self.clip_mult = clip_mult
        self.clip_quantile = clip_quantile
        self.clip_lr = clip_lr
        self.threshold = threshold
        self.on_invalid = on_invalid
        self.dtype = dtype
        self.proba_window = proba_window
        self.proba_history = proba_history

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict:
        p = {k: getattr(self, k) for k in self._param_names()}
        if isinstance(p["threshold"], AdaptiveThreshold):
            p["threshold"] = p["threshold"].get_params()
        return p

    @classmethod
    def _param_names(cls):
        extra = list(cls._extra_params)
        return ["lr", "alpha", "horizon", "clip", "clip_mult", "clip_quantile", "clip_lr",
                "threshold", "on_invalid", "dtype", cls._reg_name, "proba_window",
                "proba_history"] + extra

    def _threshold_obj(self) -> AdaptiveThreshold:
        t = self.threshold
        if t is None:
            return AdaptiveThreshold()
        if isinstance(t, dict):
            return AdaptiveThreshold(**t)
        return t

    def _build_params(self) -> np.ndarray:
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not (0 < self.alpha < 1):
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.horizon is not None and not (self.horizon >= 1):
            raise ValueError(f"horizon must be None or >= 1, got {self.horizon}")
        if not (self.clip == "auto" or (isinstance(self.clip, (int, float)) and self.clip > 0)):
            raise ValueError(f'clip must be "auto" or a positive number, got {self.clip!r}')
        if not (0 < self.clip_quantile < 1) or not (0 < self.clip_lr < 1) or self.clip_mult <= 0:
            raise ValueError("clip_quantile and clip_lr must be in (0, 1), clip_mult > 0")
        if self.on_invalid not in ("raise", "skip"):
            raise ValueError(f'on_invalid must be "raise" or "skip", got {self.on_invalid!r}')
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        P = np.zeros(L.N_PARAMS)
        P[L.P_LR] = self.lr
        P[L.P_ALPHA] = self.alpha
        P[L.P_HORIZON] = 0.0 if self.horizon is None else float(self.horizon)
        P[L.P_CLIP] = 0.0 if self.clip == "auto" else float(self.clip)
        P[L.P_CLIP_MULT] = self.clip_mult
        P[L.P_CLIP_QUANTILE] = self.clip_quantile
        P[L.P_CLIP_LR] = self.clip_lr
        reg = getattr(self, self._reg_name)
        P[L.P_REG] = 0.0 if reg is None else float(reg)
        P[L.P_SLOW_RATE] = L.SLOW_RATE
        P[L.P_EPS_MAG] = L.EPS_MAG_ULPS * float(np.finfo(np.dtype(self.dtype)).eps)
        P[L.P_TINY_SQ] = 16.0 * float(np.finfo(np.dtype(self.dtype)).tiny)
        if not (self.proba_window >= 1 and self.proba_history >= self.proba_window):
            raise ValueError("proba_window must be >= 1 and proba_history >= proba_window, got "
                             f"{self.proba_window} and {self.proba_history}")
        P[L.P_LK_SHORT] = float(self.proba_window)
        P[L.P_LK_LONG] = float(self.proba_history)
        P[L.P_LK_WARMUP] = float(min(self.proba_history, 5 * self.proba_window))
        P[L.P_LK_SKIP] = 20.0         # a key's first scores are 0 or transients of a new state
        sclip = getattr(self, "score_clip", None)
        P[L.P_SCORE_CLIP] = np.inf if sclip is None else float(sclip)
        if not P[L.P_SCORE_CLIP] > 0:
            raise ValueError("score_clip must be > 0")
        self._threshold_obj()._fill(P)
        return P

    # ------------------------------------------------------------------ state
    def _lazy_init(self):
        if not hasattr(self, "_cond"):
            self._cond = threading.Condition()
            self._active = 0
            self._P = self._build_params()
            self._mode = 0 if self.on_invalid == "raise" else 1
            self._K1 = self._kernel_module()
            self._one_eps: dict = {}           # row dtype -> compiled single-event kernel
            # held by a single event from reading the state arrays to the end of its kernel,
            # and by growth while it replaces them (growth in another thread would otherwise
            # copy the arrays between the two, and the event would write a discarded copy)
            self._swap_lock = threading.Lock()
            self._s1 = np.empty(1)                 # scratch of the single-event kernel
            self._ytype = np.dtype(self.dtype).type
            self._y1buf = np.empty(1, np.float64 if self._kind == _FORECAST
                                   else np.dtype(self.dtype))
            self._V = None
            self._SC = None
            self._d = None
            self._keymap = None
            self._n_slots = 1
            self._free: list = []
            self._feature_names = None

    def _init_rows(self, SC: np.ndarray, rows) -> None:
        SC[rows] = 0.0
        SC[rows, L.EPOCH_END] = 1.0
        h = self._P[L.P_HORIZON]
        SC[rows, L.ETA] = self._P[L.P_LR] * (h ** -self._P[L.P_ALPHA] if h > 0 else 1.0)

    def _alloc(self, d: int, cap: int = 1) -> None:
        self._d = d
        self._V = np.zeros((cap, self._m, d), np.dtype(self.dtype))
        self._SC = np.zeros((cap, L.N_SCALARS))
        self._init_rows(self._SC, slice(0, cap))

    def _grow(self, need: int) -> None:
        cap = self._SC.shape[0]
        if need <= cap:
            return
        with self._swap_lock:               # no single event runs on the arrays being replaced
            self._grow_locked(need, cap)

    def _grow_locked(self, need: int, cap: int) -> None:
        new_cap = max(need, int(cap * 1.5) + 16)
        V = np.zeros((new_cap, self._m, self._d), self._V.dtype)
        V[:cap] = self._V
        SC = np.empty((new_cap, L.N_SCALARS))
        SC[:cap] = self._SC
        self._init_rows(SC, slice(cap, new_cap))
        self._V, self._SC = V, SC

    # ------------------------------------------------------------------ input checks
    def _as_X(self, X, single=False) -> np.ndarray:
        if isinstance(X, dict):
            if self._feature_names is None:
                self._feature_names = list(X.keys())
            X = [X[k] for k in self._feature_names]
        if isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64) and X.ndim == 2 \
                and X.flags.c_contiguous and not single:
            pass                                  # straight to the kernel, no copy
        else:
            X = np.asarray(X)
            if X.dtype not in (np.float32, np.float64):
                if X.dtype == object or X.dtype.kind not in "biuf":
                    raise TypeError(f"X must be numeric, got dtype {X.dtype}")
                X = X.astype(np.float32)
            if single:
                X = X.reshape(1, -1)
            elif X.ndim == 1:
                raise ValueError(f"X must be 2-D [n_samples, n_features], got shape {X.shape}; "
                                 "use the *_one methods for a single sample")
            X = np.ascontiguousarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D [n_samples, n_features], got shape {X.shape}")
        if self._d is not None and X.shape[1] != self._d:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                             f"was fitted with {self._d}")
        if X.shape[1] == 0:
            raise ValueError("X has 0 features")
        if self._kind in (_LINEAR, _LOGISTIC) and X.dtype != np.dtype(self.dtype):
            # the GLM sequence keeps its scalars in the state dtype between calls: rows of
            # another dtype would make the results depend on where batches begin
            X = X.astype(self.dtype)
        return X

    def _as_y(self, y, n: int, required: bool) -> np.ndarray:
        if not self._needs_y:
            if y is not None:
                raise TypeError(f"{type(self).__name__} takes no y")
            return _EMPTY
        if y is None:
            if required:
                raise ValueError(f"{type(self).__name__} needs y")
            return _EMPTY
        self._y_first_bad = -1
        dt = np.dtype(self.dtype)                 # labels in the state's precision
        if not (isinstance(y, np.ndarray) and y.dtype == dt and y.ndim == 1
                and y.flags.c_contiguous):
            y = np.ascontiguousarray(y, dt).reshape(-1)
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} values for {n} samples")
        bad_fin, bad_bin = _kernels()._check_labels(y, self._kind == _LOGISTIC)
        if bad_bin >= 0:
            raise ValueError("ClippedSGDLogistic needs binary labels y in {0, 1}; "
                             f"got {y[bad_bin]} at row {bad_bin}")
        self._y_first_bad = bad_fin
        return y

    # ------------------------------------------------------------------ keyed bookkeeping
    def _slots_for(self, keys, n: int, add: bool):
        """Slots of ``keys`` (-1 for unseen when not ``add``); returns (slots, added_keys)."""
        if self._keymap is None:
            self._keymap = make_keymap(keys)
        km = self._keymap
        if isinstance(km, IntKeyMap):
            arr = np.asarray(keys)
            if arr.dtype.kind not in "iub":
                raise TypeError("this estimator has integer keys; got keys of dtype "
                                f"{arr.dtype}")
        kk = km.coerce(keys)
        if len(kk) != n:
            raise ValueError(f"keys has {len(kk)} entries for {n} samples")
        while True:
            slots = km.lookup(kk)
            added = None
            if not add:
                return slots, None
            miss = np.flatnonzero(slots < 0)
            if not miss.size:
                return slots, None
            if isinstance(km, ObjectKeyMap):
                new = km.unique_new([kk[i] for i in miss])
            else:
                new = km.unique_new(kk[miss])
            m = len(new)
            take = min(m, len(self._free))
            need = self._n_slots + m - take
            if need > self._SC.shape[0] and self._active:
                # growing reallocates arrays that running kernels write to: wait until no
                # kernel is in flight, then start over (other threads may have added keys)
                self._cond.wait()
                continue
            self._grow(need)                      # rows past _n_slots are in initial state
            reuse = [self._free.pop() for _ in range(take)]  # freed rows were reset too
            fresh = np.arange(self._n_slots, need, dtype=np.int64)
            new_slots = np.concatenate([np.array(reuse, np.int64), fresh])
            self._n_slots = need
            km.add(new, new_slots)
            added = (new, new_slots)
            if isinstance(km, IntKeyMap):            # new is sorted: no second full lookup
                slots[miss] = new_slots[np.searchsorted(new, kk[miss])]
                return slots, added
            return km.lookup(kk), added

    def _enter(self, X):
        self._lazy_init()
        if self._d is None:
            self._alloc(X.shape[1])

    def _launch(self, fn, *args, n_tasks=0):
        """Run a parallel kernel.

        With ``n_tasks`` (the prange trip count), iterations are handed out in dynamic
        chunks of about 1/32 of a thread's share, not one static block per thread: a thread
        descheduled by other load then delays only its current chunk.
        """
        import numba

        from ._config import PARALLEL_LAUNCH_IS_THREADSAFE, PARALLEL_LAUNCH_LOCK
        chunk = max(1, n_tasks // (32 * numba.get_num_threads())) if n_tasks else 0
        with numba.parallel_chunksize(chunk):      # a thread-local setting
            if PARALLEL_LAUNCH_IS_THREADSAFE:
                return fn(*args)
            with PARALLEL_LAUNCH_LOCK:
                return fn(*args)

    # ------------------------------------------------------------------ learning
    def _learn(self, X, y, keys, want_scores: bool, proba: bool = False):
        """Score-then-learn the rows; returns scores (and probabilities) when wanted.

        Scores are always computed: the anomaly-probability state learns from them. A
        rejected first batch leaves the estimator unfitted (no dimension fixed).
        """
        self._lazy_init()
        fresh = self._d is None
        names = self._feature_names
        try:
            return self._learn_checked(X, y, keys, want_scores, proba)
        except (ValueError, TypeError):
            if fresh and self._d is not None:
                with self._cond:
                    self._d = self._V = self._SC = self._keymap = None
                    self._n_slots = 1
                    self._free = []
                    self._feature_names = names
            raise

    def _learn_checked(self, X, y, keys, want_scores: bool, proba: bool):
        K = self._kernel_module()
        with self._cond:
            X = self._as_X(X)
            y = self._as_y(y, X.shape[0], required=True)
            y_first_bad = self._y_first_bad if y.shape[0] else -1
            self._enter(X)
        n = X.shape[0]
        scores = np.empty(n, np.float64)
        probs = np.empty(n if proba else 0, np.float64)
        mode = 0 if self.on_invalid == "raise" else 1
        ybad = None
        if y_first_bad >= 0:
            if mode == 0:
                raise ValueError(f"y has NaN/inf at row {y_first_bad}")
            ybad = np.flatnonzero(~np.isfinite(y))
        if keys is None:
            with self._cond:
                V, SC = self._V, self._SC
                self._active += 1
            try:
                if ybad is not None:
                    self._learn_skip_y(X, y, ybad, None, scores)
                else:
                    snap = (V[0].copy(), SC[0].copy()) if mode == 0 else None
                    bad = K._process_run(self._kind, X, y, V, SC, self._P, scores, mode)
                    if bad >= 0:
                        V[0], SC[0] = snap
                        raise ValueError(f"X has NaN/inf at row {bad} (on_invalid='raise'); "
                                         "state left unchanged")
                K._proba_run(scores, SC, self._P, probs, True)
            finally:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()
            return self._result(scores, probs, want_scores, proba)
        # keyed
        with self._cond:
            slots, added = self._slots_for(keys, n, add=True)
            V, SC = self._V, self._SC
            self._active += 1
        try:
            order, starts, gslots = self._group(slots)
            small = n < SERIAL_BELOW
            if ybad is not None:
                self._learn_skip_y(X, y, ybad, slots, scores)
                self._proba_pass(K, small, scores, order, starts, gslots, SC, probs)
                return self._result(scores, probs, want_scores, proba)
            snap = None
            if mode == 0 and small:
                # a small batch: validate first (one short pass), so no snapshot is needed
                first = K._first_invalid_row_serial(X, _finite_bound(X))
                if first >= 0:
                    self._forget(added)
                    raise ValueError(f"X has NaN/inf (or a value too large to square) at "
                                     f"row {first} (on_invalid='raise'); state left unchanged")
            elif mode == 0:
                # validate before mutating: snapshot the touched keys' rows when that is
                # cheaper than one read of X, else check X first (one parallel pass)
                row_bytes = V.itemsize * V.shape[1] * V.shape[2] + SC.itemsize * SC.shape[1]
                if gslots.shape[0] * row_bytes <= X.nbytes:
                    snap = (V[gslots], SC[gslots])
                else:
                    first = self._launch(K._first_invalid_row, X, _finite_bound(X))
                    if first >= 0:
                        self._forget(added)
                        raise ValueError(f"X has NaN/inf (or a value too large to square) at "
                                         f"row {first} (on_invalid='raise'); state left unchanged")
            if small:
                bad = K._process_keyed_serial(self._kind, X, y, order, starts, gslots, V, SC,
                                              self._P, scores, mode)
            else:
                bad = self._launch(K._process_keyed, self._kind, X, y, order, starts, gslots,
                                   V, SC, self._P, scores, mode, n_tasks=gslots.shape[0])
            if mode == 0 and (bad >= 0).any():
                first = int(bad[bad >= 0].min())
                if snap is None:          # only reachable through overflow in the kernel
                    raise ValueError(f"X row {first} overflowed; keys of this batch may be "
                                     "partially updated")
                V[gslots], SC[gslots] = snap
                self._forget(added)
                raise ValueError(f"X has NaN/inf at row {first} (on_invalid='raise'); "
                                 "state left unchanged")
            self._proba_pass(K, small, scores, order, starts, gslots, SC, probs)
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()
        return self._result(scores, probs, want_scores, proba)

    def _proba_pass(self, K, small, scores, order, starts, gslots, SC, probs):
        if small:
            K._proba_keyed_serial(scores, order, starts, gslots, SC, self._P, probs)
        else:
            self._launch(K._proba_keyed, scores, order, starts, gslots, SC, self._P, probs,
                         n_tasks=gslots.shape[0])

    @staticmethod
    def _result(scores, probs, want_scores, proba):
        if proba:
            return scores, probs
        return scores if want_scores else None

    def _forget(self, added) -> None:
        """Undo the key insertions of a rejected batch; their rows go back to initial state."""
        if added is None:
            return
        with self._cond:
            self._keymap.remove(added[0])
            self._V[added[1]] = 0
            self._init_rows(self._SC, added[1])
            self._free.extend(added[1].tolist())

    def _learn_skip_y(self, X, y, ybad, slots, scores):
        """on_invalid='skip' with non-finite labels: learn the good rows, count the bad ones."""
        good = np.ones(X.shape[0], bool)
        good[ybad] = False
        Xg, yg = np.ascontiguousarray(X[good]), np.ascontiguousarray(y[good])
        sg = np.empty(Xg.shape[0] if scores.shape[0] else 0)
        K = self._kernel_module()
        if slots is None:
            K._process_run(self._kind, Xg, yg, self._V, self._SC, self._P, sg, 1)
            self._SC[0, L.N_INVALID] += ybad.size
        else:
            order, starts, gslots = self._group(slots[good])
            self._launch(K._process_keyed, self._kind, Xg, yg, order, starts, gslots,
                         self._V, self._SC, self._P, sg, 1)
            np.add.at(self._SC[:, L.N_INVALID], slots[ybad], 1.0)
        if scores.shape[0]:
            scores[good] = sg
            scores[ybad] = np.nan

    def _group(self, slots):
        n = slots.shape[0]
        if self._n_slots <= 4 * n + 1024:
            return _kernels()._group_by_slot(slots, self._n_slots)
        order = np.argsort(slots, kind="stable")
        s = slots[order]
        starts = np.concatenate([[0], np.flatnonzero(s[1:] != s[:-1]) + 1, [n]]).astype(np.int64)
        return order, starts, s[starts[:-1]].copy()

    def learn_many(self, X, y=None, keys=None) -> None:
        """Learn the rows of ``X`` in order (one clipped-SGD step each).

        With ``keys``, each row updates the state of its key (unseen keys are added). Also
        updates the thresholds.
        """
        self._learn(X, y, keys, want_scores=False)

    def process_many(self, X, y=None, keys=None, proba=False):
        """Prequential ingestion: score each row against the state *before* it, then learn it.

        Returns float64 scores (higher = more anomalous; NaN for rows skipped as invalid).
        With ``proba=True`` returns ``(scores, probabilities)``: each row's anomaly probability
        (see :meth:`score_proba_many`), computed before the row is learned.
        """
        return self._learn(X, y, keys, want_scores=True, proba=bool(proba))

    # ------------------------------------------------------------------ single events
    # One event is one serial njit call (no parallel launch, no batch bookkeeping) through
    # the same sequence kernel as the batch path, so both give the same numbers bit for bit.
    def _row1(self, x):
        """``x`` as a 1-D float row of the fitted dimension (no copy if it already is one)."""
        if type(x) is np.ndarray and x.ndim == 1 and x.shape[0] == self._d \
                and x.dtype in _ROW_DTYPES:
            return x
        if isinstance(x, dict):
            names = self._feature_names
            if names is None:
                raise ValueError(f"{type(self).__name__} was fitted on arrays, not dicts")
            try:
                x = [x[k] for k in names]
            except KeyError as exc:
                raise ValueError(f"x lacks feature {exc.args[0]!r}") from None
        a = np.asarray(x)
        if a.dtype not in _ROW_DTYPES:
            if a.dtype == object or a.dtype.kind not in "biuf":
                raise TypeError(f"x must be numeric, got dtype {a.dtype}")
            a = a.astype(np.float32)
        a = a.reshape(-1)
        if a.shape[0] != self._d:
            raise ValueError(f"x has {a.shape[0]} features, but {type(self).__name__} "
                             f"was fitted with {self._d}")
        return a

    def _slot1(self, key, add: bool):
        """(slot, added) of one key: an O(1) lookup.

        Unseen keys go through the batch bookkeeping (added when ``add``, else slot -1).
        """
        km = self._keymap
        if km is not None:
            s = km.lookup_one(key)
            if s >= 0:
                return s, None
        with self._cond:
            slots, added = self._slots_for(self._one_key(key), 1, add=add)
        return int(slots[0]), added

    def _y1(self, y, learn: bool):
        if y is None:
            if self._needs_y and (learn or self._kind == _LINEAR):
                raise ValueError(f"{type(self).__name__} needs y")
            return 0.0, False
        if not self._needs_y:
            raise TypeError(f"{type(self).__name__} takes no y")
        yv = float(self._ytype(y))          # rounded to the state dtype, as the batch path does
        if self._kind == _LOGISTIC and yv == yv and yv not in (0.0, 1.0):
            raise ValueError(f"ClippedSGDLogistic needs binary labels y in {{0, 1}}; got {y}")
        return yv, True

    def _remember_entry(self, row, args) -> None:
        """Numba's dispatcher resolves the argument types on every call (about half a microsecond).

        After the first call of a row dtype we call the compiled entry point of that exact
        signature directly. Rows reach it only 1-D, C-contiguous, aligned and of that dtype
        (``_event`` makes sure); the state arrays are always ours.
        """
        import numba
        cres = self._K1._one.overloads.get(tuple(numba.typeof(a) for a in args))
        if cres is not None:
            self._one_eps[row.dtype] = cres.entry_point

    def _event(self, x, y, key, learn: bool):
        """(score, probability, flag) of one event, or None before the first sample.

        The batch path then allocates the state.
        """
        d = self.__dict__.get("_d")
        if d is None:
            return None
        if not (type(x) is np.ndarray and x.dtype in _ROW_DTYPES and x.shape == (d,)):
            x = self._row1(x)
        if self._kind in (_LINEAR, _LOGISTIC) and x.dtype != self._V.dtype:
            x = x.astype(self._V.dtype)        # as _as_X
        if not x.flags.carray:
            x = np.require(x, requirements="CAW")
        if y is None and not self._needs_y:
            yv, has_y = 0.0, False
        else:
            yv, has_y = self._y1(y, learn)
        if key is None:
            slot, added = 0, None
        else:
            slot, added = self._slot1(key, learn)
        ep = self._one_eps.get(x.dtype)
        with self._swap_lock:
            args = (self._kind, x, yv, has_y, self._V, self._SC, self._P, slot, learn,
                    self._mode, self._s1, self._y1buf)
            if ep is not None:
                out = ep(*args)
            else:
                out = self._K1._one(*args)
        if ep is None:
            self._remember_entry(x, args)
        if out[0] != out[0] and self._mode == 0:        # NaN: the event was rejected
            self._forget(added)
            what = "y" if has_y and not np.isfinite(yv) else "x"
            raise ValueError(f"{what} has NaN/inf (on_invalid='raise'); state left unchanged")
        return out

    def learn_one(self, x, y=None, key=None) -> None:
        """Learn one sample (array-like of shape [d] or a dict of features)."""
        if self._event(x, y, key, True) is None:
            self._learn(self._one(x), None if y is None else [y],
                        None if key is None else self._one_key(key), want_scores=False)

    def process_one(self, x, y=None, key=None, proba=False, flag=False):
        """The ingestion call for one event: its score against the state before it, then learn it.

        Returns the score, or a tuple ``(score, probability)``, ``(score, flag)`` or
        ``(score, probability, flag)`` as asked (flag: 0/1 against the key's threshold before
        this event).
        """
        out = self._event(x, y, key, True)
        if out is None:
            s, p = self._learn(self._one(x), None if y is None else [y],
                               None if key is None else self._one_key(key), want_scores=True,
                               proba=True)
            out = (float(s[0]), float(p[0]), 0)
        if not (proba or flag):
            return out[0]
        return (out[0],) + ((out[1],) if proba else ()) + ((out[2],) if flag else ())

    @staticmethod
    def _one_key(key):
        if isinstance(key, (int, np.integer)):
            return np.array([key], np.int64)
        return [key]

    def _one(self, x):
        self._lazy_init()
        return self._as_X(x, single=True)

    # ------------------------------------------------------------------ scoring (pure)
    def score_many(self, X, y=None, keys=None) -> np.ndarray:
        """Scores of the rows against the current state, without changing it."""
        K = self._kernel_module()
        self._lazy_init()
        X = self._as_X(X)
        y = self._as_y(y, X.shape[0], required=self._kind == _LINEAR)
        n = X.shape[0]
        scores = np.empty(n, np.float64)
        if self._d is None or keys is None:
            if self._d is None:                   # nothing learned yet: a fresh state
                V = np.zeros((1, self._m, X.shape[1]), np.dtype(self.dtype))
                SC = np.zeros((1, L.N_SCALARS))
                self._init_rows(SC, slice(0, 1))
            else:
                V, SC = self._V, self._SC
            bad = K._score_run(self._kind, X, y, V, SC, self._P, scores)
            if bad >= 0:
                if self.on_invalid == "raise":
                    raise ValueError(f"X has NaN/inf at row {bad}")
                scores = self._score_skip(X, y, V, SC)
            return scores
        with self._cond:
            slots, _ = self._slots_for(keys, n, add=False)
        nbad = self._launch(K._score_keyed, self._kind, X, y, slots, self._V, self._SC,
                            self._P, scores, 0.0)
        if nbad and self.on_invalid == "raise":
            raise ValueError(f"X has NaN/inf at row {int(np.flatnonzero(np.isnan(scores))[0])}")
        return scores

    def score_proba_many(self, X, y=None, keys=None) -> np.ndarray:
        """Calibrated anomaly probabilities in [0, 1] of the rows against the current state (pure).

        The probability is the normal tail probability of the row's score, averaged with the
        key's last ``proba_window - 1`` learned scores, against that short average's running
        distribution over about the last ``proba_history`` scores of the same key (the spirit of
        Numenta's anomaly likelihood). Unlike raw scores, it means the same on every stream and
        every key: 0.5 is typical, 0.999 is a one-in-a-thousand excursion. It is 0.5 until the
        key has learned ``5 * proba_window`` scores (or ``proba_history``, if smaller).
        """
        scores = _ClippedSGDBase.score_many(self, X, y, keys)
        out = np.empty(scores.shape[0])
        if self._d is None:
            out[:] = np.where(np.isfinite(scores), 0.5, np.nan)
            return out
        if keys is None:
            _kernels()._proba_run(scores, self._SC, self._P, out, False)
        else:
            with self._cond:
                slots, _ = self._slots_for(keys, scores.shape[0], add=False)
            self._launch(_kernels()._proba_pure_keyed, scores, slots, self._SC, self._P, out)
        return out

    def score_proba_one(self, x, y=None, key=None) -> float:
        """Anomaly probability of one sample (pure); see :meth:`score_proba_many`."""
        out = self._event(x, y, key, False)
        if out is not None:
            return out[1]
        return float(self.score_proba_many(self._one(x), None if y is None else [y],
                                           None if key is None else self._one_key(key))[0])

    def _score_skip(self, X, y, V, SC):
        fin = np.isfinite(X).all(axis=1)
        out = np.full(X.shape[0], np.nan)
        idx = np.flatnonzero(fin)
        sub = np.empty(idx.size)
        self._kernel_module()._score_run(self._kind, np.ascontiguousarray(X[idx]),
                              y[idx] if y.shape[0] else y, V, SC, self._P, sub)
        out[idx] = sub
        return out

    def score_one(self, x, y=None, key=None) -> float:
        """Score of one sample (pure: never changes state)."""
        out = self._event(x, y, key, False)
        if out is not None:
            return out[0]
        return float(self.score_many(self._one(x), None if y is None else [y],
                                     None if key is None else self._one_key(key))[0])

    def predict_many(self, X, y=None, keys=None) -> np.ndarray:
        """0/1 flags of the rows against the current adaptive threshold(s) (pure)."""
        s = _ClippedSGDBase.score_many(self, X, y, keys)
        if self._d is None:
            return np.zeros(s.shape[0], np.uint8)
        flags = np.empty(s.shape[0], np.uint8)
        if keys is None:
            slots = np.zeros(s.shape[0], np.int64)
        else:
            with self._cond:
                slots, _ = self._slots_for(keys, s.shape[0], add=False)
        _kernels()._threshold_flags_keyed(s, slots, self._SC, self._P, flags)
        return flags

    def predict_one(self, x, y=None, key=None) -> int:
        """0/1 flag of one sample against its key's adaptive threshold (pure)."""
        out = self._event(x, y, key, False)
        if out is not None:
            return out[2]
        return int(self.predict_many(self._one(x), None if y is None else [y],
                                     None if key is None else self._one_key(key))[0])

    # ------------------------------------------------------------------ fitted attributes
    def _check_fitted(self):
        self._lazy_init()
        if self._d is None:
            raise AttributeError(f"{type(self).__name__} has not seen any sample yet")

    def _live_slots(self) -> np.ndarray:
        if self._keymap is None or len(self._keymap) == 0:
            return np.zeros(1, np.int64)
        return np.concatenate([[0], self._keymap.items()[1]]).astype(np.int64)

    @property
    def n_features_in_(self) -> int:
        self._check_fitted()
        return self._d

    @property
    def n_seen_(self) -> int:
        """Valid samples learned (all keys)."""
        self._lazy_init()
        return 0 if self._d is None else int(self._SC[self._live_slots(), L.N_SEEN].sum())

    @property
    def n_invalid_(self) -> int:
        """Samples skipped as NaN/inf (``on_invalid='skip'``), all keys."""
        self._lazy_init()
        return 0 if self._d is None else int(self._SC[self._live_slots(), L.N_INVALID].sum())

    @property
    def n_keys_(self) -> int:
        self._lazy_init()
        return 0 if self._keymap is None else len(self._keymap)

    @property
    def theta_(self) -> np.ndarray:
        """Parameters of the un-keyed stream (copy)."""
        self._check_fitted()
        return self._theta(0)

    @property
    def threshold_(self) -> float:
        """Current adaptive threshold of the un-keyed stream."""
        self._check_fitted()
        return self._threshold_of(0)

    def _threshold_of(self, slot) -> float:
        sc = self._SC[slot]
        if sc[L.TH_N] == 0 or sc[L.TH_N] < self._P[L.P_TH_WARMUP]:
            return float("inf")
        return float(sc[L.TH_HI] + self._P[L.P_TH_MARGIN] * sc[L.TH_DEV])

    def key_state(self, key) -> dict:
        """A copy of one key's state: ``theta``, ``n_seen``, ``threshold``."""
        self._check_fitted()
        slot = int(self._slots_for(self._one_key(key), 1, add=False)[0][0])
        if slot < 0:
            raise KeyError(key)
        return {"theta": self._theta(slot), "n_seen": int(self._SC[slot, L.N_SEEN]),
                "threshold": self._threshold_of(slot)}

    def _theta(self, slot):
        return self._V[slot, 0].copy()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """Versioned dict of NumPy arrays (no objects) holding the whole state."""
        self._lazy_init()
        arrays = {}
        if self._d is not None:
            slots = self._live_slots()
            arrays["vectors"] = self._V[slots].copy()
            arrays["scalars"] = self._SC[slots].copy()
            if self._keymap is not None and len(self._keymap):
                keys, _ = self._keymap.items()
                if isinstance(self._keymap, IntKeyMap):
                    arrays["keys_int"] = np.asarray(keys, np.int64)
                else:
                    if not all(isinstance(k, str) for k in keys):
                        raise TypeError("only int or str keys can be saved")
                    if any(k.endswith("\x00") for k in keys):
                        raise ValueError("str keys ending in a NUL character cannot be saved "
                                         "(NumPy's string arrays drop trailing NULs)")
                    arrays["keys_str"] = np.asarray(keys, dtype=str)
            if self._feature_names is not None:
                names = self._feature_names
                if all(isinstance(f, (int, np.integer)) and not isinstance(f, bool)
                       for f in names):
                    arrays["feature_names_int"] = np.asarray(names, np.int64)   # river style
                else:
                    arrays["feature_names"] = np.asarray([str(f) for f in names])
        params = self.get_params()
        return _state.pack(type(self).__name__, params, arrays)

    _ARRAYS = ("vectors", "scalars", "keys_int", "keys_str", "feature_names", "feature_names_int")

    def load_state_dict(self, state: dict):
        """Restore the state written by :meth:`state_dict` (copies the arrays).

        Every field is validated before anything is changed: format and version, the class,
        the parameters (only this estimator's own, with values its constructor accepts),
        and each array's dtype and shape, key uniqueness included.

        Raises:
            pygad.InvalidArchiveError: a field is missing, malformed or inconsistent.
        """
        name, params, arrays = _state.unpack(state)
        if name != type(self).__name__:
            raise InvalidArchiveError(f"archive holds a {name}, not a {type(self).__name__}")
        own = set(self._param_names())
        unknown = sorted(set(params) - own)
        if unknown:   # only the estimator's own parameters: an archive never sets anything else
            raise InvalidArchiveError(f"corrupt archive: unknown {type(self).__name__} parameters {unknown}")
        # "cli_*" arrays are the bookkeeping of `pygad stream detect` (checked there), not state
        extra = sorted(k for k in set(arrays) - set(self._ARRAYS) - set(self._extra_arrays)
                       if not k.startswith("cli_"))
        if extra:
            raise InvalidArchiveError(f"corrupt archive: unknown arrays {extra}")
        probe = type(self)()
        probe.__dict__.update({k: v for k, v in self.__dict__.items() if k == "_rank_resolved"})
        for k, v in params.items():
            setattr(probe, k, v)
        try:
            probe._build_params()
            loaded = self._check_arrays(arrays, probe) if ("vectors" in arrays or "scalars" in arrays) else None
        except InvalidArchiveError:
            raise
        except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as exc:
            raise InvalidArchiveError(f"corrupt archive: bad parameters ({exc})") from None
        for k, v in params.items():
            setattr(self, k, v)
        for k in ("_cond",):
            self.__dict__.pop(k, None)
        self._lazy_init()
        if loaded is not None:
            V, SC, keys_int, keys_str, names = loaded
            self._d = V.shape[2]
            self._V = np.array(V, np.dtype(self.dtype), order="C")      # copies: the
            self._SC = np.array(SC, np.float64, order="C")              # archive stays the caller's
            self._n_slots = V.shape[0]
            if keys_int is not None:
                self._keymap = IntKeyMap()
                self._keymap.add(keys_int.astype(np.int64), np.arange(1, self._n_slots, dtype=np.int64))
            elif keys_str is not None:
                self._keymap = ObjectKeyMap()
                self._keymap.add([str(k) for k in keys_str], np.arange(1, self._n_slots, dtype=np.int64))
            if names is not None:
                self._feature_names = names
        return self

    _extra_arrays: tuple = ()

    def _check_arrays(self, arrays: dict, probe) -> tuple:
        """Validated (V, SC, keys_int, keys_str, feature_names) of an archive's state arrays."""
        V = _state.check_array(arrays, "vectors", "f", 3)
        SC = _state.check_array(arrays, "scalars", "f", 2).astype(np.float64)
        if SC.shape[1] == L.N_SCALARS_V1:
            # written before the scale floors and probabilities: those start afresh
            SC = np.concatenate([SC, np.zeros((SC.shape[0], L.N_SCALARS - SC.shape[1]))], 1)
        if probe._kind == _MEAN and V.shape[1] == 2:
            V = np.concatenate([V, V[:, 1:2]], 1)   # v1 archive: slow scale starts at scale
        if V.shape[1] != probe._m or V.shape[0] < 1 or SC.shape != (V.shape[0], L.N_SCALARS):
            raise InvalidArchiveError(
                f"corrupt archive: state arrays have the wrong shapes (vectors {list(V.shape)}, scalars "
                f"{list(SC.shape)}; expected [K >= 1, {probe._m}, d] and [K, {L.N_SCALARS}])")
        n_keys = V.shape[0] - 1
        keys = {}
        if "keys_int" in arrays and "keys_str" in arrays:
            raise InvalidArchiveError("corrupt archive: both 'keys_int' and 'keys_str'")
        for kname, kinds in (("keys_int", "iu"), ("keys_str", "U")):
            if kname in arrays:
                k = _state.check_array(arrays, kname, kinds, 1)
                if kinds == "iu" and k.dtype.kind == "u" and k.size and k.max() > np.iinfo(np.int64).max:
                    raise InvalidArchiveError(f"corrupt archive: {kname!r} has keys above the int64 range")
                if k.shape[0] != n_keys or np.unique(k).shape[0] != k.shape[0]:
                    raise InvalidArchiveError(f"corrupt archive: {kname!r} must hold {n_keys} distinct keys, "
                                              f"got {k.shape[0]} ({np.unique(k).shape[0]} distinct)")
                keys[kname] = k
        if n_keys and not keys:
            raise InvalidArchiveError(f"corrupt archive: state for {n_keys} keys but no 'keys_int'/'keys_str'")
        names = None
        for nname, kinds in (("feature_names", "U"), ("feature_names_int", "iu")):
            if nname in arrays:
                f = _state.check_array(arrays, nname, kinds, 1, (V.shape[2],))
                names = [str(x) for x in f] if kinds == "U" else [int(x) for x in f]
        return V, SC, keys.get("keys_int"), keys.get("keys_str"), names

    def save(self, path) -> None:
        """Write the state to ``path`` as a versioned ``.npz``, atomically."""
        _state.save_atomic(path, self.state_dict())

    @classmethod
    def load(cls, path):
        return _state.load_into(cls(), _state.load_file(path), os.fspath(path))

    def to_bytes(self) -> bytes:
        """The state as the bytes of a versioned ``.npz`` (no pickle)."""
        return _state.to_bytes(self.state_dict())

    @classmethod
    def from_bytes(cls, b: bytes):
        return cls().load_state_dict(_state.from_bytes(b))

    def __getstate__(self):
        return {"state": self.state_dict()}

    def __setstate__(self, st):
        self.load_state_dict(st["state"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class ClippedSGDMean(_ClippedSGDBase):
    """Robust location of a d-dimensional stream, with a robust standardised anomaly score.

    Learns the mean ``mu`` with clipped SGD on ``0.5 ||mu - x||^2`` and a per-dimension scale
    ``s`` (mean absolute deviation) with the same clipped steps. The score is the robust
    standardised distance ``sqrt(mean_j min(z_j^2, score_clip^2))`` with
    ``z_j = (x_j - mu_j) / sqrt(s_j^2 + f^2)``: no feature scaling is needed. The floor ``f``
    combines ``scale_floor * mean(s)``, a quarter of the slow running mean of ``mean(s)`` (over
    about the last 1,000 samples, so a long run of constant or zero values cannot collapse the
    scale) and a few units of roundoff of the data's magnitude; the adaptive clip is floored
    the same way. Finite input therefore always gives a finite score.

    Args:
        lr: learning-rate constant c in ``c * T**-alpha``.
        alpha: decay exponent, 0 < alpha < 1.
        horizon: known stream length T; ``None`` uses the doubling trick.
        clip: ``"auto"`` (adaptive) or a fixed clip threshold on ``||x - mu||``.
        clip_mult, clip_quantile, clip_lr: adaptive clip = ``clip_mult`` times a running
            ``clip_quantile`` of the gradient norms, updated multiplicatively by ``clip_lr``.
        scale_floor: per-dimension scale floor as a fraction of the mean scale.
        score_clip: cap of each feature's standardised residual in the score; ``None`` (the
            default) for no cap. A cap such as 3 keeps one wild feature from dominating the
            score in high dimension, but scores then tie at the cap and rank worse.
        threshold: an :class:`AdaptiveThreshold` (or its params as dict) configuring the
            per-key flagging threshold.
        on_invalid: ``"raise"`` or ``"skip"`` NaN/inf samples.
        dtype: state dtype, float32 (default) or float64.
        proba_window, proba_history: windows (in samples of a key) of the anomaly probability
            (:meth:`score_proba_many`): the short average of scores, and the history it is
            compared with.
    """
    _kind = _MEAN
    _m = 3                 # location, scale, slow scale
    _extra_params = ("score_clip",)
    _needs_y = False
    _reg_name = "scale_floor"

    def __init__(self, lr=1.0, alpha=0.5, horizon=None, clip="auto", clip_mult=2.0,
                 clip_quantile=0.5, clip_lr=0.05, scale_floor=0.01, score_clip=None,
                 threshold=None, on_invalid="raise", dtype="float32", proba_window=10,
                 proba_history=1000):
        super().__init__(lr, alpha, horizon, clip, clip_mult, clip_quantile, clip_lr,
                         threshold, on_invalid, dtype, proba_window, proba_history)
        self.scale_floor = scale_floor
        self.score_clip = score_clip

    @property
    def location_(self) -> np.ndarray:
        """The location (robust mean) of the un-keyed stream, ``[d]``."""
        self._check_fitted()
        return self._V[0, 0].copy()

    @property
    def scale_(self) -> np.ndarray:
        """The per-coordinate scale of the un-keyed stream, ``[d]``."""
        self._check_fitted()
        return self._V[0, 1].copy()


class _GLM(_ClippedSGDBase):
    def __init__(self, lr=1.0, alpha=0.5, horizon=None, clip="auto", clip_mult=2.0,
                 clip_quantile=0.5, clip_lr=0.05, l2=0.0, threshold=None,
                 on_invalid="raise", dtype="float32", proba_window=10, proba_history=1000):
        super().__init__(lr, alpha, horizon, clip, clip_mult, clip_quantile, clip_lr,
                         threshold, on_invalid, dtype, proba_window, proba_history)
        self.l2 = l2

    @property
    def coef_(self) -> np.ndarray:
        self._check_fitted()
        return self._V[0, 0].copy()

    @property
    def intercept_(self) -> float:
        self._check_fitted()
        return float(self._SC[0, L.BIAS])

    def _theta(self, slot):
        return np.concatenate([self._V[slot, 0].astype(np.float64), [self._SC[slot, L.BIAS]]])


class ClippedSGDLinear(_GLM):
    """Least squares ``y ~ w.x + b`` by clipped, normalised SGD (robust online regression).

    Score of ``(x, y)``: ``|y - w.x - b|`` over a running (clipped) residual scale; scoring
    needs ``y``. ``theta_`` is ``[w, b]``. Same arguments as :class:`ClippedSGDMean`, with
    ``l2`` (decoupled weight decay) instead of ``scale_floor``.
    """
    _kind = _LINEAR

    def predict_value_many(self, X) -> np.ndarray:
        """``w.x + b`` of the un-keyed model."""
        X = self._as_X(X)
        return (X @ self._V[0, 0].astype(np.float64)) + self._SC[0, L.BIAS]


class ClippedSGDLogistic(_GLM):
    """Binary logistic regression by clipped, normalised SGD.

    Score of ``(x, y)``: the log-loss of ``y`` (how surprising the label is); of ``x`` alone:
    ``P(y = 1 | x)`` (a supervised detector when label 1 marks anomalies). ``theta_`` is
    ``[w, b]``. Same arguments as :class:`ClippedSGDLinear`.
    """
    _kind = _LOGISTIC

    def predict_proba_many(self, X, keys=None) -> np.ndarray:
        """``P(y = 1 | x)`` for each row (pure)."""
        return self.score_many(X, None, keys)


_SEASON_SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
_SEASON_BINS = {"hour": 6, "day": 6, "week": 7}


def _as_seconds(t) -> np.ndarray:
    """Timestamps as float64 seconds (datetime64 of any unit, or numbers taken as seconds)."""
    t = np.asarray(t)
    if t.dtype.kind == "M":
        return t.astype("datetime64[ns]").astype(np.int64) / 1e9
    if t.dtype.kind not in "iuf":
        raise TypeError(f"t must be datetime64 or numeric seconds, got dtype {t.dtype}")
    return t.astype(np.float64)


def _forecast_kernels():
    from . import _forecast_kernels
    return _forecast_kernels


class ClippedSGDForecaster(_ClippedSGDBase):
    """The time-series detector: a clipped-SGD autoregressive forecaster with change detection.

    Each coordinate of the stream has its own model. The forecast of ``x_t`` is the slow level
    plus a linear function of the last ``lags`` values' deviations from it (standardised by
    the slow scale), learned by clipped, normalised LMS; it starts as "same as last value".
    Residuals are standardised by a clipped running scale, floored at a quarter of its slow
    running mean (over about 1,000 samples) and at the data's own magnitude, so a long quiet or
    constant run cannot make it collapse. A two-sided CUSUM (Page, 1954) of the deviation
    from the slow level detects sustained shifts; after a detected change the level restarts
    at the new value, so the forecast adopts a shift instead of lagging behind it for
    thousands of samples.

    The default score (``score="novelty"``) measures how far the value lies outside the
    envelope of the values the key has seen (relative to the envelope's width; the envelope
    forgets over about 100,000 samples), or, at 0.3 of that weight, outside the envelope of
    the values seen at the same phase of the ``season``, plus a bounded term below 0.001 that
    orders the other samples by their standardised forecast residual. It is scale-free, so one
    threshold serves many streams: on the NAB corpus the best single threshold is about 0.06
    (0.01 without the season: a value 1% of the envelope's width beyond anything seen).
    ``score="residual"`` gives the standardised forecast residual itself (root mean square
    over coordinates), which ranks every sample and suits :meth:`score_proba_many`.

    Args:
        lags: number of past values the forecast uses.
        season: the period whose phases get their own envelope of values: ``"day"`` (the
            default), ``"hour"`` or ``"week"``, read from the timestamps ``t`` passed with
            the samples (without ``t`` the seasonal envelope is simply not used); an int
            period in samples (phase = position in the stream, or ``t`` as sample indices);
            or ``None``. A value that is ordinary for the series but new for its time of
            day (a flat night where traffic always dips, a missing daily peak) then scores
            too, at SEASON_WEIGHT = 0.3 of the weight of global novelty.
        season_bins: phases per period for ``"hour"``/``"day"``/``"week"`` (default 6, 6
            and 7: ten-minute, four-hour and one-day blocks).
        score: ``"novelty"`` (default) or ``"residual"``, see above.
        lr, alpha, horizon: learning rate ``lr * T**-alpha`` of the weights (doubling trick
            when ``horizon`` is None).
        clip, clip_mult, clip_quantile, clip_lr: gradient clipping as in
            :class:`ClippedSGDMean`.
        l2: decoupled weight decay of the autoregressive weights.
        change_drift: CUSUM allowance, in units of the slow scale: deviations smaller than
            this never accumulate.
        change_threshold: CUSUM decision level, in the same units.
        warmup: samples of a key before its score leaves 0.
        threshold, on_invalid, dtype, proba_window, proba_history: as in
            :class:`ClippedSGDMean`; ``dtype`` defaults to float64 (levels of monitoring
            series are often large numbers with small changes). The novelty score is 0 for
            most samples and jumps at new values, so its probability is high after every new
            value (and, with the default window of 10, for a few samples after it); flag on
            the score itself (about 0.05, see above) when false alarms matter, as
            ``pygad stream detect`` does.

    Examples:
        >>> import numpy as np
        >>> from pygad.stream import ClippedSGDForecaster
        >>> x = np.sin(np.arange(2000) / 10.0)[:, None]
        >>> x[1500] += 5.0                       # a spike beyond anything seen
        >>> det = ClippedSGDForecaster(lags=4)
        >>> scores, proba = det.process_many(x, proba=True)
        >>> int(np.argmax(scores))
        1500
    """
    _kind = _FORECAST
    _needs_y = False
    _reg_name = "l2"
    _extra_params = ("lags", "season", "season_bins", "score", "change_drift",
                     "change_threshold", "warmup")

    def __init__(self, lags=8, season="day", season_bins=None, score="novelty", lr=0.5,
                 alpha=0.5, horizon=None, clip="auto", clip_mult=2.0, clip_quantile=0.5,
                 clip_lr=0.05, l2=0.0, change_drift=0.5, change_threshold=20.0, warmup=50,
                 threshold=None, on_invalid="raise", dtype="float64", proba_window=10,
                 proba_history=1000):
        super().__init__(lr, alpha, horizon, clip, clip_mult, clip_quantile, clip_lr,
                         threshold, on_invalid, dtype, proba_window, proba_history)
        self.lags = lags
        self.season = season
        self.season_bins = season_bins
        self.score = score
        self.l2 = l2
        self.change_drift = change_drift
        self.change_threshold = change_threshold
        self.warmup = warmup

    @property
    def _m(self) -> int:
        from ._forecast_kernels import N_EXTRA
        return 2 * int(self.lags) + N_EXTRA + 3 * self._n_bins()

    def _kernel_module(self):
        return _forecast_kernels()

    def _build_params(self) -> np.ndarray:
        if not (isinstance(self.lags, (int, np.integer)) and self.lags >= 1):
            raise ValueError(f"lags must be an int >= 1, got {self.lags!r}")
        if not (self.change_drift >= 0 and self.change_threshold > 0):
            raise ValueError("change_drift must be >= 0 and change_threshold > 0, got "
                             f"{self.change_drift} and {self.change_threshold}")
        if not (isinstance(self.warmup, (int, np.integer)) and self.warmup >= 0):
            raise ValueError(f"warmup must be an int >= 0, got {self.warmup!r}")
        if self.score not in ("novelty", "residual"):
            raise ValueError(f'score must be "novelty" or "residual", got {self.score!r}')
        self._season_period()                       # validates season / season_bins
        P = super()._build_params()
        P[L.P_FC_LAGS] = float(self.lags)
        P[L.P_FC_DRIFT] = float(self.change_drift)
        P[L.P_FC_CHANGE] = float(self.change_threshold)
        P[L.P_FC_FAST] = 0.05
        P[L.P_FC_WARMUP] = float(max(2, self.warmup))
        P[L.P_LK_SKIP] = P[L.P_FC_WARMUP]     # its scores are 0 while warming up
        P[L.P_FC_MODE] = 0.0 if self.score == "novelty" else 1.0
        P[L.P_FC_BINS] = float(self._n_bins())
        return P

    # ------------------------------------------------------------------ seasonality
    def _season_period(self):
        """(period, bins, in_seconds) or None."""
        s = self.season
        if s is None:
            return None
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            if s < 2:
                raise ValueError(f"season must be >= 2 samples, got {s}")
            if self.season_bins is not None:
                raise ValueError("season_bins applies to 'hour', 'day' or 'week' seasons only")
            return int(s), int(s), False
        if isinstance(s, str) and s in _SEASON_SECONDS:
            bins = _SEASON_BINS[s] if self.season_bins is None else self.season_bins
            if not (isinstance(bins, (int, np.integer)) and bins >= 1):
                raise ValueError(f"season_bins must be an int >= 1, got {bins!r}")
            return _SEASON_SECONDS[s], int(bins), True
        raise ValueError(f'season must be None, an int period, "hour", "day" or "week"; got {s!r}')

    def _n_bins(self) -> int:
        per = self._season_period()
        return 0 if per is None else per[1]

    def _advance_season(self, n: int, t) -> None:
        """After ``n`` rows were learned: move the stream position of an int season that is counted (no ``t``).

        Only then: a rejected batch leaves it where it was.
        """
        if t is None and isinstance(self.season, (int, np.integer)) \
                and not isinstance(self.season, bool):
            self._season_count = getattr(self, "_season_count", 0) + n

    def _phase(self, n: int, t, keys, advance: bool):
        """Season phase of each row as float64 (the kernels' ``y``), or None for no phase.

        ``advance`` is accepted for the callers' symmetry; see _advance_season.
        """
        per = self._season_period()
        if per is None:
            return None
        period, bins, in_seconds = per
        if t is None:
            if in_seconds:
                return None               # without timestamps the seasonal envelope is unused
            if keys is not None:
                raise ValueError(f"season={self.season} with keys needs t= (each row's sample "
                                 "index in its key's stream)")
            self._lazy_init()
            start = getattr(self, "_season_count", 0)
            ph = (start + np.arange(n, dtype=np.int64)) % period
            return ph.astype(np.float64)
        sec = _as_seconds(t).reshape(-1)
        if sec.shape[0] != n:
            raise ValueError(f"t has {sec.shape[0]} values for {n} samples")
        if not np.isfinite(sec).all():
            raise ValueError(f"t has NaN/inf at row {int(np.flatnonzero(~np.isfinite(sec))[0])}")
        if in_seconds:
            ph = np.floor(np.mod(sec, period) / (period / bins)) % bins
        else:
            ph = np.mod(np.floor(sec), period)
        return np.ascontiguousarray(ph, np.float64)

    def _as_y(self, y, n: int, required: bool) -> np.ndarray:
        self._y_first_bad = -1
        return _EMPTY if y is None else y       # y carries the season phases (see _phase)

    # ------------------------------------------------------------------ public calls with t
    def learn_many(self, X, keys=None, t=None) -> None:
        """Learn the rows in order (one state per key with ``keys``).

        ``t``: timestamps (datetime64 or seconds) for an hour/day/week ``season``, or sample
        indices for an int season.
        """
        self._learn(X, self._phase(len(X), t, keys, True), keys, want_scores=False)
        self._advance_season(len(X), t)

    def process_many(self, X, keys=None, t=None, proba=False):
        """Score each row against the state before it, then learn it (prequential).

        Returns float64 scores, or ``(scores, probabilities)`` with ``proba=True``.
        """
        out = self._learn(X, self._phase(len(X), t, keys, True), keys, want_scores=True,
                          proba=bool(proba))
        self._advance_season(len(X), t)
        return out

    def score_many(self, X, keys=None, t=None) -> np.ndarray:
        """Scores against the current state (pure)."""
        return super().score_many(X, self._phase(len(X), t, keys, False), keys)

    def score_proba_many(self, X, keys=None, t=None) -> np.ndarray:
        """Anomaly probabilities against the current state (pure); see :meth:`ClippedSGDMean.score_proba_many`."""
        return super().score_proba_many(X, self._phase(len(X), t, keys, False), keys)

    def predict_many(self, X, keys=None, t=None) -> np.ndarray:
        """Flags (0/1) against the current state and thresholds (pure); ``t`` as in :meth:`learn_many`."""
        return super().predict_many(X, self._phase(len(X), t, keys, False), keys)

    def _y1(self, y, learn: bool):
        return (0.0, False) if y is None else (float(y), True)     # y: the season phase

    def _event_t(self, x, key, t, learn: bool):
        if self.__dict__.get("_d") is None:
            return None
        if t is None and (self.season is None or isinstance(self.season, str)):
            ph = None                     # no season, or timestamps not given: no phase
        else:
            p = self._phase(1, None if t is None else [t], None if key is None else [key],
                            learn)
            ph = None if p is None else p[0]
        out = self._event(x, ph, key, learn)
        if learn and out is not None:
            self._advance_season(1, t)
        return out

    def _first(self, x, key, t, proba=False):
        out = self.process_many(self._one(x), None if key is None else self._one_key(key),
                                None if t is None else [t], proba=True)
        return float(out[0][0]), float(out[1][0]), 0

    def learn_one(self, x, key=None, t=None) -> None:
        """Learn one sample; ``t``: its timestamp (or sample index) for the season."""
        if self._event_t(x, key, t, True) is None:
            self._first(x, key, t)

    def process_one(self, x, key=None, t=None, proba=False, flag=False):
        """Score one event against the state before it, then learn it (see :meth:`ClippedSGDMean.process_one`)."""
        out = self._event_t(x, key, t, True)
        if out is None:
            out = self._first(x, key, t)
        if not (proba or flag):
            return out[0]
        return (out[0],) + ((out[1],) if proba else ()) + ((out[2],) if flag else ())

    def score_one(self, x, key=None, t=None) -> float:
        """Score one event against the current state (pure)."""
        out = self._event_t(x, key, t, False)
        if out is not None:
            return out[0]
        return float(self.score_many(self._one(x), None if key is None else self._one_key(key),
                                     None if t is None else [t])[0])

    def score_proba_one(self, x, key=None, t=None) -> float:
        """Anomaly probability of one event against the current state (pure)."""
        out = self._event_t(x, key, t, False)
        if out is not None:
            return out[1]
        return float(self.score_proba_many(self._one(x), None if key is None else
                                           self._one_key(key), None if t is None else [t])[0])

    def predict_one(self, x, key=None, t=None) -> int:
        """Flag (0/1) of one event against the current state and threshold (pure)."""
        out = self._event_t(x, key, t, False)
        if out is not None:
            return out[2]
        return int(self.predict_many(self._one(x), None if key is None else self._one_key(key),
                                     None if t is None else [t])[0])

    # ------------------------------------------------------------------ fitted attributes
    def _theta(self, slot):
        return self._V[slot, :int(self.lags)].copy()

    @property
    def coef_(self) -> np.ndarray:
        """Autoregressive weights ``[lags, d]`` of the un-keyed stream (standardised lags)."""
        self._check_fitted()
        return self._theta(0)

    def state_dict(self) -> dict:
        """The state as a dict of arrays, including the counted season position."""
        st = super().state_dict()
        if getattr(self, "_season_count", 0):
            st["season_count"] = np.asarray(self._season_count, np.int64)
        return st

    _extra_arrays = ("season_count",)

    def load_state_dict(self, state: dict):
        """Restore a state written by :meth:`state_dict`, validating the season position first."""
        sc = state.get("season_count") if hasattr(state, "get") else None
        if sc is not None:
            sc = np.asarray(sc)
            if sc.ndim != 0 or sc.dtype.kind not in "iu" or sc < 0:
                raise InvalidArchiveError("corrupt archive: 'season_count' must be a non-negative int scalar")
        super().load_state_dict(state)
        self._season_count = int(sc) if sc is not None else 0
        return self


def _subspace_kernels():
    from . import _subspace_kernels
    return _subspace_kernels


class ClippedSGDSubspace(_ClippedSGDBase):
    """Robust streaming PCA: a clipped-SGD location plus a rank-``rank`` subspace (Oja-style).

    Learns the location ``mu`` as :class:`ClippedSGDMean` does and an orthonormal basis ``U``
    of the stream's main directions of variation by Sanger's generalised Hebbian rule (Oja's
    rule for several components), with the same clipped, decaying steps, normalised by
    ``||x - mu||^2`` so that no feature scaling is needed. The score adds what a diagonal scale
    cannot see, correlation between features:
    ``sqrt(0.5 * (res / res_var + mean_i c_i^2 / lam_i))`` with ``c = U (x - mu)`` the
    coordinates in the subspace, ``res`` the squared residual off it, and ``res_var``,
    ``lam_i`` their running (clipped) means, floored like :class:`ClippedSGDMean`'s scales.
    Suited to image-like or many-sensor streams whose normal samples lie near a
    low-dimensional subspace that drifts.

    Args:
        rank: dimension of the subspace (``1 <= rank <= n_features``); ``None`` (default):
            ``min(24, n_features // 2)``. Defaults (rank 24, ``basis_lr=40``, ``lr=0.25``)
            were chosen on validation seeds of the rotated-digits drift stream.
        basis_lr: step of the basis relative to the location's (the basis has to turn
            quickly after a drift; the location and variances should not chase anomalies).
        lr, alpha, horizon, clip, clip_mult, clip_quantile, clip_lr, threshold, on_invalid,
            dtype, proba_window, proba_history: as in :class:`ClippedSGDMean`.
    """
    _kind = _SUBSPACE
    _needs_y = False
    _reg_name = "rank"
    _extra_params = ("basis_lr",)
    DEFAULT_RANK = 24

    def __init__(self, rank=None, basis_lr=40.0, lr=0.25, alpha=0.5, horizon=None, clip="auto",
                 clip_mult=2.0, clip_quantile=0.5, clip_lr=0.05, threshold=None,
                 on_invalid="raise", dtype="float32", proba_window=10, proba_history=1000):
        super().__init__(lr, alpha, horizon, clip, clip_mult, clip_quantile, clip_lr,
                         threshold, on_invalid, dtype, proba_window, proba_history)
        self.rank = rank
        self.basis_lr = basis_lr

    @property
    def _m(self) -> int:
        return self._rank() + 3

    def _rank(self) -> int:
        """The rank in use: ``rank``, or for ``rank=None`` min(24, d) once d is known."""
        if self.rank is not None:
            return int(self.rank)
        r = getattr(self, "_rank_resolved", None)
        if r is None:
            raise AttributeError("rank=None is resolved on the first sample")
        return r

    def _kernel_module(self):
        return _subspace_kernels()

    def _build_params(self) -> np.ndarray:
        if not (self.rank is None or (isinstance(self.rank, (int, np.integer))
                                      and not isinstance(self.rank, bool) and self.rank >= 1)):
            raise ValueError(f"rank must be None or an int >= 1, got {self.rank!r}")
        if not self.basis_lr > 0:
            raise ValueError(f"basis_lr must be > 0, got {self.basis_lr!r}")
        P = super()._build_params()
        P[L.P_SUB_BASIS_LR] = float(self.basis_lr)
        r = self.rank if self.rank is not None else getattr(self, "_rank_resolved", None)
        P[L.P_REG] = 0.0 if r is None else float(r)      # set on the first sample
        return P

    def _resolve_rank(self, d: int) -> None:
        if self.rank is None and getattr(self, "_rank_resolved", None) is None:
            self._rank_resolved = min(self.DEFAULT_RANK, max(1, d // 2))
        self._P[L.P_REG] = float(self._rank())

    def score_many(self, X, y=None, keys=None) -> np.ndarray:
        """Scores of the rows against the current state (pure); fixes the rank on the first call."""
        self._lazy_init()
        if self._d is None:
            self._resolve_rank(np.shape(X)[-1] if np.ndim(X) == 2 else len(X))
        return super().score_many(X, y, keys)

    def _enter(self, X):
        if self._d is None:
            if self.rank is not None and self.rank > X.shape[1]:
                raise ValueError(f"rank {self.rank} exceeds the number of features "
                                 f"{X.shape[1]}")
            self._resolve_rank(X.shape[1])
        super()._enter(X)

    def load_state_dict(self, state: dict):
        """Restore a state written by :meth:`state_dict`; the rank is taken from the saved vectors."""
        v = state.get("vectors") if hasattr(state, "get") else None
        v = None if v is None else np.asarray(v)
        rank = int(v.shape[1]) - 3 if v is not None and v.ndim == 3 and v.shape[1] >= 4 else None
        before = self.__dict__.pop("_rank_resolved", None)
        if rank is not None:
            self._rank_resolved = rank
        try:
            super().load_state_dict(state)
        except InvalidArchiveError:   # a refused archive leaves the estimator as it was
            self.__dict__.pop("_rank_resolved", None)
            if before is not None:
                self._rank_resolved = before
            raise
        if rank is not None:
            if self.rank is not None and self.rank != rank:
                raise InvalidArchiveError(f"corrupt archive: rank {self.rank} but state for rank {rank}")
            self._P[L.P_REG] = float(rank)
        return self

    @property
    def location_(self) -> np.ndarray:
        """The location (robust mean) of the un-keyed stream, ``[d]``."""
        self._check_fitted()
        return self._V[0, 0].copy()

    @property
    def components_(self) -> np.ndarray:
        """The basis ``[rank, d]`` of the un-keyed stream (unit rows)."""
        self._check_fitted()
        return self._V[0, 1:1 + self._rank()].copy()

    @property
    def explained_variance_(self) -> np.ndarray:
        """The variance along each basis vector of the un-keyed stream, ``[rank]``."""
        self._check_fitted()
        return self._V[0, 1 + self._rank(), :self._rank()].astype(np.float64)

    def _theta(self, slot):
        return self._V[slot, 0].copy()
