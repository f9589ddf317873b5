"""Key -> state-slot maps for the keyed estimators (slot 0 is the un-keyed stream)."""
from __future__ import annotations

import numpy as np


class IntKeyMap:
    """Integer keys in a sorted array (binary search): 1M keys cost 16 MB and O(log K)/lookup."""

    kind = "int"

    def __init__(self):
        self.keys = np.empty(0, np.int64)   # sorted
        self.slots = np.empty(0, np.int64)  # slot of keys[i]

    def __len__(self):
        return self.keys.shape[0]

    @staticmethod
    def coerce(keys) -> np.ndarray:
        return np.ascontiguousarray(keys, np.int64).reshape(-1)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
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

    def remove(self, keys: np.ndarray) -> None:
        keep = ~np.isin(self.keys, keys)
        self.keys, self.slots = self.keys[keep], self.slots[keep]

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

    @staticmethod
    def coerce(keys) -> list:
        if isinstance(keys, np.ndarray):
            return keys.reshape(-1).tolist()
        return list(keys)

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
