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

Fitted detectors keep their feature schema (``schema_``: node types, relations, feature
columns) and score any graph with that schema, including one with nodes never seen in
training (inductive scoring); a graph with a new relation or a missing feature column is
refused. ``save(dir)`` / ``load(dir)`` (and :func:`load_detector`) keep a detector in a
directory that loads without running code (:mod:`pygad.models.persist`).
"""
from __future__ import annotations

import inspect
import sys
from typing import Sequence

import numpy as np

from ..data.convert import as_hetero_graph
from ..data.graph import HeteroGraph
from ..errors import PygadFileError, PygadValueError
from ..metrics import average_precision

from sklearn.base import BaseEstimator  # get_params/set_params/clone/repr (a dependency)

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


def _schema(graph: HeteroGraph, target: str) -> dict:
    """The feature schema of a graph: what a graph must match to be scored by a detector fitted on it."""
    feats = {}
    for t, x in graph.x.items():
        names = graph.feature_names.get(t)
        feats[t] = [str(c) for c in names] if names is not None and len(names) == x.shape[1] else None
    return {"target": target, "node_types": list(graph.node_types),
            "relations": [list(et) for et in graph.edge_types],
            "features": feats, "feature_widths": {t: int(x.shape[1]) for t, x in graph.x.items()}}


def _conform(graph: HeteroGraph, schema: dict) -> HeteroGraph:
    """``graph`` checked against a fitted schema and put in the fitted order.

    ``graph`` checked against a fitted schema, with node types, relations and named feature
    columns put in the fitted order (the same graph object when they already are).
    """
    if not isinstance(graph, HeteroGraph):
        raise TypeError(f"'graph' must be a pygad.data.HeteroGraph, got {type(graph).__name__}")
    nts = list(schema["node_types"])
    rels = [tuple(r) for r in schema["relations"]]
    new_t = [t for t in graph.node_types if t not in nts]
    miss_t = [t for t in nts if t not in graph.num_nodes]
    if new_t:
        raise PygadValueError(f"node type {new_t[0]!r} was not in the graph the detector was fitted on (fitted node "
                              f"types: {', '.join(nts)})")
    if miss_t:
        raise PygadValueError(f"the graph has no node type {miss_t[0]!r}, which the detector was fitted with "
                              f"(fitted node types: {', '.join(nts)})")
    fmt = ", ".join("{}:{}:{}".format(*et) for et in rels) or "none"
    new_r = [et for et in graph.edge_types if et not in rels]
    miss_r = [et for et in rels if et not in graph.edge_index]
    if new_r:
        raise PygadValueError("relation {1!r} ({0} -> {2}) was not in the graph the detector was fitted on "
                              "(fitted relations: {3}); a detector cannot score a new relation: re-fit it"
                              .format(*new_r[0], fmt))
    if miss_r:
        raise PygadValueError("the graph has no relation {1!r} ({0} -> {2}), which the detector was fitted with "
                              "(fitted relations: {3}); give it (an empty edge table is fine)".format(*miss_r[0], fmt))
    x, changed = dict(graph.x), False
    widths = schema.get("feature_widths", {})
    for t in nts:
        want, width = schema["features"].get(t), widths.get(t)
        if width is None:
            if t in graph.x:
                raise PygadValueError(f"node type {t!r} has feature columns, but had none when the detector was fitted")
            continue
        if t not in graph.x:
            raise PygadValueError(f"node type {t!r} has no feature columns; the detector was fitted on {width}"
                                  + (f" ({', '.join(want)})" if want else ""))
        have = graph.feature_names.get(t)
        if want is not None and have is not None and len(have) == graph.x[t].shape[1]:
            have = [str(c) for c in have]
            if have != want:
                missing = [c for c in want if c not in have]
                extra = [c for c in have if c not in want]
                if missing:
                    raise PygadValueError(f"node type {t!r} lacks the feature column{'s' if len(missing) > 1 else ''} "
                                          f"{', '.join(map(repr, missing))} the detector was fitted on (fitted: "
                                          f"{', '.join(want)})")
                if extra:
                    raise PygadValueError(f"node type {t!r} has feature column{'s' if len(extra) > 1 else ''} "
                                          f"{', '.join(map(repr, extra))} the detector was not fitted on (fitted: "
                                          f"{', '.join(want)})")
                x[t] = np.ascontiguousarray(graph.x[t][:, [have.index(c) for c in want]])
                changed = True
        elif graph.x[t].shape[1] != width:
            raise PygadValueError(f"node type {t!r} has {graph.x[t].shape[1]} features; the detector was fitted on "
                                  f"{width} features")
    if not changed and graph.node_types == nts and graph.edge_types == rels:
        return graph
    g = HeteroGraph({t: graph.num_nodes[t] for t in nts}, {et: graph.edge_index[et] for et in rels},
                    x={t: x[t] for t in nts if t in x}, y={t: graph.y[t] for t in nts if t in graph.y},
                    edge_time={et: graph.edge_time[et] for et in rels if et in graph.edge_time},
                    edge_attr={et: graph.edge_attr[et] for et in rels if et in graph.edge_attr},
                    features_derived=graph.features_derived, name=graph.name)
    g.feature_names = {t: (list(schema["features"][t]) if schema["features"].get(t) else graph.feature_names[t])
                       for t in g.x if schema["features"].get(t) or t in graph.feature_names}
    g.node_ids = dict(graph.node_ids)
    return g


def _check_params(cls, params, source: str) -> dict:
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if not isinstance(params, dict) or set(params) - allowed:
        bad = sorted(set(params) - allowed) if isinstance(params, dict) else params
        raise PygadFileError(f"{source}: unknown {cls.__name__} settings {bad}")
    return dict(params)


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
        self.schema_ = _schema(graph, target)
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

    def _conform(self, graph) -> HeteroGraph:
        """``graph`` (a HeteroGraph or a PyG HeteroData/Data) checked against the fitted schema."""
        graph = as_hetero_graph(graph)
        return _conform(graph, self.schema_) if hasattr(self, "schema_") else graph

    # -- persistence
    def _config(self, info) -> dict:
        return {"detector": type(self).__name__, "params": self.get_params(),
                "fitted": {"target": self.target_, "threshold": float(self.threshold_)},
                "schema": self.schema_, "info": dict(info or {})}

    def save(self, path, info: dict | None = None) -> None:
        """Save the fitted detector to the directory ``path`` (created or replaced atomically).

        The directory holds ``pygad-model.json`` (format version, pygad version, settings, the
        feature schema, SHA-256 of each weight file) and the weights; see
        :mod:`pygad.models.persist`. ``info`` is extra JSON kept in the config (e.g. how the
        graph was read). Load it with :meth:`load` or :func:`load_detector`.

        Examples:
            >>> det.save("model")                                  # doctest: +SKIP
            >>> scores = load_detector("model").decision_function(new_graph)  # doctest: +SKIP
        """
        from . import persist

        self._check_fitted()
        config, writers = self._persist(info)
        persist.write_model_dir(path, config, writers)

    @classmethod
    def load(cls, path, device: str | None = None) -> "_Detector":
        """A detector saved by :meth:`save`; runs no code from the directory.

        Raises:
            PygadFileError: not a model directory, another format version, a file changed after
                saving, or a detector of another class.
        """
        from . import persist

        cfg = persist.read_model_dir(path)
        klass = _DETECTOR_CLASSES.get(cfg["detector"])
        if klass is None or not issubclass(klass, cls):
            raise PygadFileError(f"{path}: holds a {cfg['detector']}, not a {cls.__name__} "
                                 "(pygad.models.load_detector loads any detector)")
        try:
            return klass._restore(cfg, path, device)
        except PygadFileError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PygadFileError(f"{path}: malformed {persist.CONFIG_NAME} ({type(exc).__name__}: {exc})") from None

    def _restore_common(self, cfg, path):
        f = cfg["fitted"]
        self.target_ = str(f["target"])
        self.threshold_ = float(f["threshold"])
        sc = cfg["schema"]
        self.schema_ = {"target": str(sc["target"]), "node_types": [str(t) for t in sc["node_types"]],
                        "relations": [[str(p) for p in r] for r in sc["relations"]],
                        "features": {str(t): (None if v is None else [str(c) for c in v])
                                     for t, v in sc["features"].items()},
                        "feature_widths": {str(t): int(v) for t, v in sc["feature_widths"].items()}}
        if any(len(r) != 3 for r in self.schema_["relations"]) or self.target_ not in self.schema_["node_types"]:
            raise PygadFileError(f"{path}: malformed schema in the model config")
        self.saved_info_ = dict(cfg.get("info") or {})


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

    Each target node is described by its own features and, for every relation path of up to
    ``hops`` relations ending at it, the mean/max/sum of its neighbours' features along that
    path (:func:`neighbor_features`); scikit-learn's ``HistGradientBoostingClassifier`` is
    trained on the training nodes.

    Args:
        hops: length of the relation paths whose neighbours are aggregated (0: the node's own
            features only; each extra hop multiplies the feature count by the relations).
        aggregations: neighbour aggregations to use, a subset of ``("mean", "max", "sum")``.
        degree: add the ``log1p`` in-degree of every incoming relation as a feature.
        max_iter: maximum number of boosting rounds (trees).
        learning_rate: shrinkage of each tree's contribution.
        max_leaf_nodes: leaves per tree.
        min_samples_leaf: smallest number of training nodes in a leaf.
        l2_regularization: L2 penalty on the leaf values.
        class_weight: ``"balanced"`` weighs anomalies by the class ratio; None weighs every
            node alike.
        early_stopping: stop adding trees when the validation log-loss has not improved for
            ``n_iter_no_change`` rounds (on ``val_mask`` when :meth:`fit` gets one, else on
            an internal 10% split of the training nodes).
        n_iter_no_change: patience of ``early_stopping``, in rounds.
        n_threads: OpenMP threads of the boosting; None uses 1 for small problems (under 2M
            training cells) and ``torch.get_num_threads()`` above.
        target: node type to score (default: the labelled one).
        device: accepted for the common detector contract; trees run on the CPU.
        random_state: seed of the boosting.
        verbose: print a line per fit.
        add_reverse: aggregate along reverse relations too (``graph.with_reverse_edges()``), so
            that features of the nodes a target node points to (its devices, the products it
            reviews) reach it; ``pygad detect`` turns this on.

    Examples:
        >>> from pygad.datasets import load
        >>> from pygad.evaluation import stratified_split
        >>> from pygad.metrics import evaluate
        >>> from pygad.models import TreeDetector
        >>> graph = load("books")
        >>> train, val, test = stratified_split(graph.y["node"], seed=0)
        >>> det = TreeDetector(hops=2, random_state=0).fit(graph, train, val)
        >>> scores = det.decision_function(graph)     # one per node, higher = more anomalous
        >>> metrics = evaluate(graph.y["node"][test], scores[test])   # auc, ap, rec_at_k
        >>> flagged = det.predict(graph)              # 0/1 at the F1-best validation cut
    """

    def __init__(self, hops: int = 2, aggregations: Sequence[str] = AGGREGATIONS, degree: bool = True,
                 max_iter: int = 300, learning_rate: float = 0.05, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 20, l2_regularization: float = 0.0, class_weight="balanced",
                 early_stopping: bool = True, n_iter_no_change: int = 30, n_threads: int | None = None,
                 target: str | None = None, device: str = "cpu", random_state: int | None = None,
                 verbose: bool = False, add_reverse: bool = False):
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
        self.add_reverse = add_reverse

    def _threads(self, cells: int):
        """OpenMP thread limit for the boosting.

        One thread on small problems, where OpenMP barriers cost more than they give, and
        which degrade badly on a busy machine.
        """
        from threadpoolctl import threadpool_limits

        n = self.n_threads
        if n is None:
            import torch

            n = 1 if cells < 2_000_000 else torch.get_num_threads()
        return threadpool_limits(limits=int(n), user_api="openmp")

    def _features(self, graph: HeteroGraph, target: str) -> tuple:
        if getattr(self, "add_reverse", False):
            graph = graph.with_reverse_edges()
        return neighbor_features(graph, target, self.hops, tuple(self.aggregations), self.degree)

    def fit(self, graph: HeteroGraph, train_mask, val_mask=None) -> "TreeDetector":
        """Train the trees on the labelled training nodes of the target type.

        Args:
            graph: the graph.
            train_mask: boolean mask (or indices) of the training nodes; needs both classes.
            val_mask: validation nodes for early stopping and the decision threshold (optional).

        Returns:
            self
        """
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
        X, _ = self._features(self._conform(graph), self.target_)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"the graph gives {X.shape[1]} features but the detector was fitted on "
                             f"{self.n_features_in_}; score graphs with the same node/edge types and feature widths")
        with self._threads(X.size):
            return np.asarray(self.model_.decision_function(X), dtype=np.float64)

    def _persist(self, info):
        from . import persist

        arrays = self.model_.arrays if isinstance(self.model_, persist.TreeEnsemble) else \
            persist.tree_arrays(self.model_)
        config = self._config(info)
        config["fitted"].update(n_features_in=int(self.n_features_in_),
                                feature_names=[str(n) for n in self.feature_names_],
                                n_trees=int(arrays["tree_ptr"].shape[0] - 1))
        return config, {"trees.npz": lambda fp: np.savez(fp, **arrays)}

    @classmethod
    def _restore(cls, cfg, path, device=None):
        import os

        from . import persist

        det = cls(**_check_params(cls, cfg["params"], path))
        det._restore_common(cfg, path)
        fp = os.path.join(path, "trees.npz")
        if "trees.npz" not in cfg["files"]:
            raise PygadFileError(f"{path}: the config lists no trees.npz")
        arrays = persist.load_npz(fp)
        ens = persist.TreeEnsemble(arrays, source=fp)
        ens.arrays = arrays  # kept so that a loaded detector can be saved again
        det.model_ = ens
        det.n_features_in_ = int(cfg["fitted"]["n_features_in"])
        det.feature_names_ = [str(n) for n in cfg["fitted"]["feature_names"]]
        if ens.n_features != det.n_features_in_:
            raise PygadFileError(f"{fp}: trees over {ens.n_features} features, the config says {det.n_features_in_}")
        return det


