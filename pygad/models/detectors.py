"""Supervised node anomaly detectors on :class:`~pygad.data.HeteroGraph` (scikit-learn/PyGOD contract).

* :class:`GNNDetector`: the HGT encoder (:class:`pygad.nn.HGT`) + an MLP head, class-weighted
  loss, early stopping on validation average precision.
* :class:`TreeDetector`: multi-hop neighbour-aggregated features per relation (mean/max/sum
  along every relation path, native segment kernels) fed to scikit-learn's
  ``HistGradientBoostingClassifier`` (GADBench's RF/XGB-Graph recipe).
* :class:`FeatureOnlyDetector`: the same trees on the target nodes' own features only (no
  graph): the baseline the graph detectors must beat.

Contract: ``__init__`` only stores its arguments; ``fit(graph, train_mask, val_mask=None)``
returns ``self``; ``decision_function(graph)`` returns one score per node of the target node
type (higher = more anomalous); ``predict(graph)`` thresholds the scores at ``threshold_``
(the F1-best cut on the validation nodes, else the training nodes). Fitted attributes end in
``_``. Nodes labelled -1 (unknown) inside a mask are ignored.
"""
from __future__ import annotations

import inspect
import sys
from typing import Sequence

import numpy as np

from ..data.convert import as_hetero_graph
from ..data.graph import HeteroGraph
from ..metrics import average_precision

try:  # scikit-learn's estimator base: get_params/set_params/clone/repr
    from sklearn.base import BaseEstimator
except ImportError:  # pragma: no cover - scikit-learn is a dependency
    BaseEstimator = object

AGGREGATIONS = ("mean", "max", "sum")


# ---- shared helpers --------------------------------------------------------------------------
def _mask_indices(graph: HeteroGraph, target: str, mask, name: str) -> np.ndarray:
    """Indices of the labelled (0/1) nodes selected by a boolean mask or an index array."""
    n = graph.num_nodes[target]
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.dtype == bool:
        if m.shape != (n,):
            raise ValueError(f"'{name}' must be a boolean mask of length {n} (node type {target!r}), got shape "
                             f"{list(m.shape)}")
        idx = np.flatnonzero(m)
    elif np.issubdtype(m.dtype, np.integer):
        if m.ndim != 1:
            raise ValueError(f"'{name}' as node indices must be 1-D, got shape {list(m.shape)}")
        if m.size and (m.min() < 0 or m.max() >= n):
            raise ValueError(f"'{name}' has node indices outside [0, {n}) of node type {target!r}")
        idx = np.unique(m)
    else:
        raise TypeError(f"'{name}' must be a boolean mask or integer indices, got dtype {m.dtype}")
    y = graph.y.get(target)
    if y is None:
        raise ValueError(f"node type {target!r} has no labels 'y' to train on")
    return idx[y[idx] >= 0]


def _check_split(graph: HeteroGraph, target: str, idx: np.ndarray, name: str, required: bool) -> bool:
    y = graph.y[target][idx]
    pos = int((y == 1).sum())
    if pos == 0 or pos == y.shape[0]:
        what = "no anomalies" if pos == 0 else "no normal nodes"
        msg = (f"the {name} split has {what} ({pos} anomalies among {y.shape[0]} labelled {name} nodes of type "
               f"{target!r}); a supervised detector needs both classes")
        if required:
            raise ValueError(msg)
        return False
    return True


def _best_f1_threshold(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order].astype(bool)
    last = np.r_[ss[1:] != ss[:-1], True]
    tp = np.cumsum(yy)[last]
    k = np.arange(1, yy.shape[0] + 1)[last]
    f1 = 2 * tp / (k + yy.sum())
    return float(ss[last][int(np.argmax(f1))])


