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
  conditional model as trained). Each sampled latent is *anchored* on the training anomaly
  whose encoder mean is nearest: the new node gets that anomaly's edges (with times and
  attributes) and its exact features moved by the decoder's change between the two latents,
  ``x = x_a + D(z) - D(mu_a)`` in standardised space, so every synthetic node is a real
  anomaly moved along the latent offset. The decoded node type decides whether a latent is
  kept.
* :class:`RandomOversampler`: duplicates of random training anomalies, with their edges.
* :class:`SMOTEAugmenter`: feature interpolation between a training anomaly and one of its
  ``k`` nearest anomalous neighbours (standardised feature space), edges of the source.
* :class:`MixupAugmenter`: convex combination (``lambda ~ Beta(alpha, alpha)``) of two training
  anomalies' features, edges of the one with the larger weight.

Edges are added so that a symmetric relation stays symmetric (both directions); for directed
relations a copied or decoded edge keeps its direction.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Dict, Optional

import numpy as np

from ..data.graph import HeteroGraph

__all__ = ["SyntheticNodes", "LatentDiffusionAugmenter", "RandomOversampler", "SMOTEAugmenter", "MixupAugmenter",
           "append_nodes"]

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

    Args:
        graph: the graph the synthetic nodes were sampled for.
        train_mask: its training nodes of the target type (mask or indices).
        syn: the synthetic nodes.

    Returns:
        ``(graph, train_mask)``: the new graph (real nodes unchanged and first) and the train
        mask padded with True for the new nodes.
    """
    t, n_new = syn.target, len(syn)
    n0 = graph.num_nodes[t]
    if syn.n_real != n0:
        raise ValueError(f"the synthetic nodes were indexed for {syn.n_real} real {t!r} nodes, the graph has {n0}")
    from ._graph_helpers import _mask_to_bool
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
        from ._graph_helpers import _mask_to_bool, _with_features
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
        """The number of nodes :meth:`augment` adds (``n_synthetic``, or ``ratio`` x training anomalies)."""
        n = getattr(self, "n_synthetic", None)
        if n is not None:
            return int(n)
        return max(1, int(round(getattr(self, "ratio", 1.0) * self.train_anomalies_.size)))

    def _check_fitted(self):
        if not hasattr(self, "graph_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(graph, train_mask) first")

    def augment(self, graph: HeteroGraph, train_mask) -> tuple:
        """``n_synthetic`` sampled anomalies appended to ``graph`` as training nodes.

        Fits first unless already fitted on this graph and training mask.

        Args:
            graph: the graph to augment.
            train_mask: its training nodes of the target type (mask or indices).

        Returns:
            ``(augmented graph, train mask)``: real nodes first and unchanged, the new train
            mask padded with True for the synthetic nodes.
        """
        from ._graph_helpers import _mask_to_bool, _with_features
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
        n_synthetic: number of nodes :meth:`augment` adds; None adds ``ratio`` times the
            number of training anomalies.
        ratio: synthetic anomalies per training anomaly when ``n_synthetic`` is None.
        target: labelled node type to augment (default: the graph's).
        random_state: seed of the choice of duplicated nodes.
    """

    def __init__(self, n_synthetic: Optional[int] = None, ratio: float = 1.0, target: Optional[str] = None,
                 random_state: Optional[int] = None):
        self.n_synthetic, self.ratio, self.target, self.random_state = n_synthetic, ratio, target, random_state

    def fit(self, graph: HeteroGraph, train_mask) -> "RandomOversampler":
        """Remember the graph and its training anomalies (the nodes to build from); returns self."""
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
        """``n`` new nodes built from training nodes of class ``label``.

        Args:
            n: number of nodes.
            label: class of the training nodes to build from (1 = anomaly).

        Returns:
            :class:`SyntheticNodes` indexed after the real nodes of the target type.
        """
        self._check_fitted()
        g, t = self.graph_, self.target_
        src, x = self._parents(int(n), int(label))
        n0 = g.num_nodes[t]
        edges, times, attrs = _copy_edges(g, t, src, n0)
        return SyntheticNodes(t, n0, x.astype(np.float32), np.full(int(n), t, dtype=object), int(label), edges, times,
                              attrs)


