"""LatentDiffusionAugmenter research variants through the private ``_Ablation`` hook (what
bench/quality/ablations.py builds): anchored edges and features, decoder-chosen edges, sharing
one fitted model between sampling variants, and their persistence."""
from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch

from _augment_graphs import TINY, sym_graph
from pygad.evaluation import stratified_split
from pygad.models.augment import LatentDiffusionAugmenter, _Ablation
from pygad.registry import make_augmenter

DECODED = _Ablation(template_edges=False, anchor_features=False)


@pytest.fixture(scope="module")
def graph():
    return sym_graph(seed=1, n=150)


@pytest.fixture(scope="module")
def fitted(graph):
    tr = stratified_split(graph.y["node"], seed=0)[0]
    return LatentDiffusionAugmenter(random_state=0, **TINY).fit(graph, tr), tr


def test_public_constructor_has_no_research_switches():
    params = set(inspect.signature(LatentDiffusionAugmenter).parameters)
    gone = {"diffusion", "hetero", "conditional", "attach", "feature_noise", "select", "diffusion_min_steps",
            "inbound_only", "template_edges", "anchor_features", "shortlist"}
    assert not params & gone
    assert not hasattr(LatentDiffusionAugmenter, "sampling_options")
    assert "use_diffusion" not in inspect.signature(LatentDiffusionAugmenter.sample).parameters
    with pytest.raises(TypeError):
        LatentDiffusionAugmenter(template_edges=False)


def test_default_ablation_is_the_product(fitted):
    aug, _ = fitted
    assert aug._ablation == _Ablation()
    a, b = aug.sample(6, seed=2), aug._sample(6, seed=2, ablation=_Ablation())
    np.testing.assert_array_equal(a.x, b.x)
    for et in a.edges:
        np.testing.assert_array_equal(a.edges[et], b.edges[et])


def test_configured_sets_only_that_instance(graph):
    aug = LatentDiffusionAugmenter._configured(_Ablation(attach=False), random_state=0, **TINY)
    assert aug._ablation.attach is False and LatentDiffusionAugmenter()._ablation == _Ablation()
    assert aug.get_params()["random_state"] == 0 and "attach" not in aug.get_params()
    with pytest.raises(TypeError, match="_Ablation"):
        LatentDiffusionAugmenter._configured({"attach": False})
    with pytest.raises(dataclasses.FrozenInstanceError):
        aug._ablation.attach = True


def test_fit_variants_need_their_own_fit(fitted):
    aug, _ = fitted
    for ab in (_Ablation(hetero=False), _Ablation(conditional=False)):
        with pytest.raises(ValueError, match="needs its own fit"):
            aug._sample(3, seed=0, ablation=ab)


def test_posterior_variant_on_a_diffusion_fit_and_no_diffusion_model(graph, fitted):
    aug, tr = fitted
    syn = aug._sample(5, seed=1, ablation=_Ablation(diffusion=False))
    assert len(syn) == 5 and np.isfinite(syn.x).all()
    vae = make_augmenter("vae", random_state=0, **TINY).fit(graph, tr)
    assert vae._ablation.diffusion is False and vae.diffusion_model_ is None
    with pytest.raises(ValueError, match="without a diffusion model"):
        vae._sample(3, seed=0, ablation=_Ablation())
    # the VAE is fitted before (and independently of) the diffusion model: same posteriors
    a, b = vae.sample(5, seed=1), syn
    np.testing.assert_allclose(a.z, b.z)
    np.testing.assert_allclose(a.x, b.x)


def test_no_attach_links_synthetic_nodes_only_among_themselves(graph, fitted):
    aug, _ = fitted
    n0 = graph.num_nodes["node"]
    syn = aug._sample(12, seed=5, ablation=_Ablation(attach=False))
    e = syn.edges[graph.edge_types[0]]
    assert e.shape[1] > 0 and (e >= n0).all() and (e[0] != e[1]).all()


def test_decoded_edges_go_to_real_nodes_and_keep_symmetry(graph, fitted):
    aug, _ = fitted
    n0 = graph.num_nodes["node"]
    et = graph.edge_types[0]
    syn = aug._sample(12, seed=5, ablation=DECODED)
    e = syn.edges[et]
    assert ((e[0] < n0) & (e[1] >= n0)).any()
    pairs = set(map(tuple, e.T))
    assert all((d, s) in pairs for s, d in pairs)  # a symmetric relation stays symmetric
    # the shortlist only changes decoder-chosen edges
    small = aug._sample(12, seed=5, ablation=dataclasses.replace(DECODED, shortlist=4))
    np.testing.assert_allclose(small.x, syn.x)
    anchored = aug._sample(12, seed=5, ablation=_Ablation(shortlist=4))
    np.testing.assert_array_equal(anchored.edges[et], aug.sample(12, seed=5).edges[et])


