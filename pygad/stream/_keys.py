"""Key -> state-slot maps for the keyed estimators (slot 0 is the un-keyed stream)."""
from __future__ import annotations

import operator

import numpy as np


class IntKeyMap:
    """Integer keys: a direct table for small dense ids, else a sorted array.

    Integer keys: a direct table ``slot = table[key]`` while the keys are small
    non-negative ints (dense ids: O(1) vectorised lookups), else a sorted array with binary
    search (any int64 keys, O(log K) per lookup). 1M keys cost 8-16 MB.
    """

    kind = "int"

    def __init__(self):
        self.keys = np.empty(0, np.int64)   # sorted
        self.slots = np.empty(0, np.int64)  # slot of keys[i]
        self.table = np.full(1024, -1, np.int64)   # None once keys are too sparse/negative
        self._pos: dict | None = None       # key -> slot for single lookups of sparse keys

    def __len__(self):
        return self.keys.shape[0]

    def lookup_one(self, key) -> int:
        """Slot of one key or -1: O(1) (the direct table, or a dict built on first use)."""
        if type(key) is not int:
            try:
                key = operator.index(key)
            except TypeError:
                raise TypeError(f"this estimator has integer keys; got {type(key).__name__} "
                                f"key {key!r}") from None
        t = self.table
        if t is not None:                    # the table holds every key while it exists
            return int(t[key]) if 0 <= key < t.shape[0] else -1
        pos = self._pos
        if pos is None:
            pos = self._pos = dict(zip(self.keys.tolist(), self.slots.tolist()))
        return pos.get(key, -1)

    @staticmethod
    def coerce(keys) -> np.ndarray:
        arr = np.asarray(keys)
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"integer keys must fit in int64; got {arr.max()} (a uint64 key "
                             "above 2**63 - 1 would merge with a negative one)")
        try:
            return np.ascontiguousarray(arr, np.int64).reshape(-1)
        except (OverflowError, TypeError):
            raise ValueError("integer keys must fit in int64") from None

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        if self.table is not None:
            inside = (keys >= 0) & (keys < self.table.shape[0])
            if inside.all():
                return self.table[keys]
            out = np.full(keys.shape[0], -1, np.int64)
            out[inside] = self.table[keys[inside]]
            return out
        if len(self) == 0:
            return np.full(keys.shape[0], -1, np.int64)
        pos = np.searchsorted(self.keys, keys)
        np.minimum(pos, len(self) - 1, out=pos)
        return np.where(self.keys[pos] == keys, self.slots[pos], -1)

    def add(self, new_keys: np.ndarray, new_slots: np.ndarray) -> None:
        """Insert keys known to be absent (unique) with their slots."""
        o = np.argsort(new_keys, kind="stable")
        nk, ns = new_keys[o], new_slots[o]
        pos = np.searchsorted(self.keys, nk)
        self.keys = np.insert(self.keys, pos, nk)
        self.slots = np.insert(self.slots, pos, ns)
        if self._pos is not None:
            self._pos.update(zip(nk.tolist(), ns.tolist()))
        if self.table is not None and nk.shape[0]:
            lo, hi = int(nk[0]), int(nk[-1])
            limit = max(1 << 20, 4 * len(self))
            if lo < 0 or hi >= limit:
                self.table = None                  # sparse or negative ids: binary search
            else:
                if hi >= self.table.shape[0]:
                    t = np.full(min(limit, max(hi + 1, 2 * self.table.shape[0])), -1, np.int64)
                    t[:self.table.shape[0]] = self.table
                    self.table = t
                self.table[nk] = ns

    def remove(self, keys: np.ndarray) -> None:
        keep = ~np.isin(self.keys, keys)
        self.keys, self.slots = self.keys[keep], self.slots[keep]
        if self._pos is not None:
            for k in np.asarray(keys, np.int64).tolist():
                self._pos.pop(k, None)
        if self.table is not None:
            k = np.asarray(keys, np.int64)
            k = k[(k >= 0) & (k < self.table.shape[0])]
            self.table[k] = -1

    def unique_new(self, keys: np.ndarray) -> np.ndarray:
        s = np.sort(keys)
        if s.shape[0] < 2:
            return s
        keep = np.empty(s.shape[0], bool)
        keep[0] = True
        np.not_equal(s[1:], s[:-1], out=keep[1:])
        return s[keep]

    def items(self):
        o = np.argsort(self.slots, kind="stable")
        return self.keys[o], self.slots[o]


class ObjectKeyMap:
    """Hashable keys (str, tuples, ...) in a dict. Only int/str keys can be saved."""

    kind = "object"

    def __init__(self):
        self.map: dict = {}

    def __len__(self):
        return len(self.map)

    def lookup_one(self, key) -> int:
        return self.map.get(key, -1)

    @staticmethod
    def coerce(keys) -> list:
        if isinstance(keys, np.ndarray):
            if keys.dtype.kind in "fc" and np.isnan(keys).any():
                raise ValueError("NaN is not a valid key (NaN != NaN: every row would get a "
                                 "new state)")
            return keys.reshape(-1).tolist()
        out = list(keys)
        for k in out:
            if isinstance(k, float) and k != k:
                raise ValueError("NaN is not a valid key (NaN != NaN: every row would get a "
                                 "new state)")
        return out

    def lookup(self, keys: list) -> np.ndarray:
        get = self.map.get
        return np.fromiter((get(k, -1) for k in keys), np.int64, len(keys))

    def add(self, new_keys: list, new_slots: np.ndarray) -> None:
        self.map.update(zip(new_keys, new_slots.tolist()))

    def remove(self, keys) -> None:
        for k in keys:
            self.map.pop(k, None)

    def unique_new(self, keys: list) -> list:
        return list(dict.fromkeys(keys))

    def items(self):
        ks = list(self.map.keys())
        sl = np.fromiter(self.map.values(), np.int64, len(ks))
        o = np.argsort(sl, kind="stable")
        return [ks[i] for i in o], sl[o]


def make_keymap(keys):
    arr = keys if isinstance(keys, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(keys)
        except Exception:  # noqa: BLE001 - ragged tuples etc.
            return ObjectKeyMap()
    return IntKeyMap() if arr.dtype.kind in "iub" else ObjectKeyMap()
