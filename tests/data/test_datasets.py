"""Dataset loading: the embedded default, the archive format, derived features, bad archives."""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from pygad.testing import dataset_path

from pygad import datasets
from pygad.data import HeteroGraph
from pygad.datasets import ArchiveError, load, load_npz, structural_features

REPO = Path(__file__).resolve().parents[2]
ET = ("node", "to", "node")


# ---- embedded default (always runs) ----------------------------------------------------------
def test_embedded_default_books():
    g = load()
    assert g.name == "books" and g.num_nodes == {"node": 1418}
    assert g.x["node"].shape == (1418, 21)
    assert int((g.y["node"] == 1).sum()) == 28
    assert g.num_edges() == 3695
    assert not g.features_derived
    assert load("books").num_nodes == {"node": 1418}


def test_embedded_files_in_wheel_config():
    emb = REPO / "pygad" / "datasets" / "_embedded"
    for f in ("books.npz", "LICENSE-pygod-data-MIT.txt", "PROVENANCE.md"):
        assert (emb / f).is_file(), f
    assert "MIT License" in (emb / "LICENSE-pygod-data-MIT.txt").read_text()
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    # scikit-build-core copies every file under the listed package folders into the wheel
    assert "pygad" in cfg["tool"]["scikit-build"]["wheel"]["packages"]
    excluded = cfg["tool"]["scikit-build"].get("wheel", {}).get("exclude", [])
    assert not any("npz" in e or "_embedded" in e for e in excluded)


def test_available_and_find_errors():
    assert "books" in datasets.available()
    with pytest.raises(FileNotFoundError, match="dataset 'no_such_set' not found"):
        load("no_such_set")
    with pytest.raises(FileNotFoundError, match="no dataset archive"):
        load("/nonexistent/x.npz")


# ---- the archive format on synthetic archives ------------------------------------------------
def _save(tmp_path, name="g.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


def test_homogeneous_with_masks(tmp_path):
    n = 8
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0], np.uint8)
    tr = np.zeros((2, n), bool)
    tr[0, :4] = tr[1, 4:] = True
    p = _save(tmp_path, x=np.ones((n, 3), np.float32), y=y, edge_index=np.array([[0, 1, 2], [1, 2, 3]]),
              num_nodes=np.int64(n), train_masks=tr, test_masks=~tr, edge_time=np.array([1.0, 2.0, 3.0]))
    g = load_npz(p)
    assert g.num_splits("node") == 2 and g.is_temporal
    np.testing.assert_array_equal(g.split("node", 1)[0], tr[1])


def test_multirelational_without_features_derives_them(tmp_path):
    p = _save(tmp_path, y=np.array([0, 1, 0, 0], np.uint8), num_nodes=np.int64(4),
              relations=np.array(["a", "b"]), edge_index__a=np.array([[0, 1], [1, 0]]),
              edge_index__b=np.array([[0, 2, 3], [3, 3, 1]]))
    g = load_npz(p)
    assert set(g.edge_types) == {("node", "a", "node"), ("node", "b", "node")}
    assert g.features_derived == {"node"}
    names = g.feature_names["node"]
    assert g.x["node"].shape == (4, len(names))
    assert "a:in:log_degree" in names and "b:out:log_degree" in names
    assert "a:out:log_degree" not in names  # relation a is symmetric
    # b in-degree of node 3 is 2
    np.testing.assert_allclose(g.x["node"][3, names.index("b:in:log_degree")], np.log1p(2), rtol=1e-6)
    # raw loading keeps x absent
    assert "node" not in load_npz(p, derive_features=False).x


def test_structural_features_neighbor_stats_and_weights():
    ei = np.array([[0, 1, 2, 2], [2, 2, 0, 3]])  # not symmetric: 2 -> 3 has no reverse
    g = HeteroGraph.homogeneous(ei, 4, edge_attr=np.array([1.0, 3.0, -2.0, 5.0]))
    x, names = structural_features(g, "node")
    col = {n: x[:, i] for i, n in enumerate(names)}
    # node 2 receives from 0 and 1 (out-degree 1 each): mean = max = log1p(1)
    np.testing.assert_allclose(col["to:in:nbr_log_degree_mean"][2], np.log1p(1), rtol=1e-6)
    np.testing.assert_allclose(col["to:in:edge_attr0_mean"][2], 2.0)
    np.testing.assert_allclose(col["to:in:edge_attr0_min"][2], 1.0)
    np.testing.assert_allclose(col["to:out:edge_attr0_max"][2], 5.0)
    np.testing.assert_allclose(col["to:out:edge_attr0_min"][2], -2.0)
    assert col["to:in:log_degree"][1] == 0.0