class SMOTEAugmenter(RandomOversampler):
    """SMOTE on node features between nearest training anomalies.

    SMOTE on node features: ``x = x_a + u (x_b - x_a)``, ``u ~ U(0, 1)``, ``b`` one of the
    ``k`` nearest training anomalies of ``a`` (standardised features); edges of ``a``.

    Args:
        k: number of nearest training anomalies an interpolation partner is drawn from.
        n_synthetic: number of nodes :meth:`augment` adds; None adds ``ratio`` times the
            number of training anomalies.
        ratio: synthetic anomalies per training anomaly when ``n_synthetic`` is None.
        target: labelled node type to augment (default: the graph's).
        random_state: seed of the choice of nodes and interpolation weights.
    """

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
    """Mixup of two training anomalies: ``x = lam x_a + (1 - lam) x_b``, ``lam ~ Beta(alpha, alpha)``.

    The edges of ``a`` when ``lam >= 0.5`` else of ``b``.

    Args:
        alpha: Beta distribution parameter of the mixing weight (small: mixes stay close to
            one of the two anomalies; 1: uniform weights).
        n_synthetic: number of nodes :meth:`augment` adds; None adds ``ratio`` times the
            number of training anomalies.
        ratio: synthetic anomalies per training anomaly when ``n_synthetic`` is None.
        target: labelled node type to augment (default: the graph's).
        random_state: seed of the choice of pairs and mixing weights.
    """

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
@dataclass(frozen=True)
class _Ablation:
    """A research variant of :class:`LatentDiffusionAugmenter`.

    Private: the quality harness, ``bench/quality/ablations.py``, builds these; users get the
    defaults.

    Every field at its default is the public augmenter. ``hetero`` and ``conditional`` act
    at fit; ``diffusion`` at fit (False trains no diffusion model) and at sampling (False
    draws posteriors, also from a model fitted with diffusion); the rest at sampling only, so
    those variants can share one fitted model (:meth:`LatentDiffusionAugmenter._sample`).

    Attributes:
        diffusion: False draws latents from the VAE posteriors ``N(mu, diag(exp(logvar)))`` of
            random training nodes of the class instead of the diffusion model.
        hetero: False merges all node and edge types into one for the encoder.
        conditional: False uses no labels anywhere (unconditional training and sampling).
        attach: False links synthetic nodes only among themselves (a disjoint union, as in
            GODM), through the structure decoder.
        template_edges: False gives each synthetic node edges to real nodes chosen by the
            structure decoder (:meth:`LatentDiffusionAugmenter._attach`) instead of its
            anchor's edges.
        anchor_features: False gives each synthetic node the decoded mean features ``D(z)``
            instead of its anchor's features moved by ``D(z) - D(mu_a)``.
        shortlist: candidate neighbours per synthetic node rescored by the full pair scorer
            (decoder-chosen edges only).
    """
    diffusion: bool = True
    hetero: bool = True
    conditional: bool = True
    attach: bool = True
    template_edges: bool = True
    anchor_features: bool = True
    shortlist: int = 64

    #: fields a variant cannot change on a model fitted with other values
    FIT_FIELDS = ("hetero", "conditional")


# constructor settings of earlier versions: their value in a saved augmenter that load() accepts
_REMOVED_PARAMS = {"feature_noise": 0.0, "select": 1.0, "diffusion_min_steps": 0, "inbound_only": False}


