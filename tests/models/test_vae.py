"""GraphVAE: shapes, decoders, heterogeneous/temporal graphs, mini-batch sampling, persistence."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pygad.data import HeteroGraph
from pygad.datasets import load
from pygad.models._graph_helpers import node_degrees, node_labels, sample_neighbors
from pygad.models.vae import GraphVAE


def hetero_temporal_graph(seed=0, nu=60, np_=12):
    """Two node types (user, product), a temporal directed review relation and its reverse, and a
    user-user relation; users are labelled."""
    rng = np.random.default_rng(seed)
    y = (rng.random(nu) < 0.2).astype(np.int8)
    y[:3] = 1
    xu = rng.normal(size=(nu, 5)).astype(np.float32) + y[:, None]
    xp = rng.normal(size=(np_, 3)).astype(np.float32)
    e = 200
    rev = np.stack([rng.integers(0, nu, e), rng.integers(0, np_, e)])
    uu = np.stack([rng.integers(0, nu, 80), rng.integers(0, nu, 80)])
    t = rng.uniform(100.0, 200.0, e)
    return HeteroGraph({"user": nu, "product": np_},
                       {("user", "review", "product"): rev, ("product", "rev_review", "user"): rev[::-1].copy(),
                        ("user", "follows", "user"): uu},
                       x={"user": xu, "product": xp}, y={"user": y},
                       edge_time={("user", "review", "product"): t, ("product", "rev_review", "user"): t},
                       name="hetero_toy")


SMALL = dict(latent_dim=8, hidden_channels=16, num_layers=2, heads=2, decoder_hidden=16)


def toy_graph(seed=0, n=150):
    """One node type, one directed relation; anomalies have shifted features and more edges."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.int8)
    y[:4] = 1
    x = rng.normal(size=(n, 6)).astype(np.float32) + 2 * y[:, None]
    src = rng.integers(0, n, 500)
    dst = rng.integers(0, n, 500)
    return HeteroGraph.homogeneous(np.stack([src, dst]), n, x=x, y=y, name="toy")


@pytest.fixture(scope="module")
def books():
    return toy_graph()


def test_fit_embed_shapes_and_loss_decreases(books):
    tr = np.zeros(books.num_nodes["node"], bool)
    tr[::2] = True
    torch.manual_seed(0)
    m = GraphVAE.from_graph(books, **SMALL)
    m.fit(books, tr, epochs=15, random_state=0, verbose=False)
    assert len(m.history_) == 15
    assert m.history_[-1]["feat"] < m.history_[0]["feat"]
    assert m.history_[-1]["edge"] < m.history_[0]["edge"]
    mu, lv = m.embed(books)
    assert mu["node"].shape == (books.num_nodes["node"], 8) and lv["node"].shape == mu["node"].shape
    assert torch.isfinite(mu["node"]).all()
    # books is directed: the encoder gets the reverse relation too
    assert len(m.enc_metadata[1]) == 2