@pytest.mark.parametrize("arrays, match", [
    (dict(edge_index=np.array([[0], [1]])), "missing key 'y'"),
    (dict(y=np.zeros(3, np.uint8)), "missing key 'edge_index'"),
    (dict(y=np.array([0, 2, 1]), edge_index=np.array([[0], [1]])), r"labels outside \{-1, 0, 1\}.*\[2\]"),
    (dict(y=np.zeros(3, np.uint8), edge_index=np.array([[0], [1]]), train_mask=np.ones(4, bool)),
     r"mask 'train_mask'.*shape \[3\]"),
    (dict(y=np.zeros(3, np.uint8), edge_index=np.array([[0], [7]])), "destination index out of range"),
    (dict(y=np.zeros(3, np.uint8), edge_index=np.array([[0], [1]]), x=np.ones((2, 2))), r"'x'.*shape \[3, F\]"),
    (dict(y=np.zeros(3, np.uint8), relations=np.array(["a", "b"]), edge_index__a=np.array([[0], [1]])),
     "no key 'edge_index__b'"),
    (dict(y=np.zeros(3, np.uint8), edge_index=np.array([[0], [1]]), val_mask=np.ones(3, bool)), "no 'train_mask'"),
])
def test_bad_archives(tmp_path, arrays, match):
    with pytest.raises(ArchiveError, match=match):
        load_npz(_save(tmp_path, **arrays))


def test_truncated_and_garbage_archives(tmp_path):
    good = _save(tmp_path, y=np.zeros(100, np.uint8), edge_index=np.zeros((2, 1000), np.int64))
    raw = good.read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ArchiveError, match="truncated|not a valid"):
        load_npz(trunc)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ArchiveError, match="cannot read"):
        load_npz(junk)
    obj = tmp_path / "obj.npz"
    np.savez(obj, y=np.array([{"a": 1}], dtype=object), edge_index=np.zeros((2, 1), np.int64))
    with pytest.raises(ArchiveError, match="pickle"):
        load_npz(obj)


def test_labelled_mask_gives_unknown_labels(tmp_path):
    p = _save(tmp_path, y=np.array([1, 0, 0], np.uint8), labelled_mask=np.array([True, False, True]),
              edge_index=np.array([[0], [1]]), edge_weight=np.array([2.0], np.float32))
    g = load_npz(p)
    np.testing.assert_array_equal(g.y["node"], [1, -1, 0])
    assert ET in g.edge_attr and any("edge_attr0" in n for n in g.feature_names["node"])


# ---- the real archives (skipped without the shared data folder) ------------------------------
@pytest.mark.parametrize("name, n, derived", [("disney", 124, False), ("reddit", 10984, False),
                                               ("inj_cora", 2708, False), ("bitcoin_otc_rev2", 5881, True)])
def test_real_homogeneous(name, n, derived):
    g = load_npz(dataset_path(f"{name}.npz"))
    assert g.num_nodes == {"node": n}
    assert bool(g.features_derived) == derived
    if name == "inj_cora":
        assert g.num_splits("node") == 1
    if name == "bitcoin_otc_rev2":
        assert g.is_temporal and int((g.y["node"] >= 0).sum()) == 316


def test_real_yelpchi_bipartite():
    g = load_npz(dataset_path("yelpchi_reviews_bipartite.npz"))
    assert g.num_nodes == {"user": 38063, "product": 201}
    assert set(g.edge_types) == {("user", "review", "product"), ("product", "rev_review", "user")}
    assert g.target_type() == "user" and int(g.y["user"].sum()) == 7739
    assert g.features_derived == {"user", "product"}


@pytest.mark.slow
def test_real_yelpchi_multirelational():
    g = load_npz(dataset_path("yelpchi_2rel_nofeat.npz"))
    assert set(g.edge_types) == {("node", "rur", "node"), ("node", "rtr", "node")}
    assert g.features_derived == {"node"} and g.x["node"].shape[0] == 45954
