"""Supervised detectors: the scikit-learn/PyGOD contract, features, errors, quality on real data."""
from __future__ import annotations


import numpy as np
import pytest

from pygad.testing import dataset_path
from sklearn.base import clone

from pygad.data import HeteroGraph
from pygad.datasets import load, load_npz
from pygad.evaluation import stratified_split
from pygad.metrics import roc_auc
from pygad.models import FeatureOnlyDetector, GNNDetector, TreeDetector, neighbor_features
from pygad.ops import _reference

ET = ("node", "to", "node")


@pytest.fixture(scope="module")
def books():
    return load()  # the embedded dataset: always available


@pytest.fixture(scope="module")
def books_split(books):
    return stratified_split(books.y["node"], seed=0)


def _planted_graph(seed=0, n=400):
    """Anomalies are invisible in their own features but their neighbours carry a signal."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    src, dst = [], []
    for i in range(n):
        for j in rng.integers(0, n, size=4):
            src.append(j)
            dst.append(i)
        if y[i]:  # anomalies receive edges from "marked" nodes
            marked = rng.integers(0, n, size=4)
            x[marked, 2] += 1.5
            src += marked.tolist()
            dst += [i] * 4
    return HeteroGraph.homogeneous(np.array([src, dst]), n, x=x, y=y, name="planted")


# ---- features --------------------------------------------------------------------------------
def test_neighbor_features_match_reference():
    g = _planted_graph(n=60)
    X, names = neighbor_features(g, "node", hops=2, aggregations=("mean", "max", "sum"))
    assert X.shape == (60, 3 + 3 * 3 * 2 + 1) and len(names) == X.shape[1]
    import torch

    rowptr, col, _ = g.csr(ET)
    rp, c = torch.from_numpy(rowptr), torch.from_numpy(col)
    x = torch.from_numpy(g.x["node"])
    for j, agg in enumerate(("mean", "max", "sum")):
        h1 = _reference.neighbor_aggregate(x, rp, c, agg)
        h2 = _reference.neighbor_aggregate(h1, rp, c, agg)
        np.testing.assert_allclose(X[:, 3 + 3 * j: 6 + 3 * j], h1.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(X[:, 12 + 3 * j: 15 + 3 * j], h2.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(X[:, -1], np.log1p(g.degree(ET)), rtol=1e-6)
    X0, _ = neighbor_features(g, "node", hops=0, aggregations=(), degree=False)
    np.testing.assert_array_equal(X0, g.x["node"])
    with pytest.raises(ValueError, match="unknown aggregation"):
        neighbor_features(g, "node", aggregations=("median",))


def test_neighbor_features_heterogeneous_paths():
    g = HeteroGraph({"u": 3, "p": 2}, {("u", "r", "p"): np.array([[0, 1, 2], [0, 0, 1]]),
                                       ("p", "rev_r", "u"): np.array([[0, 0, 1], [0, 1, 2]])},
                    x={"u": np.array([[1.0], [2.0], [4.0]]), "p": np.array([[10.0], [20.0]])},
                    y={"u": np.array([0, 1, 0])})
    X, names = neighbor_features(g, "u", hops=2, aggregations=("mean",), degree=False)
    # own, mean over products (1 hop), mean over products of mean over their users (2 hops)
    np.testing.assert_allclose(X[:, 0], [1, 2, 4])
    np.testing.assert_allclose(X[:, 1], [10, 10, 20])
    np.testing.assert_allclose(X[:, 2], [1.5, 1.5, 4.0])
    assert names[1] == "mean[rev_r]:0" and names[2] == "mean[r/rev_r]:0"


# ---- the estimator contract ------------------------------------------------------------------
@pytest.mark.parametrize("cls, kw", [(TreeDetector, {}), (FeatureOnlyDetector, {}),
                                     (GNNDetector, {"epochs": 15, "verbose": False})])
def test_contract_on_books(books, books_split, cls, kw):
    tr, va, te = books_split
    det = cls(random_state=0, **kw)
    assert det.get_params()["random_state"] == 0 and det.get_params()["device"] == "cpu"
    assert not hasattr(det, "target_")  # __init__ only stores
    with pytest.raises(RuntimeError, match="not fitted"):
        det.predict(books)
    assert det.fit(books, tr, va) is det
    s = det.decision_function(books)
    assert s.shape == (1418,) and s.dtype == np.float64 and np.isfinite(s).all()
    p = det.predict(books)
    assert set(np.unique(p)) <= {0, 1} and p.shape == (1418,)
    np.testing.assert_array_equal(p, (s >= det.threshold_).astype(int))
    # deterministic for a fixed seed
    s2 = clone(det).fit(books, tr, va).decision_function(books)
    np.testing.assert_allclose(s, s2, rtol=1e-5, atol=1e-5)
    # index arrays work like boolean masks
    s3 = clone(det).fit(books, np.flatnonzero(tr), np.flatnonzero(va)).decision_function(books)
    np.testing.assert_allclose(s, s3, rtol=1e-5, atol=1e-5)


def test_trees_use_the_graph_signal():
    g = _planted_graph(seed=1, n=600)
    tr, va, te = stratified_split(g.y["node"], seed=0)
    y = g.y["node"]
    s_tree = TreeDetector(random_state=0).fit(g, tr, va).decision_function(g)
    s_feat = FeatureOnlyDetector(random_state=0).fit(g, tr, va).decision_function(g)
    assert roc_auc(y[te], s_tree[te]) > 0.9
    assert roc_auc(y[te], s_feat[te]) < 0.75


def test_gnn_uses_the_graph_signal():
    g = _planted_graph(seed=1, n=600)
    tr, va, te = stratified_split(g.y["node"], seed=0)
    det = GNNDetector(epochs=80, patience=80, random_state=0, verbose=False).fit(g, tr, va)
    y = g.y["node"]
    assert roc_auc(y[te], det.decision_function(g)[te]) > 0.8
    assert len(det.history_) == 80 and "val_ap" in det.history_[0]


def test_heterogeneous_target_type():
    rng = np.random.default_rng(0)
    n_u, n_p = 200, 20
    y = (rng.random(n_u) < 0.15).astype(int)
    prod = np.where(y == 1, rng.integers(0, 3, n_u), rng.integers(3, n_p, n_u))  # anomalies use products 0-2
    ei = np.stack([np.arange(n_u), prod])
    g = HeteroGraph({"user": n_u, "product": n_p}, {("user", "review", "product"): ei},
                    x={"user": rng.normal(size=(n_u, 2)), "product": rng.normal(size=(n_p, 2))}, y={"user": y})
    tr, va, te = stratified_split(y, 0)
    for det in (TreeDetector(random_state=0), GNNDetector(epochs=40, random_state=0, verbose=False)):
        det.fit(g, tr, va)
        assert det.target_ == "user"
        s = det.decision_function(g)
        assert s.shape == (n_u,)
    # trees see the products' in-degree profile only through the reverse relation: the GNN adds it itself
    assert roc_auc(y[te], GNNDetector(epochs=60, random_state=0, verbose=False).fit(g, tr, va)
                   .decision_function(g)[te]) > 0.8


# ---- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [TreeDetector, GNNDetector])
def test_training_split_without_anomalies(books, cls):
    y = books.y["node"]
    tr = y == 0
    with pytest.raises(ValueError, match="training split has no anomalies"):
        cls(verbose=False).fit(books, tr)


def test_bad_masks(books):
    with pytest.raises(ValueError, match="train_mask' must be a boolean mask of length 1418"):
        TreeDetector().fit(books, np.ones(10, bool))
    with pytest.raises(ValueError, match="outside"):
        TreeDetector().fit(books, np.array([0, 5000]))
    with pytest.raises(TypeError, match="HeteroGraph"):
        TreeDetector().fit("books", np.ones(1418, bool))
    with pytest.raises(ValueError, match="target node type 'user' not in the graph"):
        TreeDetector(target="user").fit(books, np.ones(1418, bool))


def test_validation_without_anomalies_is_ignored(books, books_split):
    tr, va, te = books_split
    y = books.y["node"]
    va_neg = va & (y == 0)
    det = GNNDetector(epochs=5, random_state=0, verbose=False).fit(books, tr, va_neg)
    assert det.best_val_ap_ is None


def test_score_graph_must_match(books, books_split):
    tr, va, _ = books_split
    det = TreeDetector(random_state=0).fit(books, tr, va)
    other = books.replace(x={"node": books.x["node"][:, :5]})
    with pytest.raises(ValueError, match="features"):
        det.decision_function(other)


# ---- quality on real data (slow) -------------------------------------------------------------
@pytest.mark.slow
def test_reddit_quality_bounded():
    """Reddit is a hard dataset (GADBench: AUC 0.6-0.7 for every method); check we are there."""
    g = load_npz(dataset_path("reddit.npz"))
    y = g.y["node"]
    tr, va, te = stratified_split(y, seed=0)
    s = TreeDetector(random_state=0, hops=1).fit(g, tr, va).decision_function(g)
    assert roc_auc(y[te], s[te]) > 0.6
