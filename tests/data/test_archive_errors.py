"""Dataset archives that are not what they claim: one error type (ArchiveError, a
pygad.InvalidArchiveError) whose message names the file."""
from __future__ import annotations

import numpy as np
import pytest

import pygad
from pygad.datasets import ArchiveError, load_npz


def _graph_arrays():
    return {"x": np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32),
            "y": np.array([0, 1, 0, 0]), "edge_index": np.array([[0, 1, 2], [1, 2, 3]])}


@pytest.mark.parametrize("case", ["npy", "empty", "truncated", "complex_x", "complex_weight"])
def test_bad_dataset_archive(tmp_path, case):
    p = tmp_path / f"{case}.npz"
    a = _graph_arrays()
    if case == "npy":
        with open(p, "wb") as f:
            np.save(f, a["x"])
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "truncated":
        np.savez(p, **a)
        p.write_bytes(p.read_bytes()[:100])
    elif case == "complex_x":
        np.savez(p, **{**a, "x": a["x"] + 1j})
    elif case == "complex_weight":
        np.savez(p, **a, edge_weight=np.ones(3, np.complex128))
    with pytest.raises(ArchiveError) as info:
        load_npz(p)
    assert str(p) in str(info.value)
    assert isinstance(info.value, pygad.InvalidArchiveError) and isinstance(info.value, ValueError)


def test_good_archive_loads(tmp_path):
    p = tmp_path / "ok.npz"
    np.savez(p, **_graph_arrays())
    assert load_npz(p).num_nodes["node"] == 4