class _Detector(BaseEstimator):
    """Shared fit/predict plumbing."""

    def _start_fit(self, graph: HeteroGraph, train_mask, val_mask):
        if not isinstance(graph, HeteroGraph):
            raise TypeError(f"'graph' must be a pygad.data.HeteroGraph, got {type(graph).__name__} "
                            "(convert with HeteroGraph.from_pyg / from_edges)")
        target = graph.target_type(getattr(self, "target", None))
        tr = _mask_indices(graph, target, train_mask, "train_mask")
        _check_split(graph, target, tr, "training", required=True)
        va = None
        if val_mask is not None:
            va = _mask_indices(graph, target, val_mask, "val_mask")
            if not _check_split(graph, target, va, "validation", required=False):
                va = None  # nothing to early-stop on; train without it
        self.target_ = target
        return target, tr, va

    def _finish_fit(self, graph: HeteroGraph, tr, va):
        idx = va if va is not None else tr
        s = self.decision_function(graph)
        self.threshold_ = _best_f1_threshold(graph.y[self.target_][idx], s[idx])
        return self

    def _check_fitted(self):
        if not hasattr(self, "target_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit(graph, train_mask) first")

    def predict(self, graph: HeteroGraph) -> np.ndarray:
        """0/1 predictions for the target nodes: ``decision_function(graph) >= threshold_``."""
        self._check_fitted()
        graph = as_hetero_graph(graph)
        return (self.decision_function(graph) >= self.threshold_).astype(np.int64)


# ---- trees -----------------------------------------------------------------------------------
def neighbor_features(graph: HeteroGraph, target: str, hops: int = 2,
                      aggregations: Sequence[str] = AGGREGATIONS, degree: bool = True,
                      max_paths: int = 256) -> tuple:
    """Multi-hop neighbour-aggregated features of the ``target`` nodes.

    For every relation path ``r_1 .. r_k`` (k <= ``hops``) that ends at ``target`` and every
    aggregation ``a``, the source features are aggregated with ``a`` along the path, one
    relation at a time (``mean(mean(x))``, ``max(max(x))``, ...; GADBench's recipe), using
    :func:`pygad.ops.neighbor_aggregate` over each relation's cached CSR. With ``degree``,
    ``log1p`` in-degree per incoming relation is added. ``hops=0`` gives the node's own features.

    Returns:
        ``(X float32 [N_target, F], names list[F])``.
    """
    from ..ops import neighbor_aggregate

    for a in aggregations:
        if a not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {a!r}; choose from {AGGREGATIONS}")
    if hops < 0:
        raise ValueError(f"'hops' must be >= 0, got {hops}")
    cols, names = [], []
    if target in graph.x:
        cols.append(graph.x[target])
        fn = graph.feature_names.get(target) or [f"x{j}" for j in range(graph.x[target].shape[1])]
        names += list(fn)
    level = {(t, (), None): x for t, x in graph.x.items()}
    n_paths = 0
    for k in range(1, hops + 1):
        nxt = {}
        for (s, path, a0), xs in level.items():
            if xs.shape[1] == 0:
                continue
            for et in graph.edge_types:
                if et[0] != s:
                    continue
                rowptr, col, _ = graph.csr(et)
                for a in (aggregations if a0 is None else (a0,)):
                    nxt[(et[2], path + (et,), a)] = neighbor_aggregate(xs, rowptr, col, a)
                    n_paths += 1
                    if n_paths > max_paths * max(1, len(aggregations)):
                        raise ValueError(f"too many relation paths (> {max_paths}) for hops={hops}; "
                                         "lower 'hops' or raise 'max_paths'")
        level = nxt
        for (t, path, a), xa in level.items():
            if t == target:
                cols.append(xa)
                p = "/".join(et[1] for et in path)
                names += [f"{a}[{p}]:{j}" for j in range(xa.shape[1])]
    if degree:
        for et in graph.edge_types:
            if et[2] == target:
                cols.append(np.log1p(graph.degree(et, "in")).astype(np.float32)[:, None])
                names.append(f"log_degree[{et[1]}]")
    if not cols:
        raise ValueError(f"node type {target!r} has no features and no incoming relations to derive any from")
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32), names