class LatentDiffusionAugmenter(_Augmenter):
    """Synthesise anomalous nodes with a graph VAE + latent diffusion (see the module docstring).

    ``fit`` trains the VAE on the graph (labels of the training nodes only) and the diffusion
    model on the encoder means; ``sample`` draws new anomalies; ``augment`` appends
    ``n_synthetic`` of them to the graph as training nodes.

    Args:
        n_synthetic: number of nodes :meth:`augment` adds; None adds ``ratio`` times the
            number of training anomalies.
        ratio: synthetic anomalies per training anomaly when ``n_synthetic`` is None.
        latent_dim: width of the latent space the diffusion model works in.
        hidden_channels: width of the HGT encoder layers.
        num_layers: HGT layers, i.e. how many hops of the graph each latent sees.
        heads: attention heads per HGT layer.
        decoder_hidden: width of the decoder MLPs.
        beta: weight of the VAE's KL term (higher: smoother latent space, blurrier decoding).
        vae_epochs: VAE training epochs.
        vae_lr: VAE learning rate (AdamW).
        batch_size: seed nodes per VAE mini-batch with neighbour sampling, for graphs too
            large for one full-batch pass; None trains full batch.
        fanouts: neighbours sampled per hop in mini-batch training.
        diffusion_hidden: width of the latent denoiser MLP.
        diffusion_layers: residual blocks of the latent denoiser.
        diffusion_epochs: denoiser training epochs.
        guidance: classifier-free guidance scale for label-1 sampling: 1 samples the
            conditional model as trained, larger values push the latents further toward the
            anomaly class and away from the unconditional model, 0 is unconditional.
        steps: Heun sampler steps per draw (more: slower, closer to the exact ODE).
        target: labelled node type to augment (default: the graph's).
        device: torch device of the models (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        random_state: seed of training and, unless ``sample(seed=...)`` is given, sampling.
        verbose: show progress bars.
        distributed: data-parallel :meth:`fit` over the default ``torch.distributed`` process
            group, passed to :meth:`GraphVAE.fit <pygad.models.vae.GraphVAE.fit>` (full-batch
            only) and :meth:`LatentDiffusion.fit <pygad.models.LatentDiffusion.fit>`: every
            rank holds the graph, scores its shard of the nodes/edges/latent rows with the
            single-process noise draws, and the gradients are summed over ranks, so the fit
            follows the single-process one and every rank ends with the same models. Give
            each rank its own device (e.g. ``device=f"cuda:{local_rank}"`` with NCCL).

    Examples:
        >>> from pygad.datasets import load
        >>> from pygad.evaluation import stratified_split
        >>> from pygad.models import LatentDiffusionAugmenter, TreeDetector
        >>> graph = load("books")
        >>> train, val, test = stratified_split(graph.y["node"], seed=0)
        >>> aug = LatentDiffusionAugmenter(vae_epochs=20, diffusion_epochs=20, random_state=0)
        >>> g_aug, train_aug = aug.augment(graph, train)   # + one anomaly per training anomaly
        >>> syn = aug.sample(10, label=1)                  # SyntheticNodes: x, edges, z, ...
        >>> det = TreeDetector(random_state=0).fit(g_aug, train_aug)
        >>> scores = det.decision_function(g_aug)[: graph.num_nodes["node"]]
    """

    _ablation = _Ablation()  # the defaults; _configured() gives an instance its own

    def __init__(self, n_synthetic: Optional[int] = None, ratio: float = 1.0, latent_dim: int = 16,
                 hidden_channels: int = 64, num_layers: int = 2, heads: int = 4, decoder_hidden: int = 64,
                 beta: float = 0.01, vae_epochs: int = 100, vae_lr: float = 5e-3, batch_size: Optional[int] = None,
                 fanouts=(10, 5), diffusion_hidden: int = 256, diffusion_layers: int = 3,
                 diffusion_epochs: int = 150, guidance: float = 1.0, steps: int = 24,
                 target: Optional[str] = None, device: str = "cpu", random_state: Optional[int] = None,
                 verbose: bool = False, distributed: bool = False):
        self.n_synthetic = n_synthetic
        self.ratio = ratio
        self.latent_dim = latent_dim
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.heads = heads
        self.decoder_hidden = decoder_hidden
        self.beta = beta
        self.vae_epochs = vae_epochs
        self.vae_lr = vae_lr
        self.batch_size = batch_size
        self.fanouts = fanouts
        self.diffusion_hidden = diffusion_hidden
        self.diffusion_layers = diffusion_layers
        self.diffusion_epochs = diffusion_epochs
        self.guidance = guidance
        self.steps = steps
        self.target = target
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.distributed = distributed

    @classmethod
    def _configured(cls, ablation: _Ablation, **params) -> "LatentDiffusionAugmenter":
        """An augmenter with the research variant ``ablation``.

        The quality harness's hook; ``params`` go to the constructor.
        """
        if not isinstance(ablation, _Ablation):
            raise TypeError(f"'ablation' must be an _Ablation, got {type(ablation).__name__}")
        aug = cls(**params)
        aug._ablation = ablation
        return aug

    def get_params(self) -> dict:
        """The constructor arguments, by name."""
        import inspect
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    # -- fitting
    def fit(self, graph: HeteroGraph, train_mask) -> "LatentDiffusionAugmenter":
        """Train the VAE on ``graph`` (training labels only) and the diffusion on its latents.

        Args:
            graph: the graph to learn; synthetic nodes are later appended to it.
            train_mask: boolean mask (or indices) of the training nodes of the target type;
                only their labels are shown to the model.

        Returns:
            self
        """
        import torch

        from ._graph_helpers import node_labels
        from .vae import GraphVAE

        ab = self._ablation
        graph, t, tr = self._start(graph, train_mask)
        dev = torch.device(self.device)
        seed = self.random_state
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(int(seed))
            vae = GraphVAE.from_graph(graph, latent_dim=self.latent_dim, hidden_channels=self.hidden_channels,
                                      num_layers=self.num_layers, heads=self.heads, decoder_hidden=self.decoder_hidden,
                                      beta=self.beta, hetero=ab.hetero, conditional=ab.conditional).to(dev)
        vae.fit(graph, tr, t, epochs=self.vae_epochs, lr=self.vae_lr, batch_size=self.batch_size,
                fanouts=self.fanouts, random_state=seed, verbose=self.verbose, distributed=self.distributed)
        self.vae_ = vae
        mu, lv = vae.embed(graph)
        self.z_real_ = {k: v.detach() for k, v in mu.items()}
        self.logvar_real_ = {k: v.detach() for k, v in lv.items()}
        self.labels_real_ = {k: torch.from_numpy(v).to(dev)
                             for k, v in node_labels(graph, tr, t, ab.conditional).items()}
        self._degree_stats(graph, tr)
        self.diffusion_model_ = None
        if ab.diffusion:
            from .diffusion import LatentDiffusion
            lab = np.flatnonzero(tr & (graph.y[t] >= 0))
            z = self.z_real_[t][torch.from_numpy(lab).to(dev)]
            yl = torch.from_numpy(graph.y[t][lab].astype(np.int64)).to(dev) if ab.conditional else None
            dm = LatentDiffusion(self.latent_dim, hidden=self.diffusion_hidden, num_layers=self.diffusion_layers,
                                 device=self.device, random_state=seed)
            # balance the classes seen by the denoiser: repeat anomalies up to ~1/4 of the rows
            if yl is not None:
                pos = torch.nonzero(yl == 1).flatten()
                reps = max(1, int(0.25 * len(lab) / max(1, pos.numel())))
                if reps > 1:
                    z = torch.cat([z] + [z[pos]] * (reps - 1))
                    yl = torch.cat([yl] + [yl[pos]] * (reps - 1))
            dm.fit(z, yl, epochs=int(self.diffusion_epochs), batch_size=256, verbose=self.verbose,
                   distributed=self.distributed)
            self.diffusion_model_ = dm
        return self

    def _degree_stats(self, graph, tr):
        """Per relation/direction: min and cap of the edge count of a synthetic node."""
        from ._graph_helpers import node_degrees
        t = self.target_
        deg = np.expm1(node_degrees(graph, self.vae_.edge_types)[t])
        anom = self.train_anomalies_
        lo = (np.median(deg[anom], 0) >= 1).astype(np.int64)
        cap = np.maximum(1, np.ceil(np.quantile(deg[tr], 0.95, axis=0))).astype(np.int64)
        self.degree_lo_, self.degree_cap_ = lo, cap

    # -- sampling
    def _sampling_ablation(self, ablation: Optional[_Ablation]) -> _Ablation:
        """``ablation`` (default: this augmenter's), checked against what was fitted."""
        if ablation is None:
            return self._ablation
        for name in _Ablation.FIT_FIELDS:
            if getattr(ablation, name) != getattr(self._ablation, name):
                raise ValueError(f"{name}={getattr(ablation, name)} needs its own fit (this augmenter was fitted "
                                 f"with {name}={getattr(self._ablation, name)})")
        return ablation

    def sample_latents(self, n: int, label: Optional[int] = 1, guidance: Optional[float] = None, seed=None):
        """``n`` latents of class ``label`` from the diffusion model.

        The ``vae`` augmenter: from the VAE posteriors of random training nodes of that
        class.

        Args:
            n: number of latents.
            label: class to condition on (1 = anomaly); None draws unconditional latents.
            guidance: classifier-free guidance scale (default: the constructor's).
            seed: sampling seed (default: ``random_state``).

        Returns:
            float32 tensor [n, latent_dim] on the augmenter's device.
        """
        self._check_fitted()
        return self._draw_latents(n, label, guidance, seed, self._ablation)

    def _draw_latents(self, n: int, label: Optional[int], guidance: Optional[float], seed, ab: _Ablation):
        """Latents of class ``label`` from the diffusion model or the VAE posteriors.

        Latents from the diffusion model, or (``ab.diffusion`` False) from the VAE
        posteriors ``N(mu, diag(exp(logvar)))`` of random training nodes of class ``label``.
        """
        import torch

        w = self.guidance if guidance is None else guidance
        seed = self.random_state if seed is None else seed
        t = self.target_
        if ab.diffusion:
            if self.diffusion_model_ is None:
                raise ValueError("this augmenter was fitted without a diffusion model: sample the VAE posteriors")
            lab = label if ab.conditional else None
            return self.diffusion_model_.sample(int(n), label=lab, guidance=float(w) if lab is not None else 1.0,
                                                steps=self.steps, seed=seed)
        gen = torch.Generator(device=self.z_real_[t].device)
        gen.manual_seed(int(seed) if seed is not None else 0)
        if label is None or not ab.conditional:
            pool = np.flatnonzero(self.train_mask_)
        else:
            pool = np.flatnonzero(self.train_mask_ & (self.graph_.y[t] == int(label)))
        pick = torch.from_numpy(pool[np.random.default_rng(seed).integers(0, pool.size, int(n))])
        mu, lv = self.z_real_[t][pick], self.logvar_real_[t][pick]
        return mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (0.5 * lv).exp()

    def sample(self, n: int, label: int = 1, guidance: Optional[float] = None, seed=None) -> SyntheticNodes:
        """``n`` synthetic nodes of class ``label`` with features, types, edges and timestamps.

        Nodes decoded as another node type than the target are redrawn (up to 5 rounds).

        Args:
            n: number of nodes.
            label: class to synthesise (1 = anomaly).
            guidance: classifier-free guidance scale (default: the constructor's).
            seed: sampling seed (default: ``random_state``); the same seed gives the same nodes.

        Returns:
            :class:`SyntheticNodes` indexed after the real nodes of the target type (append
            them with :func:`append_nodes`).
        """
        return self._sample(n, label, guidance, seed)

    def _sample(self, n: int, label: int = 1, guidance: Optional[float] = None, seed=None,
                ablation: Optional[_Ablation] = None) -> SyntheticNodes:
        """:meth:`sample` with the sampling of another research variant.

        :meth:`sample` with the sampling of the research variant ``ablation`` (default: this
        augmenter's), so several variants share one fitted model.
        """
        import torch

        self._check_fitted()
        ab = self._sampling_ablation(ablation)
        vae, t, g = self.vae_, self.target_, self.graph_
        n = int(n)
        ti = vae.node_types.index(t)
        seed = self.random_state if seed is None else seed
        zs = []
        got, rnd = 0, 0
        with torch.no_grad():
            while got < n and rnd < 5:
                z = self._draw_latents(n - got if rnd else n, label, guidance,
                                       None if seed is None else int(seed) + 7919 * rnd, ab)
                keep = vae.decode_type(z) == ti
                if rnd == 4:
                    keep[:] = True
                zs.append(z[keep])
                got += int(keep.sum())
                rnd += 1
            z = torch.cat(zs)[:n]
            lab_t = torch.full((n,), int(label) if ab.conditional else 2, dtype=torch.long, device=z.device)
            xs = vae.decode_features(t, z, lab_t)
            copy_edges = ab.template_edges and ab.attach
            anchors = self._anchors(z, int(label), ab) if ab.anchor_features or copy_edges else None
            if ab.anchor_features:
                # a real node's exact features, moved by the decoder's change from its latent to z
                a = torch.from_numpy(anchors).to(z.device)
                xa = vae.standardise(t, g.x[t][anchors])
                xs = xa + xs - vae.decode_features(t, self.z_real_[t][a], lab_t)
            x = vae.unstandardise(t, xs).cpu().numpy().astype(np.float32)
            attrs = {}
            if copy_edges:
                edges, times, attrs = _copy_edges(g, t, anchors, g.num_nodes[t])
            else:
                deg = vae.decode_degree(t, z, lab_t).cpu().numpy()
                edges, times = self._attach(z, lab_t, deg, seed, ab)
        return SyntheticNodes(t, g.num_nodes[t], x, np.full(n, t, dtype=object), int(label), edges, times, attrs,
                              z.cpu().numpy())

    def _anchors(self, z, label: int, ab: _Ablation) -> np.ndarray:
        """The nearest training node of class ``label`` to each latent in ``z``.

        For each latent in ``z``, the training node of class ``label`` (any training node when
        unconditional) whose encoder mean is nearest: the real node whose edges and features
        the synthetic node starts from.
        """
        import torch

        t, g = self.target_, self.graph_
        pool = np.flatnonzero(self.train_mask_ & (g.y[t] == label)) if ab.conditional else \
            np.flatnonzero(self.train_mask_)
        if pool.size == 0:
            raise ValueError(f"no training nodes of class {label} to anchor synthetic nodes on")
        zp = self.z_real_[t][torch.from_numpy(pool).to(z.device)]
        return pool[torch.cdist(z, zp).argmin(1).cpu().numpy()]

    def _attach(self, z, lab, deg, seed, ab: _Ablation):
        """Edges of the synthetic nodes chosen by the structure decoder (``template_edges`` False, or ``attach`` False).

        Per relation and direction, a synthetic node gets ``k`` edges, ``k`` from the degree
        decoder (clipped to the training degrees' range); the candidates are the real nodes
        (with ``attach`` False: the other synthetic nodes) with the largest bilinear term of
        the pair scorer plus random ones, ``ab.shortlist`` in all, rescored by the full pair
        scorer, and ``k`` of them drawn by Gumbel-top-k. Edge times come from the time
        decoder; a symmetric relation gets both directions.
        """
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
                if ab.attach:
                    zo, lo_ = self.z_real_[other], self.labels_real_[other]
                    offset = 0
                elif other == t:
                    zo, lo_, offset = z, lab, n0
                else:
                    continue
                scorer = vae.edge_dec[f"r{j}"]
                m = zo.shape[0]
                C = int(min(m, max(int(ab.shortlist), 2 * int(k.max()))))
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
            if sym:
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
        """Write ``path/config.json`` and ``path/weights.pt`` (tensors only: VAE, diffusion, real latents).

        Args:
            path: folder to write (created if missing); :meth:`load` reads it back.
        """
        import torch

        self._check_fitted()
        os.makedirs(path, exist_ok=True)
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()}
        cfg = {"format": _FORMAT, "params": params, "vae": self.vae_.config(), "target": self.target_,
               "diffusion": None}
        if self._ablation != _Ablation():
            cfg["ablation"] = asdict(self._ablation)
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
        with open(os.path.join(path, "config.json"), "w") as fh:
            json.dump(cfg, fh, indent=2)
        torch.save(state, os.path.join(path, "weights.pt"))

    @classmethod
    def load(cls, path, graph: HeteroGraph, train_mask, device: str = "cpu") -> "LatentDiffusionAugmenter":
        """Rebuild a fitted augmenter written by :meth:`save` for the graph it was fitted on.

        Args:
            path: the folder :meth:`save` wrote.
            graph: the graph the augmenter was fitted on (the real nodes to attach to and to
                append after).
            train_mask: its training nodes, as given to :meth:`fit`.
            device: torch device to load the models onto.

        Returns:
            The fitted augmenter; the weights are read with ``torch.load(weights_only=True)``.

        Raises:
            InvalidArchiveError: ``path`` does not hold a saved augmenter of this version.
        """
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
            # archives of earlier versions kept the research variant among the constructor settings
            ablation = dict(cfg.get("ablation") or {})
            for f in fields(_Ablation):
                if f.name in params:
                    ablation[f.name] = params.pop(f.name)
            for name, default in _REMOVED_PARAMS.items():
                if name in params and params.pop(name) != default:
                    raise ValueError(f"{str(path)!r} was saved with the setting {name!r}, which this version no "
                                     "longer has; refit the augmenter")
            aug = cls._configured(_Ablation(**ablation), **params)
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
        return aug