def test_decoders_on_hetero_temporal_graph():
    g = hetero_temporal_graph()
    torch.manual_seed(0)
    m = GraphVAE.from_graph(g, **SMALL)
    assert m.temporal == [0, 1] and m.type_dec is not None
    tr = np.ones(g.num_nodes["user"], bool)
    m.fit(g, tr, epochs=5, random_state=0, verbose=False)
    assert "time" in m.history_[-1] and "type" in m.history_[-1]
    mu, _ = m.embed(g)
    z = mu["user"][:4]
    y = torch.ones(4, dtype=torch.long)
    assert m.decode_features("user", z, y).shape == (4, 5)
    assert m.decode_degree("user", z, y).shape == (4, 6)
    assert m.decode_type(z).shape == (4,)
    tt = m.decode_time(0, z, mu["product"][:4], y, torch.full((4,), 2))
    assert ((tt >= 100.0) & (tt <= 200.0)).all()
    logit = m.score_edges(0, z, mu["product"][:4], y, y)
    assert logit.shape == (4,)
    # the pair scorer has real interaction: not a sum of per-node terms
    zs, zd = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        s = m.score_edges(2, torch.stack([zs[0], zs[0], zs[1], zs[1]]), torch.stack([zd[0], zd[1], zd[0], zd[1]]),
                          torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    assert abs(float(s[0] - s[1] - s[2] + s[3])) > 1e-6


def test_hetero_false_and_unconditional():
    g = hetero_temporal_graph()
    m = GraphVAE.from_graph(g, hetero=False, conditional=False, **SMALL)
    assert m.enc_metadata[0] == ["__all__"]
    m.fit(g, np.ones(60, bool), epochs=3, random_state=0, verbose=False)
    mu, _ = m.embed(g)
    assert mu["user"].shape == (60, 8) and mu["product"].shape == (12, 8)
    lab = node_labels(g, np.ones(60, bool), None, conditional=False)
    assert (lab["user"] == 2).all()


def test_labels_only_from_train_mask(books):
    tr = np.zeros(books.num_nodes["node"], bool)
    tr[:100] = True
    lab = node_labels(books, tr, None)["node"]
    assert (lab[100:] == 2).all()
    assert np.array_equal(lab[:100], books.y["node"][:100])


def test_node_degrees_match_bincount(books):
    d = node_degrees(books, books.edge_types)["node"]
    ei = books.edge_index[books.edge_types[0]]
    assert np.allclose(np.expm1(d[:, 0]), np.bincount(ei[1], minlength=books.num_nodes["node"]), atol=1e-3)


def test_sample_neighbors_returns_real_edges(books):
    et = books.edge_types[0]
    rowptr, col, _ = books.csr(et)
    seeds = np.array([5, 17, 100], dtype=np.int64)
    nodes, edges = sample_neighbors({et: (rowptr, col)}, books.num_nodes, {"node": seeds}, [4, 3],
                                    np.random.default_rng(0))
    assert np.array_equal(nodes["node"][:3], seeds)
    assert np.unique(nodes["node"]).size == nodes["node"].size
    real = set(map(tuple, books.edge_index[et].T.tolist()))
    e = edges[et]
    glob = np.stack([nodes["node"][e[0]], nodes["node"][e[1]]])
    assert all(tuple(p) in real for p in glob.T.tolist())
    # every sampled edge into a seed has the seed as destination
    assert set(glob[1][np.isin(glob[1], seeds)]) <= set(seeds.tolist())


def test_minibatch_fit_runs():
    g = hetero_temporal_graph()
    m = GraphVAE.from_graph(g, **SMALL)
    m.fit(g, np.ones(60, bool), epochs=2, batch_size=16, fanouts=(3, 2), random_state=0, verbose=False)
    assert len(m.history_) >= 2 and all(np.isfinite(h["loss"]) for h in m.history_)


def test_minibatch_fit_is_reproducible_and_covers_the_epoch():
    g = hetero_temporal_graph()
    hist = []
    for _ in range(2):
        torch.manual_seed(0)
        m = GraphVAE.from_graph(g, **SMALL)
        m.fit(g, np.ones(60, bool), epochs=2, batch_size=16, fanouts=(3, 2), random_state=3, verbose=False)
        hist.append([h["loss"] for h in m.history_])
    assert hist[0] == hist[1]  # native sampler seeded from random_state
    per_epoch = -(-sum(g.num_nodes.values()) // 16)
    assert len(hist[0]) == 2 * per_epoch


def test_save_load_round_trip(tmp_path):
    books = load()  # the embedded dataset
    m = GraphVAE.from_graph(books, **SMALL)
    m.fit(books, np.ones(books.num_nodes["node"], bool), epochs=3, random_state=0, verbose=False)
    m.save(tmp_path / "vae")
    state = torch.load(tmp_path / "vae" / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    m2 = GraphVAE.load(tmp_path / "vae")
    a, b = m.embed(books)[0]["node"], m2.embed(books)[0]["node"]
    assert torch.allclose(a, b)
    assert torch.equal(m.scaler("node")[0], m2.scaler("node")[0])


def test_wrong_graph_is_a_clear_error(books):
    m = GraphVAE.from_graph(books, **SMALL)
    with pytest.raises(ValueError, match="metadata"):
        m.embed(hetero_temporal_graph())