class TreeDetector(_Detector):
    """Gradient-boosted trees on multi-hop neighbour-aggregated features (per relation).

    Args:
        hops: relation-path length of the aggregated features (0 = own features only).
        aggregations: subset of ``("mean", "max", "sum")``.
        degree: add ``log1p`` in-degree per incoming relation.
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization:
            ``HistGradientBoostingClassifier`` settings.
        class_weight: ``"balanced"`` (default) or None.
        early_stopping: stop adding trees when the validation log-loss stalls for
            ``n_iter_no_change`` rounds (uses ``val_mask``; else an internal 10% split).
        n_threads: OpenMP threads of the boosting; default 1 for small problems (< 2M training
            cells), else ``torch.get_num_threads()``.
        target: node type to score (default: the labelled one).
        device: accepted for the common contract; trees run on the CPU.
        random_state: seed of the boosting.
        verbose: print a line per fit.
    """

    def __init__(self, hops: int = 2, aggregations: Sequence[str] = AGGREGATIONS, degree: bool = True,
                 max_iter: int = 300, learning_rate: float = 0.05, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 20, l2_regularization: float = 0.0, class_weight="balanced",
                 early_stopping: bool = True, n_iter_no_change: int = 30, n_threads: int | None = None,
                 target: str | None = None, device: str = "cpu", random_state: int | None = None,
                 verbose: bool = False):
        self.hops = hops
        self.aggregations = aggregations
        self.degree = degree
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.n_threads = n_threads
        self.target = target
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _threads(self, cells: int):
        """OpenMP thread limit for the boosting (one thread on small problems, where OpenMP
        barriers cost more than they give, and which degrade badly on a busy machine)."""
        from threadpoolctl import threadpool_limits

        n = self.n_threads
        if n is None:
            import torch

            n = 1 if cells < 2_000_000 else torch.get_num_threads()
        return threadpool_limits(limits=int(n), user_api="openmp")

    def _features(self, graph: HeteroGraph, target: str) -> tuple:
        return neighbor_features(graph, target, self.hops, tuple(self.aggregations), self.degree)

    def fit(self, graph: HeteroGraph, train_mask, val_mask=None) -> "TreeDetector":
        from sklearn.ensemble import HistGradientBoostingClassifier

        graph = as_hetero_graph(graph)
        target, tr, va = self._start_fit(graph, train_mask, val_mask)
        X, names = self._features(graph, target)
        y = graph.y[target].astype(np.int64)
        fit_kw = {}
        use_val = self.early_stopping and va is not None and \
            "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters
        clf = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate, max_iter=self.max_iter, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            class_weight=self.class_weight, early_stopping=bool(self.early_stopping),
            scoring="loss",  # incremental; a scorer would re-predict all trees every round (quadratic)
            n_iter_no_change=self.n_iter_no_change, random_state=self.random_state)
        if use_val:
            fit_kw = {"X_val": X[va], "y_val": y[va]}
        with self._threads(len(tr) * X.shape[1]):
            clf.fit(X[tr], y[tr], **fit_kw)
        self.model_ = clf
        self.feature_names_ = names
        self.n_features_in_ = X.shape[1]
        if self.verbose:
            print(f"{type(self).__name__}: {X.shape[1]} features, {clf.n_iter_} trees", file=sys.stderr)
        return self._finish_fit(graph, tr, va)

    def decision_function(self, graph: HeteroGraph) -> np.ndarray:
        """Anomaly score (log-odds) of every node of the target type."""
        self._check_fitted()
        graph = as_hetero_graph(graph)
        X, _ = self._features(graph, self.target_)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"the graph gives {X.shape[1]} features but the detector was fitted on "
                             f"{self.n_features_in_}; score graphs with the same node/edge types and feature widths")
        with self._threads(X.size):
            return np.asarray(self.model_.decision_function(X), dtype=np.float64)


class FeatureOnlyDetector(TreeDetector):
    """Baseline without the graph: the same gradient-boosted trees on the target nodes' own
    features (the archive's ``x``; for archives without features, the derived structural ones,
    which do carry degree information; see ``graph.features_derived``)."""

    def __init__(self, max_iter: int = 300, learning_rate: float = 0.05, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 20, l2_regularization: float = 0.0, class_weight="balanced",
                 early_stopping: bool = True, n_iter_no_change: int = 30, n_threads: int | None = None,
                 target: str | None = None, device: str = "cpu", random_state: int | None = None,
                 verbose: bool = False):
        super().__init__(hops=0, aggregations=(), degree=False, max_iter=max_iter, learning_rate=learning_rate,
                         max_leaf_nodes=max_leaf_nodes, min_samples_leaf=min_samples_leaf,
                         l2_regularization=l2_regularization, class_weight=class_weight,
                         early_stopping=early_stopping, n_iter_no_change=n_iter_no_change, n_threads=n_threads, target=target,
                         device=device, random_state=random_state, verbose=verbose)

    def _features(self, graph: HeteroGraph, target: str) -> tuple:
        if target not in graph.x:
            raise ValueError(f"node type {target!r} has no features; load it with derived structural features "
                             "(pygad.datasets.with_structural_features)")
        return neighbor_features(graph, target, hops=0, aggregations=(), degree=False)


