"""Small graphs and settings shared by the augmenter tests (imported by name, like
tests/integrations/_dist_worker.py: pytest puts this folder on sys.path)."""
from __future__ import annotations

import numpy as np

from pygad.data import HeteroGraph

TINY = dict(latent_dim=8, hidden_channels=16, num_layers=1, heads=2, decoder_hidden=16, vae_epochs=4,
            diffusion_hidden=32, diffusion_layers=1, diffusion_epochs=3, steps=4)


def sym_graph(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(np.int8)
    y[:6] = 1
    x = rng.normal(size=(n, 4)).astype(np.float32) + y[:, None]
    src, dst = rng.integers(0, n, 300), rng.integers(0, n, 300)
    e = np.unique(np.concatenate([np.stack([src, dst]), np.stack([dst, src])], 1), axis=1)
    return HeteroGraph.homogeneous(e, n, x=x, y=y, name="sym")