def test_template_edges_copy_the_latent_nearest_training_anomaly(graph, fitted):
    aug, tr = fitted
    n0 = graph.num_nodes["node"]
    et = graph.edge_types[0]
    syn = aug.sample(10, seed=6)
    pool = np.flatnonzero(tr & (graph.y["node"] == 1))
    zp = aug.z_real_["node"].numpy()[pool]
    near = pool[np.argmin(((syn.z[:, None, :] - zp[None]) ** 2).sum(-1), 1)]
    e0, e = graph.edge_index[et], syn.edges[et]
    for i, src in enumerate(near):
        me = n0 + i
        # the new node's in- and out-neighbours are the template's (its self-loop becomes its own)
        want_in = np.sort(np.where(e0[0, e0[1] == src] == src, me, e0[0, e0[1] == src]))
        want_out = np.sort(np.where(e0[1, e0[0] == src] == src, me, e0[1, e0[0] == src]))
        np.testing.assert_array_equal(np.sort(e[0, e[1] == me]), want_in)
        np.testing.assert_array_equal(np.sort(e[1, e[0] == me]), want_out)


def test_anchor_features_move_the_nearest_training_anomaly_by_the_decoder_change(graph, fitted, monkeypatch):
    aug, tr = fitted
    syn = aug.sample(10, seed=6)
    plain = aug._sample(10, seed=6, ablation=_Ablation(anchor_features=False))
    np.testing.assert_allclose(syn.z, plain.z)  # same latents, only the features differ
    pool = np.flatnonzero(tr & (graph.y["node"] == 1))
    zp = aug.z_real_["node"].numpy()[pool]
    near = pool[np.argmin(((syn.z[:, None, :] - zp[None]) ** 2).sum(-1), 1)]
    vae = aug.vae_
    lab = torch.ones(10, dtype=torch.long)
    with torch.no_grad():
        shift = (vae.decode_features("node", torch.from_numpy(syn.z), lab)
                 - vae.decode_features("node", aug.z_real_["node"][torch.from_numpy(near)], lab))
        want = vae.unstandardise("node", vae.standardise("node", graph.x["node"][near]) + shift).numpy()
        np.testing.assert_allclose(plain.x, vae.unstandardise(
            "node", vae.decode_features("node", torch.from_numpy(plain.z), lab)).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(syn.x, want, rtol=1e-5, atol=1e-5)
    # latents equal to training anomalies' means give back those anomalies' exact features
    z_a = aug.z_real_["node"][torch.from_numpy(pool[:3])]
    with monkeypatch.context() as mp:
        mp.setattr(aug, "_draw_latents", lambda n, *a, **k: z_a[:n])
        exact = aug.sample(3, seed=6)
    np.testing.assert_allclose(exact.x, graph.x["node"][pool[:3]], rtol=1e-5, atol=1e-5)
    assert np.abs(syn.x - plain.x).max() > 1e-3


def test_save_load_keeps_the_variant(tmp_path, graph):
    tr = stratified_split(graph.y["node"], seed=0)[0]
    aug = LatentDiffusionAugmenter._configured(DECODED, random_state=0, **TINY).fit(graph, tr)
    aug.save(tmp_path / "a")
    back = LatentDiffusionAugmenter.load(tmp_path / "a", graph, tr)
    assert back._ablation == DECODED
    a, b = aug.sample(5, seed=4), back.sample(5, seed=4)
    np.testing.assert_allclose(a.x, b.x, atol=1e-4)
    for et in a.edges:
        np.testing.assert_array_equal(a.edges[et], b.edges[et])


def test_load_reads_archives_of_the_old_constructor(tmp_path, graph, fitted):
    aug, tr = fitted
    aug.save(tmp_path / "old")
    cfg_path = tmp_path / "old" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    # an archive written when the variant and the removed settings were constructor arguments
    cfg["params"].update(diffusion=True, hetero=True, conditional=True, attach=True, shortlist=64,
                         template_edges=False, anchor_features=False, feature_noise=0.0, select=1.0,
                         diffusion_min_steps=0, inbound_only=False)
    cfg_path.write_text(json.dumps(cfg))
    back = LatentDiffusionAugmenter.load(tmp_path / "old", graph, tr)
    assert back._ablation == DECODED
    np.testing.assert_allclose(back.sample(4, seed=1).x, aug._sample(4, seed=1, ablation=DECODED).x, atol=1e-4)
    cfg["params"]["feature_noise"] = 0.5  # a setting this version cannot reproduce
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="feature_noise"):
        LatentDiffusionAugmenter.load(tmp_path / "old", graph, tr)
