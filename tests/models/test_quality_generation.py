"""The generation-quality metrics of bench/quality/generation.py on toy distributions whose
answer is known, and the harness on a tiny graph."""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from _augment_graphs import TINY, sym_graph

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "quality", "generation.py")


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("bench_quality_generation", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def _gauss(seed, n=400, d=4, shift=0.0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_knn_radii_and_distances(gen):
    x = np.array([[0.0], [1.0], [3.0]])
    np.testing.assert_allclose(gen.knn_radii(x, 1), [1.0, 1.0, 2.0])
    np.testing.assert_allclose(gen.pairwise_distances(x, x[:1]).ravel(), [0.0, 1.0, 3.0])
    with pytest.raises(ValueError, match="'k'"):
        gen.knn_radii(x, 3)


def test_identical_distributions(gen):
    real, fake = _gauss(0), _gauss(1)
    p, r = gen.precision_recall(real, fake, k=5)
    assert p > 0.9 and r > 0.9
    d, c = gen.density_coverage(real, fake, k=5)
    assert 0.8 < d < 1.2 and c > 0.9
    assert abs(gen.c2st_auc(real, fake) - 0.5) < 0.07
    ratio, copies = gen.memorisation(_gauss(2), real, fake)
    assert 0.8 < ratio < 1.25 and copies == 0.0


def test_disjoint_distributions(gen):
    real, fake = _gauss(0), _gauss(1, shift=50.0)
    assert gen.precision_recall(real, fake, k=5) == (0.0, 0.0)
    assert gen.density_coverage(real, fake, k=5) == (0.0, 0.0)
    assert gen.c2st_auc(real, fake) > 0.99


def test_mode_collapse_lowers_recall_not_precision(gen):
    real = _gauss(0)
    fake = _gauss(1, n=400) * 0.1  # all fakes in the centre of the real distribution
    p, r = gen.precision_recall(real, fake, k=5)
    assert p > 0.95 and r < 0.3


def test_copies_are_memorisation(gen):
    train, held = _gauss(0), _gauss(1)
    ratio, copies = gen.memorisation(train, held, train[:100].copy())
    assert ratio == 0.0 and copies == 1.0


def test_harness_on_a_tiny_graph(gen):
    g = sym_graph(0, n=200)
    r = gen.run(g, seeds=1, k=2, augmenter_kwargs=TINY, train_anomalies=6, train_normals=30, verbose=False)
    rows = set(r["mean"])
    for m in gen.METHODS:
        assert {f"{m}/latent", f"{m}/feature"} <= rows
    assert {"diffusion_z/latent", "vae_z/latent", "real_heldout/latent"} <= rows
    for q in r["mean"].values():
        assert 0.0 <= q["precision"] <= 1.0 and 0.0 <= q["c2st"] <= 1.0
    assert "precision" in gen.format_result(r)
