"""Stream state archives: every field validated on load, one error type naming the file.

A bad archive (empty, truncated, a bare .npy, a garbled version, missing or malformed
metadata, foreign parameters, arrays of the wrong dtype or shape, duplicate keys) raises
pygad.InvalidArchiveError (an OSError and a ValueError); interrupted saves leave no
temporary files behind.
"""
from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest

import pygad
from pygad.stream import AdaptiveThreshold, ClippedSGDMean
from pygad.stream import state as S


@pytest.fixture(scope="module")
def keyed_state():
    det = ClippedSGDMean()
    rng = np.random.default_rng(0)
    det.learn_many(rng.normal(size=(64, 3)), keys=np.arange(64) % 4)
    return det.state_dict()


def _bytes(state) -> bytes:
    return S.to_bytes(state)


def _tamper(state, **changes):
    st = dict(state)
    for k, v in changes.items():
        if v is None:
            st.pop(k, None)
        else:
            st[k] = v
    return st


def _meta(state, **params):
    meta = json.loads(str(state["__meta__"]))
    meta["params"].update(params)
    return np.array(json.dumps(meta))


BAD = {
    "empty bytes": lambda st: b"",
    "truncated": lambda st: _bytes(st)[: len(_bytes(st)) // 2],
    "garbage": lambda st: b"PK\x03\x04 not a zip at all",
    "npy": lambda st: (lambda b: (np.save(b, np.zeros(3)), b.getvalue())[1])(io.BytesIO()),
    "no format": lambda st: _bytes(_tamper(st, __format__=None)),
    "garbled version": lambda st: _bytes(_tamper(st, __format__=np.array("pygad.stream/1x"))),
    "version 0": lambda st: _bytes(_tamper(st, __format__=np.array("pygad.stream/0"))),
    "newer version": lambda st: _bytes(_tamper(st, __format__=np.array("pygad.stream/99"))),
    "format not text": lambda st: _bytes(_tamper(st, __format__=np.arange(3))),
    "no meta": lambda st: _bytes(_tamper(st, __meta__=None)),
    "meta not json": lambda st: _bytes(_tamper(st, __meta__=np.array("{class: oops"))),
    "meta not object": lambda st: _bytes(_tamper(st, __meta__=np.array("[1, 2]"))),
    "foreign parameter": lambda st: _bytes(_tamper(st, __meta__=_meta(st, learn_many="x"))),
    "parameter type": lambda st: _bytes(_tamper(st, __meta__=_meta(st, lr="fast"))),
    "parameter value": lambda st: _bytes(_tamper(st, __meta__=_meta(st, alpha=7.0))),
    "parameter list": lambda st: _bytes(_tamper(st, __meta__=_meta(st, lr=[1, 2]))),
    "other class": lambda st: _bytes(_tamper(st, __meta__=np.array(json.dumps({"class": "Foo", "params": {}})))),
    "unknown array": lambda st: _bytes(_tamper(st, evil=np.zeros(2))),
    "unknown entry": lambda st: _bytes(_tamper(st, __init__=np.zeros(2))),
    "no scalars": lambda st: _bytes(_tamper(st, scalars=None)),
    "vectors int": lambda st: _bytes(_tamper(st, vectors=st["vectors"].astype(np.int64))),
    "vectors 2-D": lambda st: _bytes(_tamper(st, vectors=st["vectors"][:, 0])),
    "scalars rows": lambda st: _bytes(_tamper(st, scalars=st["scalars"][:-1])),
    "keys missing": lambda st: _bytes(_tamper(st, keys_int=None)),
    "keys duplicate": lambda st: _bytes(_tamper(st, keys_int=np.array([0, 1, 1, 3]))),
    "keys short": lambda st: _bytes(_tamper(st, keys_int=np.array([0, 1]))),
    "keys float": lambda st: _bytes(_tamper(st, keys_int=np.array([0.0, 1.0, 2.0, 3.0]))),
    "keys both": lambda st: _bytes(_tamper(st, keys_str=np.array(["a", "b", "c", "d"]))),
    "feature names length": lambda st: _bytes(_tamper(st, feature_names=np.array(["a"]))),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_archive_bytes(keyed_state, case):
    with pytest.raises(pygad.InvalidArchiveError):
        ClippedSGDMean.from_bytes(BAD[case](keyed_state))


@pytest.mark.parametrize("case", ["truncated", "npy", "garbled version", "foreign parameter", "keys duplicate"])
def test_bad_archive_file_names_the_path(tmp_path, keyed_state, case):
    p = tmp_path / f"{case.replace(' ', '_')}.npz"
    p.write_bytes(BAD[case](keyed_state))
    with pytest.raises(pygad.InvalidArchiveError) as info:
        ClippedSGDMean.load(p)
    assert str(p) in str(info.value)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


def test_good_archive_still_loads(tmp_path, keyed_state):
    det = ClippedSGDMean.from_bytes(_bytes(keyed_state))
    p = tmp_path / "ok.npz"
    det.save(p)
    again = ClippedSGDMean.load(p)
    for k in ("vectors", "scalars", "keys_int"):
        np.testing.assert_array_equal(again.state_dict()[k], keyed_state[k])


def test_failed_load_leaves_the_estimator_unchanged(keyed_state):
    det = ClippedSGDMean(lr=0.3)
    with pytest.raises(pygad.InvalidArchiveError):
        det.load_state_dict(_tamper(keyed_state, __meta__=_meta(keyed_state, lr="fast")))
    assert det.lr == 0.3


def test_threshold_archive_validated():
    th = AdaptiveThreshold()
    th.learn_many(np.random.default_rng(0).random(50))
    st = th.state_dict()
    for bad in (_tamper(st, __meta__=_meta(st, _check="x")), _tamper(st, __meta__=_meta(st, quantile="hi")),
                _tamper(st, __meta__=_meta(st, quantile=2.0)), _tamper(st, scalars=np.zeros((2, 3))),
                _tamper(st, other=np.zeros(1))):
        with pytest.raises(pygad.InvalidArchiveError):
            AdaptiveThreshold().load_state_dict(bad)
    assert AdaptiveThreshold().load_state_dict(st).get_params() == th.get_params()


def test_interrupted_save_leaves_no_temp_file(tmp_path, monkeypatch):
    det = ClippedSGDMean()
    det.learn_many(np.zeros((4, 2)))
    target = tmp_path / "state.npz"

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        det.save(target)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_next_save_removes_stale_temp_files(tmp_path):
    target = tmp_path / "state.npz"
    stale = tmp_path / ".tmp-state.npz-abc123.npz"       # left by a save killed with SIGKILL
    fresh = tmp_path / ".tmp-state.npz-def456.npz"       # a concurrent save still writing
    other = tmp_path / ".tmp-other.npz-xyz.npz"          # another target's
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    det = ClippedSGDMean()
    det.learn_many(np.zeros((4, 2)))
    det.save(target)
    assert target.exists() and not stale.exists() and fresh.exists() and other.exists()
