"""LatentDiffusionAugmenter sampling options: inbound-only attachment, the k-NN realism filter,
decoder-residual feature noise, the minimum number of denoiser updates, and their validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _augment_graphs import TINY, sym_graph
from pygad.evaluation import stratified_split
from pygad.models.augment import LatentDiffusionAugmenter, append_nodes
from pygad.models.detectors import neighbor_features


@pytest.fixture(scope="module")
def graph():
    return sym_graph(seed=1, n=150)


@pytest.fixture(scope="module")
def fitted(graph):
    tr = stratified_split(graph.y["node"], seed=0)[0]
    return LatentDiffusionAugmenter(random_state=0, **TINY).fit(graph, tr), tr


def test_defaults_copy_template_edges_onto_anchored_features(fitted):
    aug, _ = fitted
    assert aug.template_edges and aug.anchor_features and aug.guidance == 1.0


def test_sampling_options_are_restored_and_fit_settings_refused(fitted):
    aug, _ = fitted
    with pytest.raises(RuntimeError, match="boom"):
        with aug.sampling_options(attach=False, guidance=3.0):
            assert not aug.attach and aug.guidance == 3.0
            raise RuntimeError("boom")
    assert aug.attach and aug.guidance == 1.0
    with pytest.raises(ValueError, match=r"not sampling options: \['vae_epochs'\]"):
        with aug.sampling_options(vae_epochs=3):
            pass
    assert aug.vae_epochs == TINY["vae_epochs"]


def test_inbound_only_leaves_real_neighbourhoods_unchanged(graph, fitted):
    aug, tr = fitted
    n0 = graph.num_nodes["node"]
    with aug.sampling_options(inbound_only=True):
        syn = aug.sample(12, seed=5)
    et = graph.edge_types[0]
    e = syn.edges[et]
    assert e.shape[1] > 0 and (e[1] >= n0).all() and (e[0] < n0).any()
    g2, _ = append_nodes(graph, tr, syn)
    x0, _ = neighbor_features(graph, "node", hops=2)
    x2, _ = neighbor_features(g2, "node", hops=2)
    np.testing.assert_array_equal(x2[:n0], x0)  # real nodes' aggregates: bit-identical
    assert np.abs(x2[n0:]).sum() > 0
    # the default (symmetric attachment) does change some real node's aggregates
    g3, _ = append_nodes(graph, tr, aug.sample(12, seed=5))
    assert not np.array_equal(neighbor_features(g3, "node", hops=2)[0][:n0], x0)


def test_select_keeps_the_most_anomalous_candidates(fitted):
    aug, _ = fitted
    cand = torch.randn(40, aug.latent_dim, generator=torch.Generator().manual_seed(0))
    got = aug._select_realistic(cand, 10)
    zr, lr = aug.z_real_["node"].numpy(), aug.labels_real_["node"].numpy()
    c = cand.numpy()

    def kth(za):
        d = np.sqrt(((c[:, None, :] - za[None]) ** 2).sum(-1))
        return np.sort(d, 1)[:, min(3, za.shape[0]) - 1]

    ratio = kth(zr[lr == 0]) / kth(zr[lr == 1])
    want = np.sort(np.argsort(-ratio)[:10])
    idx = np.sort([int(np.flatnonzero((c == row).all(1))[0]) for row in got.numpy()])
    np.testing.assert_array_equal(idx, want)
    with aug.sampling_options(select=4.0):
        syn = aug.sample(6, seed=2)
    assert len(syn) == 6 and syn.z.shape == (6, aug.latent_dim)


def test_feature_noise_scale_matches_decoder_residual(fitted):
    aug, _ = fitted
    base = aug.sample(400, seed=3)
    with aug.sampling_options(feature_noise=1.0):
        noisy = aug.sample(400, seed=3)
    np.testing.assert_allclose(noisy.z, base.z, atol=1e-6)  # same latents, only the features move
    m, s = aug.vae_.scaler("node")
    d = (noisy.x - base.x) / s.numpy() / np.maximum(aug.residual_std_.numpy(), 1e-6)
    assert np.all(np.abs(d.std(0) - 1.0) < 0.2)
    assert np.all(np.abs(d.mean(0)) < 0.2)


def test_diffusion_min_steps_raises_the_epoch_count(graph):
    tr = stratified_split(graph.y["node"], seed=0)[0]
    aug = LatentDiffusionAugmenter(random_state=0, diffusion_min_steps=30, **TINY).fit(graph, tr)
    assert len(aug.diffusion_model_.loss_history_) == 30  # < 256 rows: one update per epoch
    aug0 = LatentDiffusionAugmenter(random_state=0, **TINY).fit(graph, tr)
    assert len(aug0.diffusion_model_.loss_history_) == TINY["diffusion_epochs"]


@pytest.mark.parametrize("kw", [{"select": 0.5}, {"feature_noise": -1.0}, {"diffusion_min_steps": -3},
                                {"select": float("nan")}, {"feature_noise": "1"}])
def test_bad_options_raise(graph, kw):
    tr = stratified_split(graph.y["node"], seed=0)[0]
    with pytest.raises(ValueError, match=list(kw)[0]):
        LatentDiffusionAugmenter(random_state=0, **TINY, **kw).fit(graph, tr)


def test_save_load_keeps_feature_noise(tmp_path, fitted, graph):
    aug, tr = fitted
    with aug.sampling_options(feature_noise=0.5):
        aug.save(tmp_path / "a")
        a = aug.sample(5, seed=4)
    b = LatentDiffusionAugmenter.load(tmp_path / "a", graph, tr).sample(5, seed=4)
    np.testing.assert_allclose(a.x, b.x, atol=1e-4)


def test_template_edges_copy_the_latent_nearest_training_anomaly(graph, fitted):
    aug, tr = fitted
    n0 = graph.num_nodes["node"]
    et = graph.edge_types[0]
    with aug.sampling_options(template_edges=True):
        syn = aug.sample(10, seed=6)
        with aug.sampling_options(inbound_only=True):
            syn_in = aug.sample(10, seed=6)
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
    np.testing.assert_allclose(syn_in.x, syn.x)  # same latents and features, fewer edges
    ei = syn_in.edges[et]
    assert (ei[1] >= n0).all() and ei.shape[1] == int((e[1] >= n0).sum())
    g2, _ = append_nodes(graph, tr, syn_in)
    np.testing.assert_array_equal(neighbor_features(g2, "node", hops=2)[0][:n0],
                                  neighbor_features(graph, "node", hops=2)[0])


def test_anchor_features_move_the_nearest_training_anomaly_by_the_decoder_change(graph, fitted, monkeypatch):
    aug, tr = fitted
    syn = aug.sample(10, seed=6)
    with aug.sampling_options(anchor_features=False):
        plain = aug.sample(10, seed=6)
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
    np.testing.assert_allclose(syn.x, want, rtol=1e-5, atol=1e-5)
    # latents equal to training anomalies' means give back those anomalies' exact features
    z_a = aug.z_real_["node"][torch.from_numpy(pool[:3])]
    with monkeypatch.context() as mp:
        mp.setattr(aug, "sample_latents", lambda n, *a, **k: z_a[:n])
        exact = aug.sample(3, seed=6)
    np.testing.assert_allclose(exact.x, graph.x["node"][pool[:3]], rtol=1e-5, atol=1e-5)
    assert np.abs(syn.x - plain.x).max() > 1e-3
