"""End-to-end speed of what users run: ``GNNDetector.fit`` and ``LatentDiffusionAugmenter.fit``
with pygad's HGT against the same models built on ``torch_geometric.nn.HGTConv`` (same layers,
widths, epochs, data), side by side in one run; the ratios print at the end.

    python -P -m pytest bench/bench_fit.py --benchmark-only -k "detector and epochs"  # a few epochs
    python -P -m pytest bench/bench_fit.py --benchmark-only -k "detector and full"    # whole fits
    python -P -m pytest bench/bench_fit.py --benchmark-only -k augmenter              # VAE + diffusion

The PyG twins swap only the encoder: the detector through its ``_build`` hook (a subclass),
the augmenter by wrapping ``GraphVAE.from_graph`` for the duration of the fit. Everything else
(inputs, heads, decoders, losses, early stopping, the diffusion) is the same code.
``PYGAD_BENCH_ROUNDS`` sets the repetitions (default 3 for the few-epoch fits, 1 otherwise).
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
import torch
from torch import nn

DATASETS = ["reddit", "yelpchi_2rel_nofeat"]
IMPLS = ["pygad", "pyg"]
ROUNDS = os.environ.get("PYGAD_BENCH_ROUNDS")


class PyGHGT(nn.Module):
    """pygad's :class:`pygad.nn.HGT` with PyG's ``HGTConv`` layers: per-type input projection +
    ReLU, then per layer dropout, the conv, and types without output carried through."""

    def __init__(self, in_channels, hidden, metadata, num_layers, heads, dropout):
        super().__init__()
        from torch_geometric.nn import HGTConv as PyGHGTConv

        node_types = list(metadata[0])
        if not isinstance(in_channels, dict):
            in_channels = {nt: int(in_channels) for nt in node_types}
        self.dropout = dropout
        self.input_lin = nn.ModuleDict({nt: nn.Linear(in_channels[nt], hidden) for nt in node_types})
        self.convs = nn.ModuleList([PyGHGTConv(hidden, hidden, metadata, heads=heads) for _ in range(num_layers)])

    def forward(self, x_dict, edge_index_dict):
        h = {nt: torch.relu(self.input_lin[nt](x)) for nt, x in x_dict.items()}
        for conv in self.convs:
            if self.dropout > 0:
                h = {nt: nn.functional.dropout(v, self.dropout, self.training) for nt, v in h.items()}
            out = conv(h, edge_index_dict)
            h = {nt: v if out.get(nt) is None else out[nt] for nt, v in h.items()}
        return h


def pyg_detector_class():
    from pygad.models.detectors import GNNDetector

    class PyGGNNDetector(GNNDetector):
        """GNNDetector whose encoder is :class:`PyGHGT` (built in the same RNG order)."""

        def _build(self):
            net = super()._build()
            net.encoder = PyGHGT(self.in_channels_, self.hidden_channels, self.metadata_, self.num_layers,
                                 self.heads, self.dropout)
            return net

    return PyGGNNDetector


@contextlib.contextmanager
def pyg_vae_encoder():
    """While active, every ``GraphVAE.from_graph`` gets a :class:`PyGHGT` encoder of the same shape."""
    from pygad.models.vae import GraphVAE

    original = GraphVAE.from_graph.__func__

    def from_graph(cls, graph, *args, **kwargs):
        m = original(cls, graph, *args, **kwargs)
        enc = m.encoder
        m.encoder = PyGHGT(enc.in_channels, enc.hidden_channels, m.enc_metadata, enc.num_layers,
                           enc.convs[0].heads if len(enc.convs) else 1, enc.dropout)
        return m

    GraphVAE.from_graph = classmethod(from_graph)
    try:
        yield
    finally:
        GraphVAE.from_graph = classmethod(original)


@pytest.fixture(scope="module")
def graphs():
    from pygad.datasets import load
    from pygad.evaluation import stratified_split

    out = {}
    for name in DATASETS:
        g = load(name)
        tr, va, _ = stratified_split(g.y[g.target_type()], 0)[:3]
        out[name] = (g, tr, va)
    return out


def _detector(impl, **kw):
    from pygad.models.detectors import GNNDetector

    cls = GNNDetector if impl == "pygad" else pyg_detector_class()
    return cls(random_state=0, verbose=False, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("data", DATASETS)
def test_detector_fit_epochs(benchmark, graphs, data, impl):
    """GNNDetector.fit for 5 epochs (default model, early-stopping evaluation every epoch)."""
    pytest.importorskip("torch_geometric")
    g, tr, va = graphs[data]
    epochs = 5
    _detector(impl, epochs=1).fit(g, tr, va)   # warm: allocator, lazy imports
    benchmark.group = f"GNNDetector.fit {data} epochs={epochs}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["threads"] = torch.get_num_threads()
    benchmark.extra_info["load1"] = round(os.getloadavg()[0], 1)
    benchmark.pedantic(lambda: _detector(impl, epochs=epochs, patience=epochs).fit(g, tr, va),
                       rounds=int(ROUNDS or 3), iterations=1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("data", DATASETS)
def test_detector_fit_full(benchmark, graphs, data, impl):
    """GNNDetector.fit with its defaults (up to 100 epochs, patience 20): the whole fit."""
    pytest.importorskip("torch_geometric")
    g, tr, va = graphs[data]
    fitted = {}

    def fit():
        fitted["det"] = _detector(impl).fit(g, tr, va)

    benchmark.group = f"GNNDetector.fit {data} full"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["load1"] = round(os.getloadavg()[0], 1)
    benchmark.pedantic(fit, rounds=int(ROUNDS or 1), iterations=1)
    benchmark.extra_info["epochs_run"] = len(fitted["det"].history_)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("vae_epochs", [5, 100])
def test_augmenter_fit_reddit(benchmark, graphs, vae_epochs, impl):
    """LatentDiffusionAugmenter.fit on reddit, default settings (vae_epochs=100) and a 5-epoch VAE."""
    pytest.importorskip("torch_geometric")
    from pygad.models.augment import LatentDiffusionAugmenter

    g, tr, _ = graphs["reddit"]

    def fit():
        with pyg_vae_encoder() if impl == "pyg" else contextlib.nullcontext():
            LatentDiffusionAugmenter(vae_epochs=vae_epochs, random_state=0).fit(g, tr)

    benchmark.group = f"LatentDiffusionAugmenter.fit reddit vae_epochs={vae_epochs}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["load1"] = round(os.getloadavg()[0], 1)
    benchmark.pedantic(fit, rounds=int(ROUNDS or 1), iterations=1)


def test_pyg_twin_detector_has_the_same_shape():
    """The twin is a like-for-like comparison: the same parameter count as pygad's model."""
    pytest.importorskip("torch_geometric")
    from pygad.data import HeteroGraph

    rng = np.random.default_rng(0)
    g = HeteroGraph.homogeneous(rng.integers(0, 50, (2, 200)), 50, x=rng.normal(size=(50, 6)),
                                y=(rng.random(50) < 0.3).astype(np.int8))
    tr = np.arange(50) < 30
    a, b = _detector("pygad", epochs=1).fit(g, tr), _detector("pyg", epochs=1).fit(g, tr)
    assert sum(p.numel() for p in a.model_.parameters()) == sum(p.numel() for p in b.model_.parameters())