class FeatureOnlyDetector(TreeDetector):
    """Baseline without the graph.

    The same gradient-boosted trees on the target nodes' own features (the archive's ``x``;
    for archives without features, the derived structural ones, which do carry degree
    information; see ``graph.features_derived``).

    Args:
        max_iter: maximum number of boosting rounds (trees).
        learning_rate: shrinkage of each tree's contribution.
        max_leaf_nodes: leaves per tree.
        min_samples_leaf: smallest number of training nodes in a leaf.
        l2_regularization: L2 penalty on the leaf values.
        class_weight: ``"balanced"`` weighs anomalies by the class ratio; None weighs every
            node alike.
        early_stopping: stop adding trees when the validation log-loss has not improved for
            ``n_iter_no_change`` rounds.
        n_iter_no_change: patience of ``early_stopping``, in rounds.
        n_threads: OpenMP threads of the boosting (None: as :class:`TreeDetector`).
        target: node type to score (default: the labelled one).
        device: accepted for the common detector contract; trees run on the CPU.
        random_state: seed of the boosting.
        verbose: print a line per fit.
    """

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
        num_layers: HGT layers, i.e. how many hops of the graph each node's score sees.
        heads: attention heads per HGT layer.
        dropout: dropout probability in the encoder and the head.
        lr: learning rate (AdamW).
        weight_decay: weight decay (AdamW).
        epochs: maximum training epochs.
        patience: epochs without a better validation AP before training stops.
        class_weight: ``"balanced"`` weighs anomalies by #normal / #anomalous in training;
            None weighs every node alike.
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

    Examples:
        >>> from pygad.datasets import load
        >>> from pygad.evaluation import stratified_split
        >>> from pygad.models import GNNDetector
        >>> graph = load("books")
        >>> train, val, test = stratified_split(graph.y["node"], seed=0)
        >>> det = GNNDetector(epochs=50, random_state=0, verbose=False).fit(graph, train, val)
        >>> scores = det.decision_function(graph)     # one logit per node, higher = more anomalous
        >>> kept = det.best_epoch_                    # the epoch of the best validation AP
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
        """Train the encoder and head on the labelled training nodes of the target type.

        Args:
            graph: the graph.
            train_mask: boolean mask (or indices) of the training nodes; needs both classes.
            val_mask: validation nodes for early stopping and the decision threshold (optional;
                without it the lowest training loss picks the epoch).

        Returns:
            self
        """
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
        x_dict, ei_dict = self._inputs(self._conform(graph))
        with torch.no_grad():
            return self.model_(x_dict, ei_dict, self.target_).cpu().numpy().astype(np.float64)

    def _persist(self, info):
        import torch

        config = self._config(info)
        types = list(self.scaler_)
        config["params"]["distributed"] = False
        config["fitted"].update(
            metadata=[list(self.metadata_[0]), [list(et) for et in self.metadata_[1]]],
            in_channels={t: int(v) for t, v in self.in_channels_.items()}, scaler_types=types,
            best_epoch=int(self.best_epoch_), best_val_ap=self.best_val_ap_)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        arrays = {}
        for i, t in enumerate(types):
            arrays[f"mean_{i}"], arrays[f"scale_{i}"] = self.scaler_[t]
        return config, {"weights.pt": lambda fp: torch.save(state, fp),
                        "arrays.npz": lambda fp: np.savez(fp, **arrays)}

    @classmethod
    def _restore(cls, cfg, path, device=None):
        import os

        from . import persist

        params = _check_params(cls, cfg["params"], path)
        params["distributed"] = False
        if device is not None:
            params["device"] = device
        det = cls(**params)
        det._restore_common(cfg, path)
        f = cfg["fitted"]
        nts, ets = f["metadata"]
        det.metadata_ = ([str(t) for t in nts], [tuple(str(p) for p in et) for et in ets])
        det.in_channels_ = {str(t): int(v) for t, v in f["in_channels"].items()}
        det.best_epoch_ = int(f["best_epoch"])
        det.best_val_ap_ = None if f["best_val_ap"] is None else float(f["best_val_ap"])
        for name in ("weights.pt", "arrays.npz"):
            if name not in cfg["files"]:
                raise PygadFileError(f"{path}: the config lists no {name}")
        arrays = persist.load_npz(os.path.join(path, "arrays.npz"))
        det.scaler_ = {}
        for i, t in enumerate(f["scaler_types"]):
            mu, sd = arrays[f"mean_{i}"].astype(np.float32), arrays[f"scale_{i}"].astype(np.float32)
            if mu.shape != (det.in_channels_[t],) or sd.shape != mu.shape:
                raise PygadFileError(f"{path}: scaler of node type {t!r} does not match its {det.in_channels_[t]} "
                                     "input channels")
            det.scaler_[str(t)] = (mu, sd)
        fp = os.path.join(path, "weights.pt")
        state = persist.load_state_dict(fp)
        net = det._build()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PygadFileError(f"{fp}: the weights do not fit the model the config describes "
                                 f"({' '.join(str(exc).split())[:300]})") from None
        det.model_ = net.to(det._torch_device()).eval()
        return det


_DETECTOR_CLASSES = {"TreeDetector": TreeDetector, "FeatureOnlyDetector": FeatureOnlyDetector,
                     "GNNDetector": GNNDetector}


def load_detector(path, device: str | None = None):
    """Load any detector saved with ``save(path)``.

    Any detector saved with ``save(path)`` (a :class:`TreeDetector`, :class:`FeatureOnlyDetector`
    or :class:`GNNDetector`); ``device`` moves a GNN (default: the device it was fitted on).

    Raises:
        PygadFileError: see :meth:`TreeDetector.load`.
    """
    return _Detector.load(path, device)


__all__ = ["GNNDetector", "TreeDetector", "FeatureOnlyDetector", "neighbor_features", "load_detector"]
