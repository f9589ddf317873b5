"""HeteroGraph: validation, cached CSR/CSC, reverse edges, NumPy/pandas/PyG interop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pygad.data import HeteroGraph
from pygad.ops import _reference

ET = ("node", "to", "node")


def _random_graph(n=30, e=100, f=4, seed=0):
    rng = np.random.default_rng(seed)
    ei = rng.integers(0, n, size=(2, e))
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = (rng.random(n) < 0.2).astype(np.int64)
    return HeteroGraph.homogeneous(ei, n, x=x, y=y, name="rand")


def test_homogeneous_basics():
    g = _random_graph()
    assert g.is_homogeneous and not g.is_temporal
    assert g.node_types == ["node"] and g.edge_types == [ET]
    assert g.metadata() == (["node"], [ET])
    assert g.x["node"].dtype == np.float32 and g.y["node"].dtype == np.int8
    assert g.edge_index[ET].dtype == np.int64
    assert g.num_edges() == 100 and g.num_edges(ET) == 100
    assert g.target_type() == "node"
    assert "rand" in repr(g)


def test_csr_matches_reference_and_is_cached():
    g = _random_graph()
    rowptr, col, eid = g.csr(ET)
    ref = _reference.hetero_csr([torch.from_numpy(g.edge_index[ET])], [30], 30)
    np.testing.assert_array_equal(rowptr, ref[0].numpy())
    np.testing.assert_array_equal(col, ref[1].numpy())
    np.testing.assert_array_equal(eid, ref[3].numpy())
    assert g.csr(ET) is g.csr(ET)
    np.testing.assert_array_equal(g.degree(ET, "in"), np.bincount(g.edge_index[ET][1], minlength=30))
    np.testing.assert_array_equal(g.degree(ET, "out"), np.bincount(g.edge_index[ET][0], minlength=30))
    colptr, row, perm = g.csc(ET)
    # every CSC entry is the CSR entry perm points to
    dst_of_csr = np.repeat(np.arange(30), np.diff(rowptr))
    np.testing.assert_array_equal(row, dst_of_csr[perm])
    np.testing.assert_array_equal(np.repeat(np.arange(30), np.diff(colptr)), col[perm])


def test_merged_csr_per_destination_type():
    ei_a = np.array([[0, 1, 2], [1, 1, 0]])
    ei_b = np.array([[0, 1], [0, 1]])
    g = HeteroGraph({"u": 3, "p": 2}, {("u", "a", "u"): ei_a, ("p", "b", "u"): ei_b})
    rowptr, col, rel, eid, ets = g.csr("u")
    assert ets == [("u", "a", "u"), ("p", "b", "u")]
    np.testing.assert_array_equal(rowptr, [0, 2, 5, 5])
    # node 0 receives from u2 (rel 0) and p0 (col 3 + 0, rel 1)
    assert sorted(zip(col[0:2].tolist(), rel[0:2].tolist())) == [(2, 0), (3, 1)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(edge_index={ET: np.array([[0, 5], [1, 2]])}), r"edge_index\[\('node', 'to', 'node'\)\].*source index out of range"),
    (dict(edge_index={ET: np.array([[0, 1], [1, -1]])}), r"destination index out of range"),
    (dict(edge_index={ET: np.zeros((3, 2), np.int64)}), r"edge_index.*shape \[2, E\]"),
    (dict(x={"node": np.zeros((4, 2))}), r"'x\['node'\]' must have shape \[5, F\]"),
    (dict(y={"node": np.array([0, 1, 2, 0, 0])}), r"'y\['node'\]' has labels outside \{-1, 0, 1\}"),
    (dict(y={"node": np.zeros(3)}), r"'y\['node'\]' must have shape \[5\]"),
    (dict(masks={"node": {"train": np.ones(4, bool)}}), r"mask 'train' of node type 'node' must have shape \[5\]"),
    (dict(x={"node": np.full((5, 1), np.nan)}), r"NaN"),
    (dict(edge_time={ET: np.zeros(3)}), r"edge_time.*shape \[2\]"),
    (dict(masks={"other": {"train": np.ones(5, bool)}}), r"'masks' has unknown node type 'other'"),
])
def test_validation_names_the_array(kwargs, match):
    base = dict(edge_index={ET: np.array([[0, 1], [1, 2]])})
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        HeteroGraph({"node": 5}, **base)


def test_validation_dtypes():
    with pytest.raises(TypeError, match=r"edge_index.*integer dtype"):
        HeteroGraph({"node": 3}, {ET: np.array([[0.0, 1.0], [1.0, 2.0]])})
    with pytest.raises(TypeError, match=r"'x\['node'\]' must be numeric"):
        HeteroGraph({"node": 2}, {ET: np.array([[0], [1]])}, x={"node": np.array([["a"], ["b"]])})
    with pytest.raises(ValueError, match="unknown node count"):
        HeteroGraph({"node": 2}, {("node", "r", "item"): np.array([[0], [0]])})


def test_split_and_target():
    n = 6
    tr = np.array([1, 1, 0, 0, 0, 0], bool)
    va = np.array([0, 0, 1, 0, 0, 0], bool)
    g = HeteroGraph.homogeneous(np.array([[0], [1]]), n, y=np.array([0, 1, 0, 1, -1, 0]),
                                masks={"train": tr, "val": va})
    assert g.num_splits("node") == 1
    a, b, c = g.split("node", 0)
    np.testing.assert_array_equal(c, ~(tr | va))
    with pytest.raises(ValueError, match="split 1 out of range"):
        g.split("node", 1)
    stacked = HeteroGraph.homogeneous(np.array([[0], [1]]), n, y=np.zeros(n),
                                      masks={"train": np.stack([tr, va]), "test": np.stack([va, tr])})
    assert stacked.num_splits("node") == 2
    np.testing.assert_array_equal(stacked.split("node", 1)[0], va)
    two = HeteroGraph({"a": 2, "b": 2}, {}, y={"a": np.array([0, 1]), "b": np.array([1, 0])})
    with pytest.raises(ValueError, match="several node types carry labels"):
        two.target_type()
    assert two.target_type("b") == "b"


def test_reverse_edges_and_symmetry():
    sym = HeteroGraph.homogeneous(np.array([[0, 1, 2, 1], [1, 0, 1, 2]]), 3)
    assert sym.is_symmetric(ET)
    assert sym.with_reverse_edges().edge_types == [ET]
    directed = HeteroGraph.homogeneous(np.array([[0, 1], [1, 2]]), 3)
    assert not directed.is_symmetric(ET)
    r = directed.with_reverse_edges()
    np.testing.assert_array_equal(r.edge_index[("node", "rev_to", "node")], [[1, 2], [0, 1]])
    bip = HeteroGraph({"u": 2, "p": 1}, {("u", "buys", "p"): np.array([[0, 1], [0, 0]])})
    assert ("p", "rev_buys", "u") in bip.with_reverse_edges().edge_types


def test_from_edges_numpy_and_pandas():
    pd = pytest.importorskip("pandas")
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    g = HeteroGraph.from_edges(src, dst, edge_time=np.arange(4.0), y=np.array([0, 0, 1, 0]))
    assert g.num_nodes == {"node": 4} and g.is_temporal
    np.testing.assert_array_equal(g.edge_time[ET], np.arange(4.0))
    df = pd.DataFrame({"src": src, "dst": dst, "rel": ["a", "b", "a", "b"], "time": [1.0, 2, 3, 4],
                       "w": [0.5, 1, 1, 2]})
    g2 = HeteroGraph.from_edges(df=df, num_nodes=5, attr_cols=["w"])
    assert set(g2.edge_types) == {("node", "a", "node"), ("node", "b", "node")}
    np.testing.assert_array_equal(g2.edge_index[("node", "a", "node")], [[0, 2], [1, 3]])
    np.testing.assert_array_equal(g2.edge_time[("node", "b", "node")], [2.0, 4.0])
    assert g2.edge_attr[("node", "b", "node")].shape == (2, 1)
    with pytest.raises(ValueError, match="no column 'src'"):
        HeteroGraph.from_edges(df=df.rename(columns={"src": "s"}))
    with pytest.raises(ValueError, match="equal length"):
        HeteroGraph.from_edges(np.array([0, 1]), np.array([1]))


def test_pyg_roundtrip_homogeneous():
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    g = _random_graph()
    d = g.to_pyg()
    assert isinstance(d, Data) and d.num_nodes == 30
    back = HeteroGraph.from_pyg(d)
    np.testing.assert_array_equal(back.edge_index[ET], g.edge_index[ET])
    np.testing.assert_array_equal(back.x["node"], g.x["node"])
    np.testing.assert_array_equal(back.y["node"], g.y["node"])
    # a PyG Data built by hand, with masks and time
    d2 = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([0, 1, 0]),
              train_mask=torch.tensor([True, True, False]), time=torch.tensor([1.0, 2.0]))
    g2 = HeteroGraph.from_pyg(d2)
    assert g2.num_splits("node") == 1 and g2.is_temporal


def test_pyg_roundtrip_hetero():
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import HeteroData

    g = HeteroGraph({"user": 3, "item": 2}, {("user", "buys", "item"): np.array([[0, 1, 2], [0, 1, 1]]),
                                             ("item", "rev_buys", "user"): np.array([[0, 1, 1], [0, 1, 2]])},
                    x={"user": np.ones((3, 2)), "item": np.zeros((2, 4))}, y={"user": np.array([0, 1, -1])},
                    edge_time={("user", "buys", "item"): np.array([1.0, 2.0, 3.0])})
    d = g.to_pyg()
    assert isinstance(d, HeteroData)
    back = HeteroGraph.from_pyg(d)
    assert back.num_nodes == {"user": 3, "item": 2}
    assert set(back.edge_types) == set(g.edge_types)
    np.testing.assert_array_equal(back.y["user"], [0, 1, -1])
    np.testing.assert_array_equal(back.edge_time[("user", "buys", "item")], [1.0, 2.0, 3.0])


def test_torch_views_and_replace():
    g = _random_graph()
    xd, ed = g.x_dict(), g.edge_index_dict()
    assert xd["node"].dtype == torch.float32 and ed[ET].dtype == torch.int64
    g2 = g.replace(y={"node": np.zeros(30)})
    assert (g2.y["node"] == 0).all() and g2.edge_index[ET] is g.edge_index[ET]
