"""The detector and the augmenter trained on a GPU (``device="cuda"``): they fit, score and
sample there, and the GNN's scores agree with a CPU fit of the same seed. Skipped unless a GPU
is visible and pygad was built with CUDA."""
from __future__ import annotations

import numpy as np
import pytest

from _augment_graphs import TINY, sym_graph
from pygad.models import GNNDetector, LatentDiffusionAugmenter
from pygad.testing import requires_cuda

pytestmark = [pytest.mark.cuda, requires_cuda]


def test_gnn_detector_on_cuda_matches_cpu():
    graph = sym_graph(0)
    mask = np.arange(120) < 80
    fits = [GNNDetector(hidden_channels=16, num_layers=2, heads=2, epochs=5, dropout=0.0, device=dev,
                        random_state=0, verbose=False).fit(graph, mask) for dev in ("cpu", "cuda")]
    cpu, gpu = (d.decision_function(graph) for d in fits)
    assert np.isfinite(gpu).all()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4)


def test_augmenter_on_cuda_appends_training_anomalies():
    graph = sym_graph(1)
    mask = np.arange(120) < 80
    aug = LatentDiffusionAugmenter(**TINY, device="cuda", random_state=0).fit(graph, mask)
    g2, m2 = aug.augment(graph, mask)
    added = len(m2) - len(mask)
    (t,) = graph.y  # the one node type
    assert added == int(graph.y[t][mask].sum())  # default: as many as the training anomalies
    assert m2[len(mask):].all() and (g2.y[t][len(mask):] == 1).all()
    assert np.isfinite(g2.x[t]).all()