# ---- GNN -------------------------------------------------------------------------------------
def _progress(iterable, total: int, verbose: bool, desc: str):
    disable = not verbose or not sys.stderr.isatty()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False)


class GNNDetector(_Detector):
    """HGT encoder + MLP head, trained full-batch with a class-weighted loss.

    The head sees the target node's HGT embedding concatenated with its own (standardised)
    input features. Training stops early when validation average precision has not improved
    for ``patience`` epochs, and the best epoch's weights are kept.

    Args:
        hidden_channels: width of the HGT layers and the head.
        num_layers: HGT layers (hops). Default 2 (not the encoder's 4): on the bundled data two
            hops are as good and twice as fast on a CPU.
        heads: attention heads.
        dropout: dropout in the encoder and head.
        lr, weight_decay: AdamW settings.
        epochs: maximum training epochs; patience: early-stopping patience (epochs).
        class_weight: ``"balanced"`` (positive weight = #normal / #anomalous in training) or None.
        add_reverse: add reverse relations to directed relations so messages flow both ways.
        target: node type to score (default: the labelled one).
        device: torch device (``"cpu"``, ``"cuda"``).
        random_state: seed for weight init and dropout (the global torch RNG is left untouched).
        verbose: tqdm progress bar (shown only on a terminal).
        distributed: data-parallel training over the default ``torch.distributed`` process
            group (see :mod:`pygad.models.distributed`; no effect in a lone process).
            Every rank holds the whole graph and runs the encoder on it; the training nodes
            are split by rank (``train[rank::world]``), each rank's loss is the sum of its
            nodes' weighted losses divided by the global count, and the gradients are summed
            over ranks, so each step equals the single-process full-batch step up to float
            summation order. Weights start from rank 0's, dropout masks are the same on every
            rank (a common seed), and early stopping follows rank 0's validation AP, so the
            replicas stay bit-identical. With ``device="cuda"`` each rank uses
            ``cuda:LOCAL_RANK``.
    """

    def __init__(self, hidden_channels: int = 64, num_layers: int = 2, heads: int = 4, dropout: float = 0.2,
                 lr: float = 5e-3, weight_decay: float = 1e-4, epochs: int = 100, patience: int = 20,
                 class_weight="balanced", add_reverse: bool = True, target: str | None = None,
                 device: str = "cpu", random_state: int | None = None, verbose: bool = True,
                 distributed: bool = False):
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.heads = heads
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.class_weight = class_weight
        self.add_reverse = add_reverse
        self.target = target
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.distributed = distributed

    def _torch_device(self):
        import torch

        if self.distributed and str(self.device) == "cuda":
            from .distributed import device_for_rank
            return device_for_rank("cuda")  # one GPU per rank
        return torch.device(self.device)

    # -- inputs
    def _inputs(self, graph: HeteroGraph, fit: bool = False):
        import torch

        g = graph.with_reverse_edges() if self.add_reverse else graph
        missing = [t for t in g.node_types if t not in g.x]
        if missing:
            from ..datasets import with_structural_features
            g = with_structural_features(g)
        if fit:
            self.scaler_ = {}
            for t, x in g.x.items():
                mu = x.mean(0, dtype=np.float64)
                sd = x.std(0, dtype=np.float64)
                self.scaler_[t] = (mu.astype(np.float32), np.where(sd > 1e-12, sd, 1.0).astype(np.float32))
            self.metadata_ = g.metadata()
            self.in_channels_ = {t: x.shape[1] for t, x in g.x.items()}
        else:
            if g.metadata()[1] != self.metadata_[1] or {t: x.shape[1] for t, x in g.x.items()} != self.in_channels_:
                raise ValueError("the graph's node/edge types or feature widths differ from the fitted graph's "
                                 f"(fitted: {self.metadata_}, widths {self.in_channels_})")
        dev = self._torch_device()
        x_dict = {t: torch.from_numpy(np.clip((x - self.scaler_[t][0]) / self.scaler_[t][1], -10, 10)
                                      .astype(np.float32)).to(dev) for t, x in g.x.items()}
        return x_dict, g.edge_index_dict(dev)

    def _build(self):
        import torch
        from torch import nn

        from ..nn import HGT

        hidden, fin = self.hidden_channels, self.in_channels_[self.target_]

        class _Net(nn.Module):
            def __init__(s):
                super().__init__()
                s.encoder = HGT(self.in_channels_, hidden, self.metadata_, num_layers=self.num_layers,
                                heads=self.heads, dropout=self.dropout)
                s.head = nn.Sequential(nn.Linear(hidden + fin, hidden), nn.ReLU(), nn.Dropout(self.dropout),
                                       nn.Linear(hidden, 1))

            def forward(s, x_dict, edge_index_dict, target):
                h = s.encoder(x_dict, edge_index_dict)[target]
                return s.head(torch.cat([h, x_dict[target]], dim=1)).squeeze(-1)

        return _Net()

    def fit(self, graph: HeteroGraph, train_mask, val_mask=None) -> "GNNDetector":
        import torch
        import torch.nn.functional as F

        from . import distributed as pgd

        rank, world = pgd.training_group(self.distributed)
        graph = as_hetero_graph(graph)
        target, tr, va = self._start_fit(graph, train_mask, val_mask)
        x_dict, ei_dict = self._inputs(graph, fit=True)
        dev = self._torch_device()
        y = torch.from_numpy(graph.y[target].astype(np.float32)).to(dev)
        tr_t = torch.from_numpy(tr).to(dev)
        y_tr = y[tr_t]
        pos = float(y_tr.sum())
        pos_weight = None
        if self.class_weight == "balanced":
            pos_weight = torch.tensor((len(tr) - pos) / pos, device=dev)
        elif self.class_weight is not None:
            raise ValueError(f"'class_weight' must be 'balanced' or None, got {self.class_weight!r}")
        # this rank's training nodes (all of them in a single process)
        mine, y_mine = (tr_t, y_tr) if world == 1 else (tr_t[rank::world], y_tr[rank::world])
        seed = self.random_state if world == 1 else pgd.common_seed(self.random_state)
        y_np = graph.y[target]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(int(seed))
            net = self._build().to(dev)
            pgd.broadcast_parameters(net)  # no-op in a single process
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            best, best_state, best_epoch, history = -np.inf, None, 0, []
            bar = _progress(range(self.epochs), self.epochs, self.verbose and rank == 0, f"GNN {graph.name}")
            for epoch in bar:
                net.train()
                opt.zero_grad()
                out = net(x_dict, ei_dict, target)
                if world == 1:
                    loss = F.binary_cross_entropy_with_logits(out[tr_t], y_tr, pos_weight=pos_weight)
                else:
                    # sum over this rank's nodes / global count: the ranks' losses and
                    # gradients add up to the full-batch mean (also with class weights)
                    loss = F.binary_cross_entropy_with_logits(out[mine], y_mine, pos_weight=pos_weight,
                                                              reduction="sum") / len(tr)
                loss.backward()
                pgd.allreduce_gradients(net.parameters(), average=False)
                opt.step()
                loss_value = float(loss.detach()) if world == 1 else pgd.allreduce_sum([loss.detach()])[0]
                rec = {"epoch": epoch, "loss": loss_value}
                if va is not None:
                    score = np.nan
                    if rank == 0:
                        net.eval()
                        with torch.no_grad():
                            s = net(x_dict, ei_dict, target).cpu().numpy()
                        score = average_precision(y_np[va], s[va])
                    if world > 1:  # rank 0 decides, so every rank stops at the same epoch
                        score = pgd.broadcast_scalar(score)
                    rec["val_ap"] = score
                else:
                    score = -loss_value
                history.append(rec)
                if score > best:
                    best, best_epoch = score, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", **({"val_ap": f"{score:.4f}"} if va is not None else {}))
                if epoch - best_epoch >= self.patience:
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
        net.eval()
        self.model_ = net
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.best_val_ap_ = best if va is not None else None
        self._finish_fit(graph, tr, va)
        if world > 1:  # one cut for all ranks, whatever their rounding of the scores
            self.threshold_ = pgd.broadcast_scalar(self.threshold_)
        return self

    def decision_function(self, graph: HeteroGraph) -> np.ndarray:
        """Anomaly score (logit) of every node of the target type."""
        import torch

        self._check_fitted()
        x_dict, ei_dict = self._inputs(as_hetero_graph(graph))
        with torch.no_grad():
            return self.model_(x_dict, ei_dict, self.target_).cpu().numpy().astype(np.float64)


__all__ = ["GNNDetector", "TreeDetector", "FeatureOnlyDetector", "neighbor_features"]
