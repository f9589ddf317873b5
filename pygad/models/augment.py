"""Training-graph augmentation for anomaly detection: latent diffusion and baselines.

All augmenters share one interface:

* ``fit(graph, train_mask) -> self`` learns from the graph, seeing labels of the training
  nodes (of the labelled target node type) only;
* ``sample(n, label=1) -> SyntheticNodes``: ``n`` new nodes with features, node types,
  edges (to real nodes and among themselves) and, for temporal relations, timestamps;
* ``augment(graph, train_mask) -> (graph, train_mask)``: fits if needed, samples
  ``n_synthetic`` anomalies (default: as many as there are training anomalies, times
  ``ratio``) and appends them *after* the real nodes of the target type, labelled 1 and
  marked as training nodes (mask ``"synthetic"`` in ``graph.masks``). Real nodes keep their
  order, labels and masks; validation and test nodes are never touched (the returned train
  mask is the old one padded with True for the new nodes; stored val/test masks are padded
  with False).

Augmenters:

* :class:`LatentDiffusionAugmenter`: a :class:`~pygad.models.vae.GraphVAE` (HGT encoder,
  label-conditioned decoders for features, structure per relation, timestamps, degrees and
  node type) + :class:`~pygad.models.LatentDiffusion` on the encoder means of the training
  nodes, sampled for label 1 (classifier-free guidance scale ``guidance``, default 1: the
  conditional model as trained). By default each sampled latent is *anchored* on the training
  anomaly whose encoder mean is nearest: the new node gets that anomaly's edges (with times
  and attributes, ``template_edges``) and its exact features moved by the decoder's change
  between the two latents (``anchor_features``). With ``template_edges=False`` the new node is
  attached to real nodes picked by the structure decoder instead (shortlist by its bilinear
  term, rescoring by the full pair scorer, Gumbel-top-k sampling of ``k`` neighbours, ``k``
  from the degree decoder); with ``anchor_features=False`` its features are the decoded mean.
  (Both defaults and ``guidance=1`` were chosen on validation seeds; README, Quality.)
  Ablations: ``diffusion=False`` (latents drawn from the VAE posteriors of training
  anomalies), ``hetero=False`` (one merged node/edge type in the encoder), ``conditional=False``
  (no labels anywhere; unconditional sampling), ``attach=False`` (synthetic nodes linked only
  among themselves, a disjoint union as in GODM).
* :class:`RandomOversampler`: duplicates of random training anomalies, with their edges.
* :class:`SMOTEAugmenter`: feature interpolation between a training anomaly and one of its
  ``k`` nearest anomalous neighbours (standardised feature space), edges of the source.
* :class:`MixupAugmenter`: convex combination (``lambda ~ Beta(alpha, alpha)``) of two training
  anomalies' features, edges of the one with the larger weight.

Edges are added so that a symmetric relation stays symmetric (both directions); for directed
relations a copied or decoded edge keeps its direction.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..data.graph import HeteroGraph

__all__ = ["SyntheticNodes", "LatentDiffusionAugmenter", "RandomOversampler", "SMOTEAugmenter", "MixupAugmenter",
           "append_nodes", "make_augmenter", "AUGMENTER_NAMES"]

_FORMAT = "pygad.LatentDiffusionAugmenter/1"


@dataclass
class SyntheticNodes:
    """New nodes of node type ``target`` (indices ``n_real .. n_real + n - 1``).

    Attributes:
        target: node type of the new nodes.
        n_real: number of real nodes of ``target`` (the first new node's index).
        x: float32 [n, F] features.
        node_type: [n] decoded node type names (all ``target`` for single-type graphs).
        label: the label the nodes were sampled for (1 = anomaly).
        edges: ``{edge_type: int64 [2, E]}`` new edges, in the augmented index space.
        edge_time: ``{edge_type: float64 [E]}`` for temporal relations.
        edge_attr: ``{edge_type: float32 [E] or [E, D]}`` for relations with attributes.
        z: float32 [n, d] latents (latent-space augmenters only).
    """
    target: str
    n_real: int
    x: np.ndarray
    node_type: np.ndarray
    label: int = 1
    edges: Dict[tuple, np.ndarray] = field(default_factory=dict)
    edge_time: Dict[tuple, np.ndarray] = field(default_factory=dict)
    edge_attr: Dict[tuple, np.ndarray] = field(default_factory=dict)
    z: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


# ---- assembly --------------------------------------------------------------------------------
def append_nodes(graph: HeteroGraph, train_mask, syn: SyntheticNodes) -> tuple:
    """The graph with ``syn`` appended to node type ``syn.target`` as labelled training nodes.

    Returns:
        ``(graph, train_mask)``: the new graph (real nodes unchanged and first) and the train
        mask padded with True for the new nodes.
    """
    t, n_new = syn.target, len(syn)
    n0 = graph.num_nodes[t]
    if syn.n_real != n0:
        raise ValueError(f"the synthetic nodes were indexed for {syn.n_real} real {t!r} nodes, the graph has {n0}")
    from .vae import _mask_to_bool
    tr = _mask_to_bool(train_mask, n0)
    num_nodes = dict(graph.num_nodes)
    num_nodes[t] = n0 + n_new
    x = dict(graph.x)
    if t in graph.x:
        x[t] = np.concatenate([graph.x[t], syn.x.astype(np.float32)], 0)
    y = dict(graph.y)
    y[t] = np.concatenate([graph.y[t], np.full(n_new, syn.label, dtype=np.int8)])
    masks = {k: dict(v) for k, v in graph.masks.items()}
    mt = masks.setdefault(t, {})
    for name, m in list(mt.items()):
        fill = name == "train" and m.ndim == 1
        pad = np.full(m.shape[:-1] + (n_new,), fill, dtype=bool)
        mt[name] = np.concatenate([m, pad], -1)
    mt["synthetic"] = np.r_[np.zeros(n0, bool), np.ones(n_new, bool)]
    ei, et_time, et_attr = dict(graph.edge_index), dict(graph.edge_time), dict(graph.edge_attr)
    for et, e in syn.edges.items():
        if e.shape[1] == 0:
            continue
        ei[et] = np.concatenate([graph.edge_index[et], e.astype(np.int64)], 1)
        if et in graph.edge_time:
            tt = syn.edge_time.get(et)
            if tt is None:
                tt = np.full(e.shape[1], float(np.median(graph.edge_time[et])) if graph.edge_time[et].size else 0.0)
            et_time[et] = np.concatenate([graph.edge_time[et], tt.astype(np.float64)])
        if et in graph.edge_attr:
            a = graph.edge_attr[et]
            aa = syn.edge_attr.get(et)
            if aa is None:
                aa = np.repeat(a.mean(0, keepdims=True) if a.size else np.zeros((1,) + a.shape[1:]), e.shape[1], 0)
            et_attr[et] = np.concatenate([a, aa.reshape((e.shape[1],) + a.shape[1:]).astype(np.float32)], 0)
    g = HeteroGraph(num_nodes, ei, x=x, y=y, masks=masks, edge_time=et_time, edge_attr=et_attr,
                    features_derived=graph.features_derived, name=graph.name)
    g.feature_names = dict(graph.feature_names)
    return g, np.r_[tr, np.ones(n_new, bool)]


def _inbound_mask(e: np.ndarray, et: tuple, t: str, n0: int) -> np.ndarray:
    """Which edges of relation ``et`` end in a synthetic node (``>= n0`` of type ``t``): the only
    ones ``inbound_only`` keeps, so real nodes' neighbourhoods (and the features of
    validation/test nodes) stay exactly as they were."""
    return e[1] >= n0 if et[2] == t else np.zeros(e.shape[1], bool)


def _copy_edges(graph: HeteroGraph, t: str, sources: np.ndarray, n0: int) -> tuple:
    """Edges of real nodes ``sources`` of type ``t`` re-attached to new nodes ``n0 + i``.

    Every incoming and outgoing edge of ``sources[i]`` in every relation is copied with the
    source node replaced by ``n0 + i`` (self-loops become self-loops of the new node), with
    its time and attributes. For a symmetric relation this keeps it symmetric.
    """
    edges, times, attrs = {}, {}, {}
    for et in graph.edge_types:
        if t not in (et[0], et[2]):
            continue
        e = graph.edge_index[et]
        parts, eids = [], []
        new_of = np.full(graph.num_nodes[t], -1, dtype=np.int64)
        # a real node may be the source of several new nodes: handle repeats by rounds
        order = np.argsort(sources, kind="stable")
        srt = sources[order]
        first = np.r_[True, srt[1:] != srt[:-1]]
        rank = np.arange(srt.size) - np.maximum.accumulate(np.where(first, np.arange(srt.size), 0))
        for r in range(int(rank.max()) + 1 if rank.size else 0):
            sel = order[rank == r]
            new_of[:] = -1
            new_of[sources[sel]] = n0 + sel
            if et[2] == t:
                hit = np.flatnonzero(new_of[e[1]] >= 0)
                src = e[0, hit].copy()
                if et[0] == t:
                    loop = new_of[src] >= 0
                    loop &= src == e[1, hit]
                    src[loop] = new_of[src[loop]]
                parts.append(np.stack([src, new_of[e[1, hit]]]))
                eids.append(hit)
            if et[0] == t:
                hit = np.flatnonzero(new_of[e[0]] >= 0)
                if et[2] == t:
                    hit = hit[e[1, hit] != e[0, hit]]  # self-loops done above
                parts.append(np.stack([new_of[e[0, hit]], e[1, hit]]))
                eids.append(hit)
        if parts:
            edges[et] = np.concatenate(parts, 1)
            eid = np.concatenate(eids)
            if et in graph.edge_time:
                times[et] = graph.edge_time[et][eid]
            if et in graph.edge_attr:
                attrs[et] = graph.edge_attr[et][eid]
    return edges, times, attrs


# ---- base ------------------------------------------------------------------------------------
class _Augmenter:
    """Shared plumbing: the target type, the default count, ``augment``."""

    def _start(self, graph: HeteroGraph, train_mask):
        from .vae import _mask_to_bool, _with_features
        self._check_count_settings()
        graph = _with_features(graph)
        t = graph.target_type(getattr(self, "target", None))
        tr = _mask_to_bool(train_mask, graph.num_nodes[t])
        y = graph.y[t]
        anom = np.flatnonzero(tr & (y == 1))
        if anom.size == 0:
            raise ValueError(f"the training nodes of {t!r} contain no anomalies to augment")
        self.target_, self.graph_, self.train_mask_ = t, graph, tr
        self.train_anomalies_ = anom
        self._fit_key = (id(graph), tr.tobytes().__hash__())
        return graph, t, tr

    def _check_count_settings(self) -> None:
        # checked at fit, before any expensive training, so a bad count fails fast
        n, r = getattr(self, "n_synthetic", None), getattr(self, "ratio", 1.0)
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise ValueError(f"'n_synthetic' must be an integer >= 1 or None, got {n!r}")
        if isinstance(r, bool) or not isinstance(r, (int, float, np.integer, np.floating)) or not r > 0 \
                or not np.isfinite(r):
            raise ValueError(f"'ratio' must be a finite number > 0, got {r!r}")

    def default_count(self) -> int:
        n = getattr(self, "n_synthetic", None)
        if n is not None:
            return int(n)
        return max(1, int(round(getattr(self, "ratio", 1.0) * self.train_anomalies_.size)))

    def _check_fitted(self):
        if not hasattr(self, "graph_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(graph, train_mask) first")

    def augment(self, graph: HeteroGraph, train_mask) -> tuple:
        """``(augmented graph, train mask)``: ``n_synthetic`` sampled anomalies appended as training nodes."""
        from .vae import _mask_to_bool, _with_features
        graph = _with_features(graph)
        t = graph.target_type(getattr(self, "target", None))
        tr = _mask_to_bool(train_mask, graph.num_nodes[t])
        if getattr(self, "_fit_key", None) != (id(graph), tr.tobytes().__hash__()) or self.graph_ is not graph:
            self.fit(graph, tr)
        syn = self.sample(self.default_count(), label=1)
        return append_nodes(self.graph_, self.train_mask_, syn)


class RandomOversampler(_Augmenter):
    """Duplicates of random training anomalies (features, and all their edges).

    Args:
        n_synthetic: number of new nodes (default ``ratio`` x training anomalies).
        ratio: see ``n_synthetic``.
        target: labelled node type (default: the graph's).
        random_state: seed.
    """

    def __init__(self, n_synthetic: Optional[int] = None, ratio: float = 1.0, target: Optional[str] = None,
                 random_state: Optional[int] = None):
        self.n_synthetic, self.ratio, self.target, self.random_state = n_synthetic, ratio, target, random_state

    def fit(self, graph: HeteroGraph, train_mask) -> "RandomOversampler":
        self._start(graph, train_mask)
        self._rng = np.random.default_rng(self.random_state)
        return self

    def _pool(self, label: int) -> np.ndarray:
        if label == 1:
            return self.train_anomalies_
        return np.flatnonzero(self.train_mask_ & (self.graph_.y[self.target_] == label))

    def _parents(self, n: int, label: int) -> tuple:
        pool = self._pool(label)
        a = self._rng.choice(pool, size=n, replace=True)
        return a, self.graph_.x[self.target_][a].copy()

    def sample(self, n: int, label: int = 1) -> SyntheticNodes:
        """``n`` new nodes built from training nodes of class ``label``."""
        self._check_fitted()
        g, t = self.graph_, self.target_
        src, x = self._parents(int(n), int(label))
        n0 = g.num_nodes[t]
        edges, times, attrs = _copy_edges(g, t, src, n0)
        return SyntheticNodes(t, n0, x.astype(np.float32), np.full(int(n), t, dtype=object), int(label), edges, times,
                              attrs)


class SMOTEAugmenter(RandomOversampler):
    """SMOTE on node features: ``x = x_a + u (x_b - x_a)``, ``u ~ U(0, 1)``, ``b`` one of the
    ``k`` nearest training anomalies of ``a`` (standardised features); edges of ``a``."""

    def __init__(self, k: int = 5, n_synthetic: Optional[int] = None, ratio: float = 1.0,
                 target: Optional[str] = None, random_state: Optional[int] = None):
        super().__init__(n_synthetic, ratio, target, random_state)
        self.k = k

    def _parents(self, n, label):
        pool = self._pool(label)
        X = self.graph_.x[self.target_]
        xs = X[pool]
        sd = X.std(0)
        xs_std = xs / np.where(sd > 1e-8, sd, 1.0)
        d2 = ((xs_std[:, None, :] - xs_std[None, :, :]) ** 2).sum(-1) if pool.size <= 4096 else None
        a_pos = self._rng.integers(0, pool.size, n)
        if pool.size == 1:
            return pool[a_pos], xs[a_pos].copy()
        k = min(self.k, pool.size - 1)
        b_pos = np.empty(n, dtype=np.int64)
        for i, ap in enumerate(a_pos):
            row = d2[ap] if d2 is not None else ((xs_std - xs_std[ap]) ** 2).sum(1)
            row = row.copy()
            row[ap] = np.inf
            nn = np.argpartition(row, k - 1)[:k]
            b_pos[i] = self._rng.choice(nn)
        u = self._rng.random((n, 1)).astype(np.float32)
        return pool[a_pos], xs[a_pos] + u * (xs[b_pos] - xs[a_pos])


class MixupAugmenter(RandomOversampler):
    """Mixup of two training anomalies: ``x = lam x_a + (1 - lam) x_b``, ``lam ~ Beta(alpha, alpha)``;
    the edges of ``a`` when ``lam >= 0.5`` else of ``b``."""

    def __init__(self, alpha: float = 0.4, n_synthetic: Optional[int] = None, ratio: float = 1.0,
                 target: Optional[str] = None, random_state: Optional[int] = None):
        super().__init__(n_synthetic, ratio, target, random_state)
        self.alpha = alpha

    def _parents(self, n, label):
        pool = self._pool(label)
        X = self.graph_.x[self.target_]
        a = self._rng.choice(pool, n)
        b = self._rng.choice(pool, n)
        lam = self._rng.beta(self.alpha, self.alpha, (n, 1)).astype(np.float32)
        x = lam * X[a] + (1 - lam) * X[b]
        return np.where(lam[:, 0] >= 0.5, a, b), x


# ---- the latent diffusion augmenter ----------------------------------------------------------
class LatentDiffusionAugmenter(_Augmenter):
    """Synthesise anomalous nodes with a graph VAE + latent diffusion (see the module docstring).

    Args:
        n_synthetic: nodes added by :meth:`augment` (default ``ratio`` x training anomalies).
        ratio: see ``n_synthetic``.
        latent_dim, hidden_channels, num_layers, heads, decoder_hidden, beta: the
            :class:`~pygad.models.vae.GraphVAE` (``beta``: KL weight).
        vae_epochs, vae_lr: VAE training; batch_size, fanouts: mini-batch neighbour sampling
            for large graphs (None: full batch).
        diffusion_hidden, diffusion_layers, diffusion_epochs: the latent denoiser and its training.
        guidance: classifier-free guidance scale for label-1 sampling (1: the conditional
            model; > 1 pushes further from the unconditional one, which validated worse).
        steps: Heun sampler steps.
        diffusion, hetero, conditional, attach: ablation switches (module docstring).
        shortlist: candidate neighbours per synthetic node rescored by the full pair scorer.
        feature_noise: the decoder gives the mean features of a latent; add Gaussian noise with
            ``feature_noise`` x the per-feature std of its residual on the training anomalies
            (0: none).
        select: draw ``select`` x n anomaly latents and keep the n that lie most clearly in the
            anomalous region of the real training latents (class-balanced k-NN distance ratio);
            1 = no filtering.
        diffusion_min_steps: train the denoiser for at least this many updates (small graphs
            give few batches per epoch); 0 = ``diffusion_epochs`` only.
        inbound_only: add only edges *into* synthetic nodes (real -> synthetic), so no real
            node's neighbourhood changes (a symmetric relation is then no longer symmetric).
        template_edges: give each synthetic node the edges (with times and attributes) of the
            training node of its class whose encoder mean is nearest to its latent (default);
            False: edges to real nodes chosen by the structure decoder. Needs ``attach``;
            ``inbound_only`` keeps only the copied edges into the new node.
        anchor_features: features of that same nearest training node (its exact values) plus
            the decoder's change from its encoder mean to the sampled latent,
            ``x = x_a + D(z) - D(mu_a)`` (standardised space; default), instead of ``D(z)``
            alone: the decoder moves a real node instead of drawing its smoothed mean.
        target: labelled node type (default: the graph's).
        device: torch device.
        random_state: seed.
        verbose: progress bars.
        distributed: data-parallel :meth:`fit` over the default ``torch.distributed`` process
            group, passed to :meth:`GraphVAE.fit <pygad.models.vae.GraphVAE.fit>` (full-batch
            only) and :meth:`LatentDiffusion.fit <pygad.models.LatentDiffusion.fit>`: every
            rank holds the graph, scores its shard of the nodes/edges/latent rows with the
            single-process noise draws, and the gradients are summed over ranks, so the fit
            follows the single-process one and every rank ends with the same models. Give
            each rank its own device (e.g. ``device=f"cuda:{local_rank}"`` with NCCL).
    """

    def __init__(self, n_synthetic: Optional[int] = None, ratio: float = 1.0, latent_dim: int = 16,
                 hidden_channels: int = 64, num_layers: int = 2, heads: int = 4, decoder_hidden: int = 64,
                 beta: float = 0.01, vae_epochs: int = 100, vae_lr: float = 5e-3, batch_size: Optional[int] = None,
                 fanouts=(10, 5), diffusion_hidden: int = 256, diffusion_layers: int = 3,
                 diffusion_epochs: int = 150, guidance: float = 1.0, steps: int = 24, diffusion: bool = True,
                 hetero: bool = True, conditional: bool = True, attach: bool = True, shortlist: int = 64,
                 feature_noise: float = 0.0, select: float = 1.0, diffusion_min_steps: int = 0,
                 inbound_only: bool = False, template_edges: bool = True, anchor_features: bool = True,
                 target: Optional[str] = None, device: str = "cpu", random_state: Optional[int] = None,
                 verbose: bool = False, distributed: bool = False):
        self.n_synthetic, self.ratio = n_synthetic, ratio
        self.latent_dim, self.hidden_channels, self.num_layers, self.heads = latent_dim, hidden_channels, num_layers, heads
        self.decoder_hidden, self.beta, self.vae_epochs, self.vae_lr = decoder_hidden, beta, vae_epochs, vae_lr
        self.batch_size, self.fanouts = batch_size, fanouts
        self.diffusion_hidden, self.diffusion_layers, self.diffusion_epochs = diffusion_hidden, diffusion_layers, diffusion_epochs
        self.guidance, self.steps = guidance, steps
        self.diffusion, self.hetero, self.conditional, self.attach = diffusion, hetero, conditional, attach
        self.shortlist, self.target, self.device = shortlist, target, device
        self.feature_noise, self.select, self.diffusion_min_steps = feature_noise, select, diffusion_min_steps
        self.inbound_only, self.template_edges, self.anchor_features = inbound_only, template_edges, anchor_features
        self.random_state, self.verbose = random_state, verbose
        self.distributed = distributed

    #: settings read only when sampling, so they can change on a fitted model
    SAMPLING_OPTIONS = ("guidance", "steps", "attach", "shortlist", "feature_noise", "select", "inbound_only",
                        "template_edges", "anchor_features")

    @contextlib.contextmanager
    def sampling_options(self, **options):
        """Set sampling settings (:attr:`SAMPLING_OPTIONS`) for one ``with`` block, then restore
        them: several sampling variants (``pygad.demo``'s ablations) share one fitted model."""
        unknown = sorted(set(options) - set(self.SAMPLING_OPTIONS))
        if unknown:
            raise ValueError(f"not sampling options: {unknown}; choose from {list(self.SAMPLING_OPTIONS)}")
        old = {k: getattr(self, k) for k in options}
        for k, v in options.items():
            setattr(self, k, v)
        try:
            yield self
        finally:
            for k, v in old.items():
                setattr(self, k, v)

    def get_params(self) -> dict:
        import inspect
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    # -- fitting
    def fit(self, graph: HeteroGraph, train_mask) -> "LatentDiffusionAugmenter":
        """Train the VAE on ``graph`` (training labels only) and the diffusion on its latents."""
        import torch

        from .vae import GraphVAE, node_labels

        for name, lo in (("feature_noise", 0.0), ("select", 1.0), ("diffusion_min_steps", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < lo:
                raise ValueError(f"'{name}' must be a finite number >= {lo}, got {v!r}")
        graph, t, tr = self._start(graph, train_mask)
        dev = torch.device(self.device)
        seed = self.random_state
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(int(seed))
            vae = GraphVAE.from_graph(graph, latent_dim=self.latent_dim, hidden_channels=self.hidden_channels,
                                      num_layers=self.num_layers, heads=self.heads, decoder_hidden=self.decoder_hidden,
                                      beta=self.beta, hetero=self.hetero, conditional=self.conditional).to(dev)
        vae.fit(graph, tr, t, epochs=self.vae_epochs, lr=self.vae_lr, batch_size=self.batch_size,
                fanouts=self.fanouts, random_state=seed, verbose=self.verbose, distributed=self.distributed)
        self.vae_ = vae
        mu, lv = vae.embed(graph)
        self.z_real_ = {k: v.detach() for k, v in mu.items()}
        self.logvar_real_ = {k: v.detach() for k, v in lv.items()}
        self.labels_real_ = {k: torch.from_numpy(v).to(dev)
                             for k, v in node_labels(graph, tr, t, self.conditional).items()}
        self._degree_stats(graph, tr)
        self._residual_stats(graph)
        self.diffusion_model_ = None
        if self.diffusion:
            from .diffusion import LatentDiffusion
            lab = np.flatnonzero(tr & (graph.y[t] >= 0))
            z = self.z_real_[t][torch.from_numpy(lab).to(dev)]
            yl = torch.from_numpy(graph.y[t][lab].astype(np.int64)).to(dev) if self.conditional else None
            dm = LatentDiffusion(self.latent_dim, hidden=self.diffusion_hidden, num_layers=self.diffusion_layers,
                                 device=self.device, random_state=seed)
            # balance the classes seen by the denoiser: repeat anomalies up to ~1/4 of the rows
            if yl is not None:
                pos = torch.nonzero(yl == 1).flatten()
                reps = max(1, int(0.25 * len(lab) / max(1, pos.numel())))
                if reps > 1:
                    z = torch.cat([z] + [z[pos]] * (reps - 1))
                    yl = torch.cat([yl] + [yl[pos]] * (reps - 1))
            # small graphs give few batches per epoch: train for at least diffusion_min_steps updates
            epochs = max(int(self.diffusion_epochs), -(-int(self.diffusion_min_steps) // max(1, -(-len(z) // 256))))
            dm.fit(z, yl, epochs=epochs, batch_size=256, verbose=self.verbose, distributed=self.distributed)
            self.diffusion_model_ = dm
        return self

    def _degree_stats(self, graph, tr):
        """Per relation/direction: min and cap of the edge count of a synthetic node."""
        from .vae import node_degrees
        t = self.target_
        deg = np.expm1(node_degrees(graph, self.vae_.edge_types)[t])
        anom = self.train_anomalies_
        lo = (np.median(deg[anom], 0) >= 1).astype(np.int64)
        cap = np.maximum(1, np.ceil(np.quantile(deg[tr], 0.95, axis=0))).astype(np.int64)
        self.degree_lo_, self.degree_cap_ = lo, cap

    def _residual_stats(self, graph):
        """Per-feature std of the decoder's residual on the training anomalies (standardised
        space): the spread a decoded mean lacks, re-added to samples with ``feature_noise``."""
        import torch
        t, vae = self.target_, self.vae_
        anom = torch.from_numpy(self.train_anomalies_).to(self.z_real_[t].device)
        with torch.no_grad():
            lab = self.labels_real_[t][anom]
            rec = vae.decode_features(t, self.z_real_[t][anom], lab)
            res = vae.standardise(t, graph.x[t][self.train_anomalies_]) - rec
        self.residual_std_ = res.std(0, unbiased=anom.numel() > 1) if anom.numel() > 1 else res.abs()[0]

    def _select_realistic(self, z, n: int):
        """The ``n`` of the candidate latents ``z`` that lie most clearly in the anomalous region
        of the real training latents: largest ratio of the distance to the k-th nearest normal
        to the distance to the k-th nearest anomaly (a class-balanced k-NN check, k = 3)."""
        import torch
        t = self.target_
        zr, lr = self.z_real_[t], self.labels_real_[t]
        za, zn = zr[lr == 1], zr[lr == 0]
        if za.shape[0] == 0 or zn.shape[0] == 0 or z.shape[0] <= n:
            return z[:n]
        k_a, k_n = min(3, za.shape[0]), min(3, zn.shape[0])
        da = torch.cdist(z, za).topk(k_a, dim=1, largest=False).values[:, -1]
        dn = torch.cdist(z, zn).topk(k_n, dim=1, largest=False).values[:, -1]
        return z[torch.topk(dn / da.clamp_min(1e-8), n).indices]

    # -- sampling
    def sample_latents(self, n: int, label: Optional[int] = 1, guidance: Optional[float] = None, seed=None,
                       use_diffusion: Optional[bool] = None):
        """``n`` latents of class ``label``: from the diffusion model, or (``diffusion=False``, or
        ``use_diffusion=False`` on a fitted diffusion augmenter) from the VAE posteriors
        ``N(mu, diag(exp(logvar)))`` of random training nodes of that class."""
        import torch

        self._check_fitted()
        if use_diffusion is None:
            use_diffusion = self.diffusion_model_ is not None
        w = self.guidance if guidance is None else guidance
        seed = self.random_state if seed is None else seed
        t = self.target_
        if use_diffusion:
            if self.diffusion_model_ is None:
                raise ValueError("this augmenter was fitted with diffusion=False: no diffusion model to sample")
            lab = label if self.conditional else None
            return self.diffusion_model_.sample(int(n), label=lab, guidance=float(w) if lab is not None else 1.0,
                                                steps=self.steps, seed=seed)
        gen = torch.Generator(device=self.z_real_[t].device)
        gen.manual_seed(int(seed) if seed is not None else 0)
        if label is None or not self.conditional:
            pool = np.flatnonzero(self.train_mask_)
        else:
            pool = np.flatnonzero(self.train_mask_ & (self.graph_.y[t] == int(label)))
        pick = torch.from_numpy(pool[np.random.default_rng(seed).integers(0, pool.size, int(n))])
        mu, lv = self.z_real_[t][pick], self.logvar_real_[t][pick]
        return mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (0.5 * lv).exp()

    def sample(self, n: int, label: int = 1, guidance: Optional[float] = None, seed=None,
               use_diffusion: Optional[bool] = None) -> SyntheticNodes:
        """``n`` synthetic nodes of class ``label`` with features, types, edges and timestamps.

        Args:
            n: number of nodes.
            label: class to synthesise (1 = anomaly).
            guidance: classifier-free guidance scale (default: the constructor's).
            seed: sampling seed (default: ``random_state``).
            use_diffusion: False draws the latents from the VAE posteriors instead of the
                diffusion model (the ``diffusion=False`` ablation without refitting).

        Nodes decoded as another node type than the target are redrawn (up to 5 rounds).
        """
        import torch

        self._check_fitted()
        vae, t, g = self.vae_, self.target_, self.graph_
        n = int(n)
        ti = vae.node_types.index(t)
        seed = self.random_state if seed is None else seed
        zs = []
        got, rnd = 0, 0
        with torch.no_grad():
            # the k-NN realism filter judges anomaly-ness, so it applies to conditional label-1 draws
            sel = max(1.0, float(self.select)) if label is not None and int(label) == 1 and self.conditional else 1.0
            while got < n and rnd < 5:
                z = self.sample_latents(int(np.ceil(sel * (n - got if rnd else n))), label, guidance,
                                        seed=None if seed is None else int(seed) + 7919 * rnd,
                                        use_diffusion=use_diffusion)
                keep = vae.decode_type(z) == ti
                if rnd == 4:
                    keep[:] = True
                zs.append(z[keep])
                got += int(keep.sum())
                rnd += 1
            z = torch.cat(zs)
            z = self._select_realistic(z, n) if sel > 1 else z[:n]
            lab_t = torch.full((n,), int(label) if self.conditional else 2, dtype=torch.long, device=z.device)
            xs = vae.decode_features(t, z, lab_t)
            copy_edges = self.template_edges and self.attach
            anchors = self._anchors(z, int(label)) if self.anchor_features or copy_edges else None
            if self.anchor_features:
                # a real node's exact features, moved by the decoder's change from its latent to z
                a = torch.from_numpy(anchors).to(z.device)
                xa = vae.standardise(t, g.x[t][anchors])
                xs = xa + xs - vae.decode_features(t, self.z_real_[t][a], lab_t)
            if self.feature_noise > 0 and getattr(self, "residual_std_", None) is not None:
                gen = torch.Generator(device=xs.device)
                gen.manual_seed(0 if seed is None else int(seed) + 3)
                xs = xs + self.feature_noise * self.residual_std_ * torch.randn(xs.shape, generator=gen,
                                                                               device=xs.device)
            x = vae.unstandardise(t, xs).cpu().numpy().astype(np.float32)
            attrs = {}
            if copy_edges:
                edges, times, attrs = self._template_edges(anchors)
            else:
                deg = vae.decode_degree(t, z, lab_t).cpu().numpy()
                edges, times = self._attach(z, lab_t, deg, seed)
        return SyntheticNodes(t, g.num_nodes[t], x, np.full(n, t, dtype=object), int(label), edges, times, attrs,
                              z.cpu().numpy())

    def _anchors(self, z, label: int) -> np.ndarray:
        """For each latent in ``z``, the training node of class ``label`` (any training node when
        unconditional) whose encoder mean is nearest: the real node ``template_edges`` and
        ``anchor_features`` start from."""
        import torch

        t, g = self.target_, self.graph_
        pool = np.flatnonzero(self.train_mask_ & (g.y[t] == label)) if self.conditional else \
            np.flatnonzero(self.train_mask_)
        if pool.size == 0:
            raise ValueError(f"no training nodes of class {label} to anchor synthetic nodes on")
        zp = self.z_real_[t][torch.from_numpy(pool).to(z.device)]
        return pool[torch.cdist(z, zp).argmin(1).cpu().numpy()]

    def _template_edges(self, src: np.ndarray) -> tuple:
        """Edges copied from the anchor nodes ``src`` (``template_edges``)."""
        t, g = self.target_, self.graph_
        n0 = g.num_nodes[t]
        edges, times, attrs = _copy_edges(g, t, src, n0)
        if self.inbound_only:
            for et in list(edges):
                keep = _inbound_mask(edges[et], et, t, n0)
                if not keep.any():
                    edges.pop(et), times.pop(et, None), attrs.pop(et, None)
                    continue
                edges[et] = edges[et][:, keep]
                if et in times:
                    times[et] = times[et][keep]
                if et in attrs:
                    attrs[et] = attrs[et][keep]
        return edges, times, attrs

    def _attach(self, z, lab, deg, seed):
        """Edges of the synthetic nodes, chosen by the structure decoder (module docstring)."""
        import torch

        vae, t, g = self.vae_, self.target_, self.graph_
        n0, n = g.num_nodes[t], z.shape[0]
        rng = np.random.default_rng(None if seed is None else int(seed) + 1)
        edges, times = {}, {}
        for j, et in enumerate(vae.edge_types):
            sym = et[0] == et[2] and g.is_symmetric(et)
            parts = []
            sides = []
            if et[2] == t:
                sides.append(("dst", 2 * j))
            if et[0] == t and not (sym and sides):
                sides.append(("src", 2 * j + 1))
            for side, col in sides:
                k = np.clip(np.rint(np.expm1(np.maximum(deg[:, col], 0))), self.degree_lo_[col], self.degree_cap_[col])
                k = k.astype(np.int64)
                if k.max(initial=0) == 0:
                    continue
                other = et[0] if side == "dst" else et[2]
                if self.attach:
                    zo, lo_ = self.z_real_[other], self.labels_real_[other]
                    offset = 0
                elif other == t:
                    zo, lo_, offset = z, lab, n0
                else:
                    continue
                scorer = vae.edge_dec[f"r{j}"]
                m = zo.shape[0]
                C = int(min(m, max(self.shortlist, 2 * int(k.max()))))
                sel_src, sel_dst = [], []
                for s0 in range(0, n, 256):
                    zb, lb, kb = z[s0:s0 + 256], lab[s0:s0 + 256], k[s0:s0 + 256]
                    b = zb.shape[0]
                    bil = scorer.bilinear(zb, zo) if side == "src" else scorer.bilinear(zo, zb).T  # [b, m]
                    if offset:  # no self-loops among synthetic nodes
                        idx_self = torch.arange(s0, s0 + b, device=z.device)
                        bil[torch.arange(b), idx_self] = -float("inf")
                    half = max(1, C // 2)
                    top = torch.topk(bil, min(half, m), dim=1).indices
                    rand = torch.from_numpy(rng.integers(0, m, (b, C - top.shape[1]))).to(z.device)
                    cand = torch.cat([top, rand], 1)  # [b, C]
                    zc = zo[cand]  # [b, C, d]
                    zr = zb[:, None, :].expand_as(zc)
                    lr = lb[:, None].expand(cand.shape)
                    lc = lo_[cand]
                    if side == "src":
                        logit = vae.score_edges(j, zr.reshape(-1, zr.shape[-1]), zc.reshape(-1, zc.shape[-1]),
                                                lr.reshape(-1), lc.reshape(-1)).view(b, -1)
                    else:
                        logit = vae.score_edges(j, zc.reshape(-1, zc.shape[-1]), zr.reshape(-1, zr.shape[-1]),
                                                lc.reshape(-1), lr.reshape(-1)).view(b, -1)
                    if offset:
                        logit = logit.masked_fill(cand == torch.arange(s0, s0 + b, device=z.device)[:, None],
                                                  -float("inf"))
                    gumbel = -torch.log(-torch.log(torch.from_numpy(rng.random(logit.shape)).float().clamp_min(1e-12)))
                    order = torch.argsort(logit + gumbel.to(logit.device), dim=1, descending=True).cpu().numpy()
                    cand_np = cand.cpu().numpy()
                    for i in range(b):
                        chosen = np.unique(cand_np[i, order[i, :kb[i]]])
                        me = np.full(chosen.size, n0 + s0 + i, dtype=np.int64)
                        if side == "src":
                            sel_src.append(me)
                            sel_dst.append(chosen + offset)
                        else:
                            sel_src.append(chosen + offset)
                            sel_dst.append(me)
                if sel_src:
                    parts.append(np.stack([np.concatenate(sel_src), np.concatenate(sel_dst)]))
            if not parts:
                continue
            e = np.concatenate(parts, 1)
            if self.inbound_only:
                e = e[:, _inbound_mask(e, et, t, n0)]
                if e.shape[1] == 0:
                    continue
            elif sym:
                e = np.concatenate([e, e[::-1]], 1)
                e = np.unique(e, axis=1)
            edges[et] = e
            if j in vae.temporal:
                edges_t = torch.from_numpy(e)
                zfull = {tt: self.z_real_[tt] for tt in vae.node_types}
                zfull[t] = torch.cat([self.z_real_[t], z])
                lfull = {tt: self.labels_real_[tt] for tt in vae.node_types}
                lfull[t] = torch.cat([self.labels_real_[t], lab])
                s, d = edges_t[0], edges_t[1]
                times[et] = vae.decode_time(j, zfull[et[0]][s], zfull[et[2]][d], lfull[et[0]][s],
                                            lfull[et[2]][d]).cpu().numpy().astype(np.float64)
        return edges, times

    # -- persistence
    def save(self, path) -> None:
        """``path/config.json`` + ``path/weights.pt`` (tensors only: VAE, diffusion, real latents)."""
        import torch

        self._check_fitted()
        os.makedirs(path, exist_ok=True)
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()}
        cfg = {"format": _FORMAT, "params": params, "vae": self.vae_.config(), "target": self.target_,
               "diffusion": None}
        state = {f"vae.{k}": v.detach().cpu() for k, v in self.vae_.state_dict().items()}
        if self.diffusion_model_ is not None:
            dp = self.diffusion_model_.get_params()
            dp["device"] = str(dp["device"])
            cfg["diffusion"] = dp
            state.update({f"diffusion.{k}": v for k, v in self.diffusion_model_.state_dict().items()})
        for tt in self.vae_.node_types:
            i = self.vae_.node_types.index(tt)
            state[f"z_real.t{i}"] = self.z_real_[tt].cpu()
            state[f"logvar_real.t{i}"] = self.logvar_real_[tt].cpu()
            state[f"labels_real.t{i}"] = self.labels_real_[tt].cpu()
        state["degree_lo"] = torch.from_numpy(self.degree_lo_)
        state["degree_cap"] = torch.from_numpy(self.degree_cap_)
        state["residual_std"] = self.residual_std_.detach().cpu()
        with open(os.path.join(path, "config.json"), "w") as fh:
            json.dump(cfg, fh, indent=2)
        torch.save(state, os.path.join(path, "weights.pt"))

    @classmethod
    def load(cls, path, graph: HeteroGraph, train_mask, device: str = "cpu") -> "LatentDiffusionAugmenter":
        """Rebuild a fitted augmenter written by :meth:`save` for the graph it was fitted on
        (``graph`` and ``train_mask`` give the real nodes to attach to and to append after;
        the weights are read with ``torch.load(weights_only=True)``)."""
        from ._files import read_config, read_weights, rebuilding
        from .diffusion import LatentDiffusion
        from .vae import GraphVAE

        cfg = read_config(path, _FORMAT, "LatentDiffusionAugmenter")
        state = read_weights(path)
        with rebuilding(path):
            params = dict(cfg["params"])
            params["device"] = device
            if isinstance(params.get("fanouts"), list):
                params["fanouts"] = tuple(params["fanouts"])
            aug = cls(**params)
            vp = dict(cfg["vae"])
            vp["metadata"] = (vp["metadata"][0], [tuple(et) for et in vp["metadata"][1]])
            vae = GraphVAE(**vp)
            vae.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("vae.")})
            aug.vae_ = vae.to(device).eval()
        aug._start(graph, train_mask)
        aug.vae_.check_graph(aug.graph_)
        with rebuilding(path):
            if aug.target_ != cfg["target"]:
                raise ValueError(f"the graph's target type {aug.target_!r} differs from the saved {cfg['target']!r}")
            aug.diffusion_model_ = None
            if cfg["diffusion"] is not None:
                dp = dict(cfg["diffusion"])
                dp["device"] = device
                aug.diffusion_model_ = LatentDiffusion(**dp).load_state_dict(
                    {k[len("diffusion."):]: v for k, v in state.items() if k.startswith("diffusion.")})
            nt = vae.node_types
            aug.z_real_ = {tt: state[f"z_real.t{i}"].to(device) for i, tt in enumerate(nt)}
            aug.logvar_real_ = {tt: state[f"logvar_real.t{i}"].to(device) for i, tt in enumerate(nt)}
            aug.labels_real_ = {tt: state[f"labels_real.t{i}"].to(device) for i, tt in enumerate(nt)}
            for tt in nt:
                if aug.z_real_[tt].shape[0] != aug.graph_.num_nodes[tt]:
                    raise ValueError(f"the saved augmenter was fitted on {aug.z_real_[tt].shape[0]} {tt!r} nodes, the "
                                     f"graph has {aug.graph_.num_nodes[tt]}")
            aug.degree_lo_ = state["degree_lo"].numpy()
            aug.degree_cap_ = state["degree_cap"].numpy()
            aug.residual_std_ = state["residual_std"].to(device) if "residual_std" in state else None
        return aug


# ---- registry --------------------------------------------------------------------------------
AUGMENTER_NAMES = ("diffusion", "vae", "oversample", "smote", "mixup")


def make_augmenter(name: str, random_state: Optional[int] = None, **kwargs):
    """An augmenter by name: ``diffusion`` (:class:`LatentDiffusionAugmenter`), ``vae`` (the same
    with ``diffusion=False``), ``oversample``, ``smote``, ``mixup``; ``kwargs`` go to its constructor."""
    if name == "diffusion":
        return LatentDiffusionAugmenter(random_state=random_state, **kwargs)
    if name == "vae":
        kwargs.setdefault("diffusion", False)
        return LatentDiffusionAugmenter(random_state=random_state, **kwargs)
    classes = {"oversample": RandomOversampler, "smote": SMOTEAugmenter, "mixup": MixupAugmenter}
    if name not in classes:
        raise ValueError(f"unknown augmenter {name!r}; choose one of {AUGMENTER_NAMES}")
    return classes[name](random_state=random_state, **kwargs)
