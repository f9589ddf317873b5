"""pygad.nn.HGTConv as a drop-in for torch_geometric.nn.HGTConv: the behaviours of PyG's own
HGTConv tests (lazy widths, sparse adjacency input, different widths, out-of-place, a node
type that receives no message, repr), and equal outputs to PyG's layer with copied weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_hgt import METADATA, assert_same_outputs_and_input_grads, make_graph, pyg_pair

from pygad.nn import HGT, HGTConv


def author_paper(width_author=16, width_paper=16, seed=0, edges=20):
    """PyG's test graph: 4 authors, 6 papers, writes / written_by (coalesced, so sorted)."""
    g = torch.Generator().manual_seed(seed)
    x = {"author": torch.randn(4, width_author, generator=g), "paper": torch.randn(6, width_paper, generator=g)}
    ei = torch.stack([torch.randint(0, 4, (edges,), generator=g), torch.randint(0, 6, (edges,), generator=g)])
    ei = torch.unique(ei[0] * 6 + ei[1])            # coalesce: sorted, no duplicates
    ei = torch.stack([ei // 6, ei % 6])
    eid = {("author", "writes", "paper"): ei, ("paper", "written_by", "author"): ei.flip([0])}
    return x, eid, (list(x), list(eid))


def adj_t(eid, x, layout):
    """PyG's ``to_torch_csc_tensor(edge_index, size=(N_src, N_dst)).t()`` and its CSC / COO twins."""
    out = {}
    for (s, r, d), ei in eid.items():
        a = torch.sparse_coo_tensor(ei, torch.ones(ei.shape[1]), (x[s].shape[0], x[d].shape[0])).coalesce()
        if layout == "csr":      # CSC [N_src, N_dst] transposed: CSR [N_dst, N_src]
            out[(s, r, d)] = a.to_sparse_csc().t()
        elif layout == "csc":    # CSR [N_src, N_dst] transposed: CSC [N_dst, N_src]
            out[(s, r, d)] = a.to_sparse_csr().t()
        else:
            out[(s, r, d)] = a.t().coalesce()
    return out


@pytest.mark.parametrize("heads", [1, 2])
def test_same_dimensions_and_repr(heads):
    x, eid, md = author_paper()
    conv = HGTConv(16, 16, md, heads=heads)
    assert str(conv) == f"HGTConv(-1, 16, heads={heads})"
    out = conv(x, eid)
    assert len(out) == 2 and out["author"].shape == (4, 16) and out["paper"].shape == (6, 16)


@pytest.mark.parametrize("layout", ["csr", "csc", "coo"])
def test_sparse_adjacency_equals_edge_index_forward_and_backward(layout):
    x, eid, md = author_paper(16, 32)
    conv = HGTConv({"author": 16, "paper": 32}, 32, md, heads=2)
    adj = adj_t(eid, x, layout)
    assert all(a.layout == {"csr": torch.sparse_csr, "csc": torch.sparse_csc, "coo": torch.sparse_coo}[layout]
               for a in adj.values())
    results = []
    for graph in (eid, adj):
        conv.zero_grad()
        xs = {k: v.clone().requires_grad_() for k, v in x.items()}
        out = conv(xs, graph)
        sum((o * torch.arange(o.numel()).view_as(o).sin()).sum() for o in out.values()).backward()
        results.append(({k: o.detach() for k, o in out.items()}, {k: v.grad for k, v in xs.items()},
                        {n: p.grad.clone() for n, p in conv.named_parameters()}))
    (out1, gx1, gp1), (out2, gx2, gp2) = results
    assert sorted(out1) == sorted(out2)
    for k in out1:
        torch.testing.assert_close(out2[k], out1[k], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(gx2[k], gx1[k], atol=1e-6, rtol=1e-6)
    for n in gp1:
        torch.testing.assert_close(gp2[n], gp1[n], atol=1e-5, rtol=1e-5)


def test_sparse_adjacency_of_wrong_shape_is_a_clear_error():
    x, eid, md = author_paper()
    adj = adj_t(eid, x, "csr")
    adj[("author", "writes", "paper")] = adj[("author", "writes", "paper")].t()   # [N_src, N_dst]: not adj_t
    with pytest.raises(ValueError, match=r"transposed adjacency must have shape \[N_dst, N_src\] = \[6, 4\]"):
        HGTConv(16, 16, md)(x, adj)


def test_torch_sparse_adjacency_when_installed():
    torch_sparse = pytest.importorskip("torch_sparse", reason="torch_sparse is not installed")
    x, eid, md = author_paper()
    conv = HGTConv(16, 16, md, heads=2)
    adj = {et: torch_sparse.SparseTensor.from_edge_index(ei, sparse_sizes=(x[et[0]].shape[0], x[et[2]].shape[0])).t()
           for et, ei in eid.items()}
    out1, out2 = conv(x, eid), conv(x, adj)
    for k in out1:
        torch.testing.assert_close(out2[k], out1[k], atol=1e-6, rtol=1e-6)


def test_adjacency_is_converted_once_per_graph(monkeypatch):
    """The structure cache is keyed by the adjacency objects: a second forward converts nothing."""
    import pygad.nn._structure as structure
    x, eid, md = author_paper()
    adj = adj_t(eid, x, "csr")
    conv = HGTConv(16, 16, md)
    conv(x, adj)
    calls = []
    monkeypatch.setattr(structure, "as_edge_index", lambda a: calls.append(a) or a)
    conv(x, adj)
    assert calls == []


def test_different_dimensions():
    x, eid, md = author_paper(16, 32)
    conv = HGTConv(in_channels={"author": 16, "paper": 32}, out_channels=32, metadata=md, heads=2)
    assert str(conv) == "HGTConv(-1, 32, heads=2)"
    out = conv(x, eid)
    assert out["author"].shape == (4, 32) and out["paper"].shape == (6, 32)
    out2 = conv(x, adj_t(eid, x, "csr"))
    for k in out:
        torch.testing.assert_close(out2[k], out[k], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("in_channels", [-1, {"author": -1, "paper": 32}])
def test_lazy_input_widths(in_channels):
    x, eid, md = author_paper(16, 32)
    conv = HGTConv(in_channels, 32, md, heads=2)
    assert str(conv) == "HGTConv(-1, 32, heads=2)"
    out = conv(x, eid)
    assert out["author"].shape == (4, 32) and out["paper"].shape == (6, 32)
    assert conv.kqv_lin["author"].weight.shape == (96, 16) and conv.kqv_lin["paper"].weight.shape == (96, 32)
    out2 = conv(x, adj_t(eid, x, "csc"))   # materialised once: the same weights the second time
    for k in out:
        torch.testing.assert_close(out2[k], out[k], atol=1e-6, rtol=1e-6)
    sum(o.sum() for o in out2.values()).backward()
    assert conv.kqv_lin["author"].weight.grad is not None
    with pytest.raises(ValueError, match=r"shape \[N, 16\]"):
        conv({**x, "author": torch.randn(4, 8)}, eid)


def test_lazy_layer_from_a_lazy_pyg_layer_and_parity_once_materialised():
    """from_pyg of a PyG layer built with -1, before and after its first forward."""
    pyg_nn = pytest.importorskip("torch_geometric.nn")
    x, eid, md = author_paper(16, 32)
    torch.manual_seed(0)
    theirs = pyg_nn.HGTConv(-1, 32, md, heads=2)
    early = HGTConv.from_pyg(theirs)                    # PyG's input weights do not exist yet
    assert early(x, eid)["paper"].shape == (6, 32)      # materialises its own
    theirs(x, eid)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.2 * torch.randn_like(p))
    ours = HGTConv.from_pyg(theirs)
    assert_same_outputs_and_input_grads(theirs, ours, x, eid, tol=1e-5)
    lazy = HGTConv(-1, 32, md, heads=2)
    lazy.load_pyg_state(theirs)                          # materialised from PyG's weights
    assert_same_outputs_and_input_grads(theirs, lazy, x, eid, tol=1e-5)


def test_lazy_state_dict_round_trip():
    x, eid, md = author_paper(16, 32)
    a = HGTConv(-1, 32, md, heads=2)
    a(x, eid)
    b = HGTConv(-1, 32, md, heads=2)
    b.load_state_dict(a.state_dict())                    # a lazy layer takes the saved widths
    for k, o in a(x, eid).items():
        torch.testing.assert_close(b(x, eid)[k], o)


def test_out_of_place():
    pyg_data = pytest.importorskip("torch_geometric.data")
    x, eid, _ = author_paper(16, 32)
    data = pyg_data.HeteroData()
    data["author"].x, data["paper"].x = x["author"], x["paper"]
    data["author", "paper"].edge_index = eid[("author", "writes", "paper")]
    data["paper", "author"].edge_index = eid[("paper", "written_by", "author")]
    conv = HGTConv(-1, 64, data.metadata(), heads=1)
    x_dict, edge_index_dict = data.x_dict, data.edge_index_dict
    before = {k: v.clone() for k, v in x_dict.items()}
    eis = {k: v.clone() for k, v in edge_index_dict.items()}
    out = conv(x_dict, edge_index_dict)
    assert out["author"].shape == (4, 64)
    for k in before:
        assert x_dict[k].shape == before[k].shape and torch.equal(x_dict[k], before[k])
    for k in eis:
        assert torch.equal(edge_index_dict[k], eis[k])


def test_node_type_receiving_no_message_is_none():
    """PyG's test: 'university' only sends; its output is None. Layers stack over the None."""
    g = torch.Generator().manual_seed(0)
    x = {"author": torch.randn(4, 16, generator=g), "paper": torch.randn(6, 32, generator=g),
         "university": torch.randn(10, 32, generator=g)}

    def rnd(ns, nd, e):
        return torch.stack([torch.randint(0, ns, (e,), generator=g), torch.randint(0, nd, (e,), generator=g)])
    eid = {("author", "to", "paper"): rnd(4, 6, 20), ("paper", "to", "author"): rnd(6, 4, 20),
           ("university", "to", "author"): rnd(10, 4, 10)}
    md = (list(x), list(eid))
    conv = HGTConv(-1, 64, md, heads=1)
    out = conv(x, eid)
    assert out["author"].shape == (4, 64) and out["paper"].shape == (6, 64)
    assert "university" in out and out["university"] is None
    out2 = HGTConv(64, 64, md)(out, {k: v for k, v in eid.items() if k[0] != "university"})
    assert out2["author"].shape == (4, 64) and out2.get("university") is None


def test_missing_input_node_type_of_the_metadata():
    """A metadata node type absent from x_dict (e.g. a sampled batch): neither in the output nor an error."""
    x, eid, _ = author_paper(16, 32)
    md = (["author", "paper", "university"], [("author", "writes", "paper")])
    conv = HGTConv(-1, 64, md, heads=1)
    out = conv(x, {("author", "writes", "paper"): eid[("author", "writes", "paper")]})
    assert out["paper"].shape == (6, 64) and "university" not in out
    assert out["author"] is None


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_parity_with_pyg_on_adjacency_input(layout):
    """PyG's own layer on adj_t, ours on adj_t and on the edge index: the same numbers."""
    theirs, ours = pyg_pair(torch.float64)
    x, ei = make_graph(torch.float64)
    ei = {et: torch.unique(e[0] * 1000 + e[1]) for et, e in ei.items()}   # coalesced, as PyG's adj_t gives
    ei = {et: torch.stack([e // 1000, e % 1000]) for et, e in ei.items()}
    adj = adj_t(ei, x, layout)
    assert_same_outputs_and_input_grads(theirs, ours, x, adj)
    assert_same_outputs_and_input_grads(theirs, ours, x, ei)


def test_hgt_encoder_takes_heterodata_and_data():
    pyg_data = pytest.importorskip("torch_geometric.data")
    x, ei = make_graph(width=8)
    data = pyg_data.HeteroData()
    for nt, v in x.items():
        data[nt].x = v
    for et, e in ei.items():
        data[et].edge_index = e
    torch.manual_seed(0)
    model = HGT(-1, 16, METADATA, num_layers=2, heads=2)
    out_data = model(data)
    out_dicts = model(x, ei)
    for nt in x:
        torch.testing.assert_close(out_data[nt], out_dicts[nt])
    from pygad.data import HeteroGraph
    hom = pyg_data.Data(x=torch.randn(30, 5), edge_index=torch.randint(0, 30, (2, 90)))
    md = HeteroGraph.from_pyg(hom).metadata()
    out = HGT(5, 16, md, num_layers=1, heads=2)(hom)
    assert out["node"].shape == (30, 16)
    with pytest.raises(TypeError, match="HeteroData"):
        model(np.zeros(3))


def test_detectors_fit_and_score_pyg_heterodata():
    pyg_data = pytest.importorskip("torch_geometric.data")
    from pygad.data import HeteroGraph
    from pygad.models.detectors import GNNDetector, TreeDetector

    rng = np.random.default_rng(0)
    n = 120
    y = (rng.random(n) < 0.2).astype(np.int64)
    xs = rng.normal(size=(n, 4)).astype(np.float32)
    xs[y == 1] += 1.5
    data = pyg_data.HeteroData()
    data["user"].x = torch.from_numpy(xs)
    data["user"].y = torch.from_numpy(y)
    data["item"].x = torch.from_numpy(rng.normal(size=(30, 3)).astype(np.float32))
    data["user", "buys", "item"].edge_index = torch.from_numpy(np.stack([rng.integers(0, n, 300),
                                                                         rng.integers(0, 30, 300)]))
    train = torch.from_numpy(rng.random(n) < 0.6)
    graph = HeteroGraph.from_pyg(data)
    for det in (TreeDetector(hops=1, max_iter=20, random_state=0),
                GNNDetector(hidden_channels=8, epochs=3, random_state=0, verbose=False)):
        s_data = det.fit(data, train).decision_function(data)
        s_graph = type(det)(**det.get_params()).fit(graph, train).decision_function(graph)
        np.testing.assert_allclose(s_data, s_graph)
        assert det.predict(data).shape == (n,)
    hom = pyg_data.Data(x=torch.from_numpy(xs), y=torch.from_numpy(y),
                        edge_index=torch.from_numpy(rng.integers(0, n, (2, 400))))
    assert TreeDetector(hops=1, max_iter=20).fit(hom, train).decision_function(hom).shape == (n,)
