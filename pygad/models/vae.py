"""A label-conditioned variational graph autoencoder with an HGT encoder and several decoders.

:class:`GraphVAE` encodes every node of a :class:`~pygad.data.HeteroGraph` with the
heterogeneous graph transformer (:class:`pygad.nn.HGT`, reverse relations added so messages
flow both ways) into a per-node Gaussian ``q(z | graph) = N(mu, diag(exp(logvar)))`` and
decodes, conditioned on the node's label (0 normal, 1 anomaly, 2 unknown/unlabelled):

* node features, one MLP per node type (:class:`FeatureDecoder`), on standardised features;
* structure, one pair scorer per relation (:class:`PairScorer`): a bilinear form
  ``z_u^T W z_v`` plus an MLP on ``[z_u * z_v, |z_u - z_v|, e(y_u), e(y_v)]``: real interaction
  between the two latents (not a linear layer on a concatenation), trained with negative
  sampling (each positive edge against one corrupted destination and one corrupted source);
* timestamps of temporal relations (:class:`TimeDecoder`): normalised edge time from the pair;
* per-relation in/out degree of a node (``log1p``), used to decide how many edges a
  synthetic node gets;
* the node type, when the graph has several (a linear classifier).

Loss: feature MSE (summed over features) + edge BCE + time MSE + degree MSE + type CE
+ ``beta`` * KL (summed over latent dimensions, linearly warmed up over ``kl_warmup`` of
the epochs). Training is full-batch by default; with ``batch_size`` it runs on mini-batches
of seed nodes with native neighbour sampling (:class:`pygad.ops.NeighborSampler`), which
bounds memory on graphs of millions of nodes.

Only the labels of training nodes are shown to the model (everything else is "unknown"), and
the encoder never sees labels at all: the label only conditions the decoders.

Persistence: ``save(path)`` writes ``config.json`` and ``weights.pt`` (a plain tensor state
dict, loadable with ``torch.load(weights_only=True)``); :meth:`GraphVAE.load` rebuilds it.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.graph import HeteroGraph
from ..nn.decoders import FeatureDecoder, PairScorer, TimeDecoder, mlp
from ._graph_helpers import UNKNOWN, _with_features, node_degrees, node_labels, sample_neighbors

__all__ = ["GraphVAE", "PairScorer", "FeatureDecoder", "TimeDecoder", "sample_neighbors"]

_FORMAT = "pygad.GraphVAE/1"
MERGED = "__all__"  #: node type of the merged (hetero=False) encoder graph


def _progress(iterable, total, verbose, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=not verbose, leave=False, file=sys.stderr)


# ---- the model -------------------------------------------------------------------------------
class GraphVAE(nn.Module):
    """Variational graph autoencoder: HGT encoder, label-conditioned multi-decoders.

    Args:
        in_channels: feature width per node type.
        metadata: ``(node_types, edge_types)`` of the data graph (relations as stored, without
            reverse relations: those are added for the encoder).
        encoder_relations: for each encoder relation, ``(index into edge_types, reversed)``;
            normally from :meth:`from_graph`.
        latent_dim: width of z.
        hidden_channels: HGT width.
        num_layers: HGT layers (hops).
        heads: HGT attention heads.
        decoder_hidden: width of the decoder MLPs.
        temporal: indices of the relations with edge times (a time decoder each).
        time_range: ``{relation index: (t_min, t_max)}`` used to (de)normalise times.
        beta: KL weight.
        hetero: False merges all node and edge types into one for the encoder (a homogeneous
            graph transformer).
        conditional: False ignores labels (every node gets the unknown label).
        dropout: encoder dropout.
        impl: ``"native"`` or ``"reference"`` HGT kernels.
    """

    def __init__(self, in_channels: Dict[str, int], metadata, encoder_relations: Sequence[Sequence],
                 latent_dim: int = 32, hidden_channels: int = 64, num_layers: int = 2, heads: int = 4,
                 decoder_hidden: int = 128, temporal: Sequence[int] = (), time_range: Optional[dict] = None,
                 beta: float = 0.01, hetero: bool = True, conditional: bool = True, dropout: float = 0.0,
                 impl: str = "native"):
        super().__init__()
        from ..nn import HGT

        self.node_types: List[str] = [str(t) for t in metadata[0]]
        self.edge_types: List[tuple] = [tuple(str(p) for p in et) for et in metadata[1]]
        self.in_channels = {str(t): int(c) for t, c in in_channels.items()}
        self.encoder_relations = [(int(i), bool(r)) for i, r in encoder_relations]
        self.latent_dim, self.hidden_channels = int(latent_dim), int(hidden_channels)
        self.num_layers, self.heads, self.decoder_hidden = int(num_layers), int(heads), int(decoder_hidden)
        self.temporal = [int(i) for i in temporal]
        self.time_range = {int(k): (float(v[0]), float(v[1])) for k, v in dict(time_range or {}).items()}
        self.beta, self.hetero, self.conditional = float(beta), bool(hetero), bool(conditional)
        self.dropout, self.impl = float(dropout), impl
        self._tidx = {t: i for i, t in enumerate(self.node_types)}

        # encoder graph schema
        if self.hetero:
            enc_nt = list(self.node_types)
            enc_et = []
            for i, rev in self.encoder_relations:
                s, r, d = self.edge_types[i]
                enc_et.append((d, "rev_" + r, s) if rev else (s, r, d))
            enc_in = dict(self.in_channels)
        else:
            enc_nt = [MERGED]
            enc_et = [(MERGED, "edge", MERGED)]
            extra = len(self.node_types) if len(self.node_types) > 1 else 0
            enc_in = {MERGED: max(self.in_channels.values()) + extra}
        self.enc_metadata = (enc_nt, enc_et)
        self.encoder = HGT(enc_in, hidden_channels, self.enc_metadata, num_layers=num_layers, heads=heads,
                           dropout=dropout, impl=impl)
        self.to_mu = nn.ModuleDict({f"t{i}": nn.Linear(hidden_channels, latent_dim) for i in range(len(self.node_types))})
        self.to_logvar = nn.ModuleDict({f"t{i}": nn.Linear(hidden_channels, latent_dim)
                                        for i in range(len(self.node_types))})
        ld = 16
        self.label_emb = nn.Embedding(3, ld)
        self.feature_dec = nn.ModuleDict({f"t{i}": FeatureDecoder(latent_dim, self.in_channels[t], decoder_hidden, ld)
                                          for i, t in enumerate(self.node_types)})
        self.edge_dec = nn.ModuleDict({f"r{j}": PairScorer(latent_dim, decoder_hidden, ld)
                                       for j in range(len(self.edge_types))})
        self.time_dec = nn.ModuleDict({f"r{j}": TimeDecoder(latent_dim, decoder_hidden, ld) for j in self.temporal})
        # degree head: per node type, log1p in- and out-degree for every relation
        self.degree_dec = nn.ModuleDict({f"t{i}": mlp(latent_dim + ld, decoder_hidden, 2 * len(self.edge_types))
                                         for i in range(len(self.node_types))})
        self.type_dec = nn.Linear(latent_dim, len(self.node_types)) if len(self.node_types) > 1 else None
        # feature standardisation (set in fit; saved with the weights)
        for i, t in enumerate(self.node_types):
            self.register_buffer(f"x_mean_t{i}", torch.zeros(self.in_channels[t]))
            self.register_buffer(f"x_std_t{i}", torch.ones(self.in_channels[t]))

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_graph(cls, graph: HeteroGraph, **kwargs) -> "GraphVAE":
        """A model sized for ``graph`` (feature widths, relations, temporal relations)."""
        graph = _with_features(graph)
        ets = graph.edge_types
        enc = []
        for i, et in enumerate(ets):
            enc.append((i, False))
            sym = et[0] == et[2] and graph.is_symmetric(et)
            has_rev = et[0] != et[2] and any(o[0] == et[2] and o[2] == et[0] for o in ets)
            if not sym and not has_rev:
                enc.append((i, True))
        temporal = [i for i, et in enumerate(ets) if et in graph.edge_time and graph.edge_time[et].size]
        tr = {i: (float(graph.edge_time[ets[i]].min()), float(graph.edge_time[ets[i]].max())) for i in temporal}
        return cls({t: graph.x[t].shape[1] for t in graph.node_types}, graph.metadata(), enc, temporal=temporal,
                   time_range=tr, **kwargs)

    def config(self) -> dict:
        """JSON-serialisable constructor arguments."""
        return {"in_channels": self.in_channels, "metadata": [self.node_types, [list(et) for et in self.edge_types]],
                "encoder_relations": [[i, r] for i, r in self.encoder_relations], "latent_dim": self.latent_dim,
                "hidden_channels": self.hidden_channels, "num_layers": self.num_layers, "heads": self.heads,
                "decoder_hidden": self.decoder_hidden, "temporal": self.temporal,
                "time_range": {str(k): list(v) for k, v in self.time_range.items()}, "beta": self.beta,
                "hetero": self.hetero, "conditional": self.conditional, "dropout": self.dropout, "impl": self.impl}

    # ---- inputs ----------------------------------------------------------------------------
    def scaler(self, t: str) -> Tuple[Tensor, Tensor]:
        """The standardisation ``(mean, std)`` buffers of node type ``t``."""
        i = self._tidx[t]
        return getattr(self, f"x_mean_t{i}"), getattr(self, f"x_std_t{i}")

    def set_scaler(self, graph: HeteroGraph) -> None:
        """Set the standardisation buffers from the features of ``graph`` (a std of about 0 becomes 1)."""
        for t in self.node_types:
            x = graph.x[t]
            mu, sd = x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64)
            m, s = self.scaler(t)
            m.copy_(torch.from_numpy(mu.astype(np.float32)))
            s.copy_(torch.from_numpy(np.where(sd > 1e-8, sd, 1.0).astype(np.float32)))

    def standardise(self, t: str, x) -> Tensor:
        """Features of node type ``t`` standardised with the model's scaler, clamped to [-10, 10]."""
        m, s = self.scaler(t)
        x = torch.as_tensor(x, dtype=torch.float32, device=m.device)
        return ((x - m) / s).clamp(-10, 10)

    def unstandardise(self, t: str, xs: Tensor) -> Tensor:
        """Standardised features of node type ``t`` back in the original units."""
        m, s = self.scaler(t)
        return xs * s + m

    def check_graph(self, graph: HeteroGraph) -> None:
        """Raise ValueError when ``graph``'s metadata or feature widths differ from the model's."""
        if graph.node_types != self.node_types or graph.edge_types != self.edge_types:
            raise ValueError(f"the graph's metadata {graph.metadata()} differs from the model's "
                             f"({self.node_types}, {self.edge_types})")
        for t in self.node_types:
            if graph.x[t].shape[1] != self.in_channels[t]:
                raise ValueError(f"node type {t!r} has {graph.x[t].shape[1]} features, the model expects "
                                 f"{self.in_channels[t]}")

    def encoder_inputs(self, num_nodes: Dict[str, int], x_std: Dict[str, Tensor],
                       edge_index: Dict[tuple, Tensor]) -> tuple:
        """The encoder's inputs ``(x_dict, edge_index_dict, offsets)`` for a graph.

        The encoder's ``(x_dict, edge_index_dict, offsets)`` from standardised features and the
        data relations' edges (reverse relations added; merged when ``hetero=False``).
        """
        if self.hetero:
            ei = {}
            for (i, rev), enc_et in zip(self.encoder_relations, self.enc_metadata[1]):
                e = edge_index.get(self.edge_types[i])
                if e is None:
                    continue
                ei[enc_et] = e.flip(0) if rev else e
            return dict(x_std), ei, None
        offs, o = {}, 0
        for t in self.node_types:
            offs[t] = o
            o += num_nodes[t]
        width = max(self.in_channels.values())
        multi = len(self.node_types) > 1
        dev = next(iter(x_std.values())).device
        xs = []
        for i, t in enumerate(self.node_types):
            x = F.pad(x_std[t], (0, width - x_std[t].shape[1]))
            if multi:
                oh = torch.zeros(x.shape[0], len(self.node_types), device=dev)
                oh[:, i] = 1
                x = torch.cat([x, oh], 1)
            xs.append(x)
        parts = []
        for i, et in enumerate(self.edge_types):
            e = edge_index.get(et)
            if e is None:
                continue
            e = torch.stack([e[0] + offs[et[0]], e[1] + offs[et[2]]])
            parts += [e, e.flip(0)]
        e = torch.cat(parts, 1) if parts else torch.empty(2, 0, dtype=torch.long, device=dev)
        e = torch.unique(e, dim=1)
        return {MERGED: torch.cat(xs, 0)}, {(MERGED, "edge", MERGED): e}, offs

    # ---- forward pieces --------------------------------------------------------------------
    def encode(self, num_nodes: Dict[str, int], x_std: Dict[str, Tensor], edge_index: Dict[tuple, Tensor]) -> tuple:
        """``(mu, logvar)`` dicts per node type."""
        x_enc, ei_enc, offs = self.encoder_inputs(num_nodes, x_std, edge_index)
        h = self.encoder(x_enc, ei_enc)
        if offs is not None:
            hm = h[MERGED]
            h = {t: hm[offs[t]:offs[t] + num_nodes[t]] for t in self.node_types}
        mu, lv = {}, {}
        for i, t in enumerate(self.node_types):
            mu[t] = self.to_mu[f"t{i}"](h[t])
            lv[t] = self.to_logvar[f"t{i}"](h[t]).clamp(-10, 6)
        return mu, lv

    def label_embedding(self, y: Tensor) -> Tensor:
        """Label embeddings of ``y`` (all labels unknown when the model is unconditional)."""
        if not self.conditional:
            y = torch.full_like(y, UNKNOWN)
        return self.label_emb(y)

    def decode_features(self, t: str, z: Tensor, y: Tensor) -> Tensor:
        """Standardised features of node type ``t``."""
        return self.feature_dec[f"t{self._tidx[t]}"](z, self.label_embedding(y))

    def score_edges(self, rel: int, zu: Tensor, zv: Tensor, yu: Tensor, yv: Tensor) -> Tensor:
        """Edge logits of relation index ``rel`` for pairs ``(u, v)``."""
        return self.edge_dec[f"r{rel}"](zu, zv, self.label_embedding(yu), self.label_embedding(yv))

    def decode_time(self, rel: int, zu, zv, yu, yv) -> Tensor:
        """Edge timestamps (original units) of a temporal relation."""
        t01 = self.time_dec[f"r{rel}"](zu, zv, self.label_embedding(yu), self.label_embedding(yv))
        lo, hi = self.time_range[rel]
        return lo + t01 * (hi - lo)

    def decode_degree(self, t: str, z: Tensor, y: Tensor) -> Tensor:
        """Predicted ``log1p`` degrees [N, 2R] (in-degree of relation r at 2r, out-degree at 2r+1)."""
        return self.degree_dec[f"t{self._tidx[t]}"](torch.cat([z, self.label_embedding(y)], -1))

    def decode_type(self, z: Tensor) -> Tensor:
        """Node-type index per latent (0 when there is one node type)."""
        if self.type_dec is None:
            return torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return self.type_dec(z).argmax(-1)

    # ---- loss ------------------------------------------------------------------------------
    def loss(self, num_nodes, x_std, edge_index, labels, degrees, edge_time=None, loss_nodes=None,
             loss_edges=None, kl_weight: float = 1.0, gen: Optional[torch.Generator] = None,
             max_edges: int = 20000, shard: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, dict]:
        """One evaluation of the (negative) ELBO and the auxiliary losses.

        Args:
            num_nodes: the (sub)graph's node counts.
            x_std: the (sub)graph's standardised features.
            edge_index: the (sub)graph's data relations' edges (local indices).
            labels: ``{type: int64 [N_t]}`` in {0, 1, 2}.
            degrees: ``{type: float [N_t, 2R]}`` log1p degrees (targets).
            edge_time: ``{relation index: float [E]}`` normalised times of temporal relations.
            loss_nodes: ``{type: bool/int index}`` nodes whose reconstruction counts (default all).
            loss_edges: ``{edge_type: index}`` edges scored as positives (default: up to
                ``max_edges`` random ones per relation).
            kl_weight: multiplies ``beta`` (warm-up).
            gen: torch.Generator of the random draws (latent noise, edge subsample, negatives).
            max_edges: the most positive edges scored per relation when ``loss_edges`` is None.
            shard: ``(rank, world_size)`` of data-parallel full-batch training. All random
                draws (latent noise, edge subsample, negatives) are the whole batch's, as in
                one process; only every ``world_size``-th loss node and scored edge from
                ``rank`` on enters this rank's loss, divided by the global counts, so the
                ranks' losses and gradients add up to the single-process ones (the returned
                parts are this rank's shares too).
        """
        rank, world = (0, 1) if shard is None else (int(shard[0]), int(shard[1]))

        def mine(a):  # this rank's rows of a full-batch tensor
            return a if world == 1 else a[rank::world]

        mu, lv = self.encode(num_nodes, x_std, edge_index)
        z = {t: mu[t] + torch.randn(mu[t].shape, generator=gen, device=mu[t].device) * (0.5 * lv[t]).exp()
             if self.training else mu[t] for t in self.node_types}
        parts = {}
        feat, kl, deg, typ, count = 0.0, 0.0, 0.0, 0.0, 0
        for ti, t in enumerate(self.node_types):
            idx = None if loss_nodes is None else loss_nodes.get(t)
            sel = (lambda a: a) if idx is None else (lambda a, idx=idx: a[idx])
            zt, yt, mt, lt = sel(z[t]), sel(labels[t]), sel(mu[t]), sel(lv[t])
            n = zt.shape[0]
            if n == 0:
                continue
            count += n  # the global count normalises every rank's share
            xt, dt = sel(x_std[t]), sel(degrees[t])
            if world > 1:
                zt, yt, mt, lt, xt, dt = (mine(a) for a in (zt, yt, mt, lt, xt, dt))
                n = zt.shape[0]
                if n == 0:
                    continue
            feat = feat + ((self.decode_features(t, zt, yt) - xt) ** 2).sum()
            kl = kl + 0.5 * (mt ** 2 + lt.exp() - 1 - lt).sum()
            deg = deg + ((self.decode_degree(t, zt, yt) - dt) ** 2).sum()
            if self.type_dec is not None:
                typ = typ + F.cross_entropy(self.type_dec(zt), torch.full((n,), ti, device=zt.device), reduction="sum")
        count = max(count, 1)
        parts["feat"], parts["kl"] = feat / count, kl / count
        parts["degree"] = deg / count
        if self.type_dec is not None:
            parts["type"] = typ / count
        edge, tloss, nrel = 0.0, 0.0, 0
        for j, et in enumerate(self.edge_types):
            e = edge_index.get(et)
            if e is None or e.shape[1] == 0:
                continue
            sel_e = None
            if loss_edges is not None and et in loss_edges:
                sel_e = loss_edges[et]
            elif e.shape[1] > max_edges:
                sel_e = torch.randint(0, e.shape[1], (max_edges,), generator=gen, device=e.device)
            if sel_e is not None:
                e = e[:, sel_e]
            if e.shape[1] == 0:
                continue
            s, d = e[0], e[1]
            ns, nd = num_nodes[et[0]], num_nodes[et[2]]
            neg_d = torch.randint(0, nd, d.shape, generator=gen, device=d.device)
            neg_s = torch.randint(0, ns, s.shape, generator=gen, device=s.device)
            m = s.shape[0]  # scored edges of the whole batch
            if world > 1:
                s, d, neg_d, neg_s = mine(s), mine(d), mine(neg_d), mine(neg_s)
            zs, zd, ys, yd = z[et[0]], z[et[2]], labels[et[0]], labels[et[2]]
            pos = self.score_edges(j, zs[s], zd[d], ys[s], yd[d])
            n1 = self.score_edges(j, zs[s], zd[neg_d], ys[s], yd[neg_d])
            n2 = self.score_edges(j, zs[neg_s], zd[d], ys[neg_s], yd[d])
            logits = torch.cat([pos, n1, n2])
            target = torch.cat([torch.ones_like(pos), torch.zeros_like(n1), torch.zeros_like(n2)])
            w = torch.cat([torch.full_like(pos, 2.0), torch.ones_like(n1), torch.ones_like(n2)])
            if world == 1:
                edge = edge + F.binary_cross_entropy_with_logits(logits, target, weight=w)
            else:  # this rank's share of the mean over the 3m scored pairs
                edge = edge + F.binary_cross_entropy_with_logits(logits, target, weight=w, reduction="sum") / (3 * m)
            nrel += 1
            if j in self.temporal and edge_time is not None and j in edge_time:
                tt = edge_time[j] if sel_e is None else edge_time[j][sel_e]
                tt = mine(tt) if tt.shape[0] == m else tt
                pred = self.time_dec[f"r{j}"](zs[s], zd[d], self.label_embedding(ys[s]), self.label_embedding(yd[d]))
                if tt.shape[0] == pred.shape[0]:
                    tloss = tloss + (F.mse_loss(pred, tt) if world == 1 else ((pred - tt) ** 2).sum() / m)
        if nrel:
            parts["edge"] = edge / nrel * 10.0  # edges weigh like ~10 features
        if self.temporal and torch.is_tensor(tloss):
            parts["time"] = tloss * 10.0
        total = sum(v for k, v in parts.items() if k != "kl") + self.beta * kl_weight * parts["kl"]
        return total, {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()}

    # ---- fitting ---------------------------------------------------------------------------
    def fit(self, graph: HeteroGraph, train_mask=None, target: Optional[str] = None, *, epochs: int = 150,
            lr: float = 5e-3, weight_decay: float = 1e-5, kl_warmup: float = 0.3, batch_size: Optional[int] = None,
            fanouts: Sequence[int] = (10, 5), max_batches: Optional[int] = None, random_state: Optional[int] = None,
            verbose: bool = True, distributed: bool = False) -> "GraphVAE":
        """Train on ``graph`` (labels of ``train_mask`` nodes of ``target`` only; the rest unknown).

        Args:
            graph: the data graph (node types without features get derived structural ones).
            train_mask: boolean [N_target] or indices of nodes whose labels condition the
                decoders; None uses no labels at all.
            target: the labelled node type (default: the graph's).
            epochs: full-batch steps, or passes over the seed nodes when mini-batching.
            lr: AdamW learning rate.
            weight_decay: AdamW weight decay.
            kl_warmup: fraction of the epochs over which the KL weight rises from 0 to ``beta``.
            batch_size: None trains full-batch; else seed nodes per mini-batch (neighbour
                sampling with ``fanouts``, one entry per hop).
            fanouts: neighbours sampled per node at each hop when mini-batching.
            max_batches: stop each epoch after this many mini-batches (benchmarks).
            random_state: seed of the initialisation-independent randomness (sampling, noise).
            verbose: tqdm progress bar.
            distributed: data-parallel training over the default ``torch.distributed``
                process group (:mod:`pygad.models.distributed`; no effect in a lone
                process). Every rank holds the whole graph and starts from rank 0's weights.
                Full batch: all ranks share one random stream (``random_state``, or a seed
                drawn on rank 0), so they draw the single-process noise and negatives; each
                scores its shard of the nodes and edges (``loss(shard=)``) and the gradients
                are summed over ranks before clipping and the step: each step is the
                single-process step up to float summation order. Mini-batch: the sampler
                partitions each epoch's seeds by rank (``batch_size`` seeds per rank and
                step, the same number of steps on every rank), the noise stream is seeded by
                ``(random_state, rank)``, and the gradients of the ranks' batch means are
                averaged. Either way the replicas stay bit-identical. Encoder dropout (off
                by default) draws from the global torch RNG: seed it alike on every rank.
        """
        from . import distributed as pgd

        rank, world = pgd.training_group(distributed)
        graph = _with_features(graph)
        self.check_graph(graph)
        dev = self.x_mean_t0.device
        self.set_scaler(graph)
        if world > 1:
            pgd.broadcast_parameters(self)
            random_state = pgd.common_seed(random_state)
        labels_np = node_labels(graph, train_mask, target, self.conditional)
        labels = {t: torch.from_numpy(v).to(dev) for t, v in labels_np.items()}
        degrees_np = node_degrees(graph, self.edge_types)
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(random_state) if random_state is not None else int(np.random.SeedSequence().entropy % 2**62))
        if world > 1 and batch_size is not None:  # ranks see different subgraphs: independent noise
            gen.manual_seed(int(np.random.SeedSequence([int(random_state), rank]).generate_state(1, np.uint64)[0] >> 1))
        rng = np.random.default_rng(random_state)  # the same on every rank: the sampler's seed
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
        warm = max(1, int(kl_warmup * epochs))
        self.history_ = []
        self.train()
        if batch_size is None:
            x_std = {t: self.standardise(t, graph.x[t]) for t in self.node_types}
            ei = {et: torch.from_numpy(graph.edge_index[et]).to(dev) for et in self.edge_types}
            deg = {t: torch.from_numpy(v).to(dev) for t, v in degrees_np.items()}
            et_time = self._norm_times(graph, dev)
            bar = _progress(range(epochs), epochs, verbose and rank == 0, "GraphVAE")
            for ep in bar:
                opt.zero_grad(set_to_none=True)
                loss, parts = self.loss(graph.num_nodes, x_std, ei, labels, deg, et_time,
                                        kl_weight=min(1.0, (ep + 1) / warm), gen=gen,
                                        shard=None if world == 1 else (rank, world))
                loss.backward()
                pgd.allreduce_gradients(self.parameters(), average=False)  # shares add up
                torch.nn.utils.clip_grad_norm_(self.parameters(), 5.0)
                opt.step()
                parts["loss"] = float(loss.detach())
                if world > 1:  # the global values are the sums of the ranks' shares
                    keys = sorted(parts)
                    parts = dict(zip(keys, pgd.allreduce_sum([parts[k] for k in keys])))
                self.history_.append(parts)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{parts['loss']:.3f}")
        else:
            self._fit_minibatch(graph, labels_np, degrees_np, opt, epochs, warm, int(batch_size), fanouts,
                                max_batches, gen, rng, verbose, rank=rank, world=world)
        self.eval()
        return self

    def _norm_times(self, graph, dev, eids: Optional[dict] = None) -> dict:
        out = {}
        for j in self.temporal:
            et = self.edge_types[j]
            lo, hi = self.time_range[j]
            t = graph.edge_time[et] if eids is None else graph.edge_time[et][eids[et]]
            out[j] = torch.from_numpy(((t - lo) / max(hi - lo, 1e-12)).astype(np.float32)).to(dev)
        return out

    def _fit_minibatch(self, graph, labels_np, degrees_np, opt, epochs, warm, batch_size, fanouts, max_batches,
                       gen, rng, verbose, rank: int = 0, world: int = 1):
        dev = self.x_mean_t0.device
        # CSR per relation (destination-sorted; native kernel); edge ids to look up times
        csr, eid_of = {}, {}
        for et in self.edge_types:
            rowptr, col, eid = graph.csr(et)
            csr[et] = (rowptr, col)
            eid_of[et] = eid
        # encoder messages must also flow along reverse relations: sample on them too
        rev_csr = {}
        for i, rev in self.encoder_relations:
            if rev:
                et = self.edge_types[i]
                colptr, row, perm = graph.csc(et)
                rev_csr[(et[2], "__rev__" + et[1], et[0])] = (colptr, row)
        all_csr = {**csr, **rev_csr}
        # seeds: every node of every type, reshuffled each epoch (native sampler)
        from ..ops import NeighborSampler

        sampler = NeighborSampler((all_csr, dict(graph.num_nodes)), fanouts, batch_size,
                                  seed=int(rng.integers(0, 2**63)), rank=rank, world_size=world)
        nb = len(sampler)
        if max_batches is not None:
            nb = min(nb, int(max_batches))
        step = 0
        for ep in range(epochs):
            sampler.set_epoch(ep)
            batches = iter(sampler)
            bar = _progress(range(nb), nb, verbose and rank == 0, f"GraphVAE epoch {ep + 1}/{epochs}")
            for b in bar:
                mb = next(batches)
                seeds, nodes, edges = mb.seeds, mb.nodes, mb.edges
                nn_loc = {t: int(v.size) for t, v in nodes.items()}
                for t in self.node_types:
                    nn_loc.setdefault(t, 0)
                    nodes.setdefault(t, np.empty(0, np.int64))
                x_std = {t: self.standardise(t, graph.x[t][nodes[t]]) for t in self.node_types}
                ei = {}
                for et in self.edge_types:
                    e = edges.get(et)
                    r = edges.get((et[2], "__rev__" + et[1], et[0]))
                    parts = [p for p in (e, None if r is None else r[::-1]) if p is not None and p.shape[1]]
                    if parts:
                        ei[et] = torch.from_numpy(np.ascontiguousarray(np.concatenate(parts, 1))).to(dev)
                lab = {t: torch.from_numpy(labels_np[t][nodes[t]]).to(dev) for t in self.node_types}
                deg = {t: torch.from_numpy(degrees_np[t][nodes[t]]).to(dev) for t in self.node_types}
                loss_nodes = {t: slice(0, seeds[t].size) if t in seeds else slice(0, 0) for t in self.node_types}
                opt.zero_grad(set_to_none=True)
                loss, parts = self.loss(nn_loc, x_std, ei, lab, deg, None, loss_nodes=loss_nodes,
                                        kl_weight=min(1.0, (step + 1) / max(1, warm * nb)), gen=gen)
                loss.backward()
                if world > 1:  # equal batch sizes on all ranks: the mean is the big batch's mean
                    from .distributed import allreduce_gradients
                    allreduce_gradients(self.parameters())
                torch.nn.utils.clip_grad_norm_(self.parameters(), 5.0)
                opt.step()
                step += 1
                parts["loss"] = float(loss.detach())
                if world > 1:
                    from .distributed import allreduce_sum
                    keys = sorted(parts)
                    parts = {k: v / world for k, v in zip(keys, allreduce_sum([parts[k] for k in keys]))}
                self.history_.append(parts)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{parts['loss']:.3f}")

    @torch.no_grad()
    def embed(self, graph: HeteroGraph) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Encoder ``(mu, logvar)`` of every node (full graph, eval mode)."""
        graph = _with_features(graph)
        self.check_graph(graph)
        self.eval()
        dev = self.x_mean_t0.device
        x_std = {t: self.standardise(t, graph.x[t]) for t in self.node_types}
        ei = {et: torch.from_numpy(graph.edge_index[et]).to(dev) for et in self.edge_types}
        return self.encode(graph.num_nodes, x_std, ei)

    # ---- persistence -----------------------------------------------------------------------
    def save(self, path) -> None:
        """``path/config.json`` + ``path/weights.pt`` (tensors only)."""
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.json"), "w") as fh:
            json.dump({"format": _FORMAT, "params": self.config()}, fh, indent=2)
        torch.save({k: v.detach().cpu() for k, v in self.state_dict().items()}, os.path.join(path, "weights.pt"))

    @classmethod
    def load(cls, path, device="cpu") -> "GraphVAE":
        """Rebuild a model written by :meth:`save` (``torch.load(weights_only=True)``)."""
        from ._files import read_config, read_weights, rebuilding
        cfg = read_config(path, _FORMAT, "GraphVAE")
        with rebuilding(path):
            p = dict(cfg["params"])
            p["metadata"] = (p["metadata"][0], [tuple(et) for et in p["metadata"][1]])
            model = cls(**p)
            model.load_state_dict(read_weights(path))
        return model.to(device).eval()
