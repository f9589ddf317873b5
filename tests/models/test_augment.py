"""Augmenters: real nodes and val/test untouched, shapes, edges to real nodes, ablations (the private
``_Ablation`` hook), persistence."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _augment_graphs import TINY, sym_graph
from pygad.data import HeteroGraph
from pygad.evaluation import stratified_split
from pygad.models.augment import (LatentDiffusionAugmenter, MixupAugmenter, RandomOversampler, SMOTEAugmenter,
                                  _Ablation, append_nodes)
from pygad.registry import AUGMENTERS, make_augmenter


def temporal_hetero_graph(seed=0, nu=60, np_=12):
    """Users (labelled) and products; a temporal review relation, its reverse, user-user edges."""
    rng = np.random.default_rng(seed)
    y = (rng.random(nu) < 0.2).astype(np.int8)
    y[:3] = 1
    xu = rng.normal(size=(nu, 5)).astype(np.float32) + y[:, None]
    xp = rng.normal(size=(np_, 3)).astype(np.float32)
    rev = np.stack([rng.integers(0, nu, 200), rng.integers(0, np_, 200)])
    uu = np.stack([rng.integers(0, nu, 80), rng.integers(0, nu, 80)])
    t = rng.uniform(100.0, 200.0, 200)
    return HeteroGraph({"user": nu, "product": np_},
                       {("user", "review", "product"): rev, ("product", "rev_review", "user"): rev[::-1].copy(),
                        ("user", "follows", "user"): uu},
                       x={"user": xu, "product": xp}, y={"user": y},
                       edge_time={("user", "review", "product"): t, ("product", "rev_review", "user"): t})


@pytest.fixture(scope="module")
def graph():
    return sym_graph()


@pytest.fixture(scope="module")
def split(graph):
    return stratified_split(graph.y["node"], seed=0)


def _check_augmented(g, tr, g2, tr2, n_new):
    t = "node" if "node" in g.num_nodes else "user"
    n0 = g.num_nodes[t]
    assert g2.num_nodes[t] == n0 + n_new and tr2.shape == (n0 + n_new,)
    assert np.array_equal(tr2[:n0], tr) and tr2[n0:].all()
    assert np.array_equal(g2.y[t][:n0], g.y[t]) and (g2.y[t][n0:] == 1).all()
    assert np.array_equal(g2.x[t][:n0], g.x[t])
    assert g2.masks[t]["synthetic"][n0:].all() and not g2.masks[t]["synthetic"][:n0].any()
    for et, e in g.edge_index.items():
        e2 = g2.edge_index[et]
        assert np.array_equal(e2[:, :e.shape[1]], e)  # real edges first and unchanged
        new = e2[:, e.shape[1]:]
        if new.size:  # every new edge touches a synthetic node
            touches = np.zeros(new.shape[1], bool)
            if et[0] == t:
                touches |= new[0] >= n0
            if et[2] == t:
                touches |= new[1] >= n0
            assert touches.all()


@pytest.mark.parametrize("cls", [RandomOversampler, SMOTEAugmenter, MixupAugmenter])
def test_baselines(graph, split, cls):
    tr, va, te = split
    g2, tr2 = cls(random_state=0).augment(graph, tr)
    n_train_anom = int((graph.y["node"][tr] == 1).sum())
    _check_augmented(graph, tr, g2, tr2, n_train_anom)
    assert g2.is_symmetric(g2.edge_types[0])
    # the new nodes are never validation or test nodes
    assert not (va[: graph.num_nodes["node"]] & tr).any()


def test_oversample_copies_features_and_degree(graph, split):
    tr = split[0]
    aug = RandomOversampler(n_synthetic=5, random_state=1).fit(graph, tr)
    syn = aug.sample(5)
    n0 = graph.num_nodes["node"]
    g2, _ = append_nodes(graph, tr, syn)
    anom = set(np.flatnonzero(tr & (graph.y["node"] == 1)).tolist())
    deg = np.bincount(g2.edge_index[g2.edge_types[0]][1], minlength=n0 + 5)
    for i in range(5):
        row = syn.x[i]
        src = [a for a in anom if np.array_equal(graph.x["node"][a], row)]
        assert src and deg[n0 + i] == deg[src[0]]


def test_smote_interpolates_between_anomalies(graph, split):
    tr = split[0]
    syn = SMOTEAugmenter(n_synthetic=20, random_state=0).fit(graph, tr).sample(20)
    X = graph.x["node"][tr & (graph.y["node"] == 1)]
    lo, hi = X.min(0), X.max(0)
    assert ((syn.x >= lo - 1e-5) & (syn.x <= hi + 1e-5)).all()


@pytest.mark.parametrize("template_edges", [True, False], ids=["template-edges", "decoded-edges"])
def test_diffusion_augmenter_end_to_end(graph, split, template_edges):
    tr, va, te = split
    ab = _Ablation(template_edges=template_edges, anchor_features=template_edges)
    aug = LatentDiffusionAugmenter._configured(ab, random_state=0, **TINY)
    g2, tr2 = aug.augment(graph, tr)
    n_new = int((graph.y["node"][tr] == 1).sum())
    _check_augmented(graph, tr, g2, tr2, n_new)
    n0 = graph.num_nodes["node"]
    new = g2.edge_index[g2.edge_types[0]][:, graph.num_edges():]
    assert new.shape[1] > 0
    assert ((new[0] < n0) | (new[1] < n0)).any()  # attached to real nodes
    assert g2.is_symmetric(g2.edge_types[0])  # a symmetric relation stays symmetric
    assert np.isfinite(g2.x["node"]).all()


def test_sample_api_and_counts(graph, split):
    aug = LatentDiffusionAugmenter(n_synthetic=7, random_state=0, **TINY).fit(graph, split[0])
    assert aug.default_count() == 7
    syn = aug.sample(9, label=1, guidance=3.0)
    assert len(syn) == 9 and syn.x.shape == (9, 4) and syn.z.shape == (9, 8)
    assert list(syn.node_type) == ["node"] * 9
    syn0 = aug._sample(3, label=0, guidance=1.0, ablation=_Ablation(diffusion=False))
    assert len(syn0) == 3 and syn0.label == 0


@pytest.mark.parametrize("switch", ["diffusion", "hetero", "conditional", "attach"])
def test_ablations(graph, split, switch):
    tr = split[0]
    aug = LatentDiffusionAugmenter._configured(_Ablation(**{switch: False}), random_state=0, **TINY)
    g2, tr2 = aug.augment(graph, tr)
    n0 = graph.num_nodes["node"]
    assert g2.num_nodes["node"] > n0
    if switch == "diffusion":
        assert aug.diffusion_model_ is None
    if switch == "attach":  # a disjoint union: synthetic nodes linked among themselves only
        new = g2.edge_index[g2.edge_types[0]][:, graph.num_edges():]
        assert (new >= n0).all()


@pytest.mark.parametrize("template_edges", [True, False], ids=["template-edges", "decoded-edges"])
def test_temporal_heterogeneous_graph(template_edges):
    g = temporal_hetero_graph()
    tr = np.zeros(60, bool)
    tr[:40] = True
    aug = LatentDiffusionAugmenter._configured(_Ablation(template_edges=template_edges), random_state=0, **TINY)
    g2, tr2 = aug.augment(g, tr)
    _check_augmented(g, tr, g2, tr2, int((g.y["user"][tr] == 1).sum()))
    assert g2.num_nodes["product"] == g.num_nodes["product"]
    for et in g.edge_time:
        t_new = g2.edge_time[et][g.num_edges(et):]
        assert t_new.shape[0] == g2.num_edges(et) - g.num_edges(et)
        assert ((t_new >= 100.0) & (t_new <= 200.0)).all()


def test_stored_masks_are_padded_not_changed(graph, split):
    tr, va, te = split
    g = graph.replace(masks={"node": {"train": tr, "val": va, "test": te}})
    g2, tr2 = RandomOversampler(random_state=0).augment(g, tr)
    n0 = g.num_nodes["node"]
    assert not g2.masks["node"]["val"][n0:].any() and not g2.masks["node"]["test"][n0:].any()
    assert np.array_equal(g2.masks["node"]["val"][:n0], va) and np.array_equal(g2.masks["node"]["test"][:n0], te)


def test_save_load_round_trip(tmp_path, graph, split):
    tr = split[0]
    aug = LatentDiffusionAugmenter(random_state=0, **TINY).fit(graph, tr)
    aug.save(tmp_path / "aug")
    state = torch.load(tmp_path / "aug" / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    aug2 = LatentDiffusionAugmenter.load(tmp_path / "aug", graph, tr)
    a, b = aug.sample(5, seed=3), aug2.sample(5, seed=3)
    assert np.allclose(a.z, b.z, atol=1e-5) and np.allclose(a.x, b.x, atol=1e-4)
    for et in a.edges:
        assert np.array_equal(a.edges[et], b.edges[et])


def test_registry_and_errors(graph, split):
    for name in ("diffusion", "vae", "oversample", "smote", "mixup"):
        assert name in AUGMENTERS
    assert isinstance(make_augmenter("vae", random_state=0), LatentDiffusionAugmenter)
    assert make_augmenter("vae")._ablation == _Ablation(diffusion=False)
    assert make_augmenter("diffusion")._ablation == _Ablation()
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augmenter("nope")
    no_anom = np.flatnonzero(graph.y["node"] == 0)[:10]
    with pytest.raises(ValueError, match="no anomalies"):
        RandomOversampler().fit(graph, no_anom)
    with pytest.raises(RuntimeError, match="not fitted"):
        RandomOversampler().sample(3)


def test_evaluation_harness_with_augmenter(graph):
    from pygad.evaluation import run_evaluation
    res = run_evaluation(graph, detector="feature", augment="smote", seeds=2, verbose=False)
    assert res["config"]["augment"] == "smote" and len(res["runs"]) == 2
    assert all(0.0 <= r["auc"] <= 1.0 for r in res["runs"])
