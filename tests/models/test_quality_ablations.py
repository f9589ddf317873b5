"""The ablation harness bench/quality/ablations.py on a tiny graph: every method runs, the
sampling variants share one fit per seed, and the variants match the public entry points."""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from _augment_graphs import TINY, sym_graph
from pygad.evaluation import get_split
from pygad.models.augment import LatentDiffusionAugmenter, append_nodes
from pygad.registry import make_augmenter

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "quality", "ablations.py")


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("bench_quality_ablations", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def graph():
    return sym_graph(seed=2, n=160)


def test_every_method_runs_and_sampling_variants_share_a_fit(harness, graph, monkeypatch):
    fits = []
    orig = LatentDiffusionAugmenter.fit
    monkeypatch.setattr(LatentDiffusionAugmenter, "fit", lambda self, *a: fits.append(self._ablation) or orig(self, *a))
    res = harness.run(graph, harness.METHODS, seeds=1, detector="feature", augmenter_kwargs=TINY,
                      detector_kwargs={"max_iter": 20}, verbose=False)
    assert list(res["runs"]) == list(harness.METHODS)
    # diffusion, vae, no_attach, decoded_edges: one fit; no_hetero and no_cond: one each
    assert len(fits) == 3 and sorted((ab.hetero, ab.conditional) for ab in fits) == \
        [(False, True), (True, False), (True, True)]
    tr = get_split(graph, "node", 0)[0]
    n_anom = int((graph.y["node"][tr] == 1).sum())
    for m, rs in res["runs"].items():
        assert len(rs) == 1 and 0.0 <= rs[0]["auc"] <= 1.0
        assert rs[0]["n_synthetic"] == (0 if m == "none" else n_anom)
    assert "decoded_edges" in harness.format_table(res)


def test_vae_variant_equals_the_registered_vae_augmenter(harness, graph):
    from pygad.evaluation import make_detector
    from pygad.metrics import evaluate

    dkw = {"max_iter": 20}
    res = harness.run(graph, ["vae"], seeds=1, detector="feature", augmenter_kwargs=TINY, detector_kwargs=dkw,
                      verbose=False)
    tr, va, te, _ = get_split(graph, "node", 0)
    g2, tr2 = make_augmenter("vae", random_state=0, **TINY).augment(graph, tr)
    n0 = graph.num_nodes["node"]
    va2 = np.r_[va, np.zeros(g2.num_nodes["node"] - n0, bool)]
    s = make_detector("feature", 0, verbose=False, **dkw).fit(g2, tr2, va2).decision_function(g2)[:n0]
    want = evaluate(graph.y["node"][te], s[te])
    assert res["runs"]["vae"][0]["auc"] == want["auc"] and res["runs"]["vae"][0]["ap"] == want["ap"]


def test_diffusion_variant_samples_what_augment_appends(harness, graph):
    tr = get_split(graph, "node", 0)[0]
    aug = LatentDiffusionAugmenter._configured(harness.ablation("diffusion"), random_state=0, **TINY).fit(graph, tr)
    syn = aug._sample(aug.default_count(), 1, ablation=harness.ablation("diffusion"))
    g_h, _ = append_nodes(aug.graph_, aug.train_mask_, syn)
    g_p, _ = LatentDiffusionAugmenter(random_state=0, **TINY).augment(graph, tr)
    np.testing.assert_array_equal(g_h.x["node"], g_p.x["node"])
    for et in g_p.edge_types:
        np.testing.assert_array_equal(g_h.edge_index[et], g_p.edge_index[et])


def test_unknown_method_is_refused(harness, graph):
    with pytest.raises(ValueError, match="unknown method"):
        harness.run(graph, ["no_such"], seeds=1)
