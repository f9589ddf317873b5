"""The evaluation harness behind ``pygad evaluate``: splits, the seeds loop, the table, the JSON.

For each seed: take the split (the archive's stored masks, split ``K``, when it has them;
otherwise a stratified 40/20/40 train/val/test split drawn with that seed), optionally
augment the training graph, fit the detector on train (early stopping on val), score the
test nodes and compute AUC, AP and Recall@k (:mod:`pygad.metrics`).

Plug-in points:

* :data:`DETECTORS`: name -> factory ``(seed, device, verbose, **kwargs) -> detector``.
* :data:`AUGMENTERS`: name -> factory ``(seed) -> augmenter or None``; an augmenter has
  ``augment(graph, train_mask) -> (graph, train_mask)``. It may append synthetic nodes of the
  target type *after* the original ones (it must not reorder or relabel those, nor touch
  validation/test nodes); the harness pads the validation mask with False and scores only
  the original nodes. ``"none"`` is the identity. Register more with
  :func:`register_augmenter`.

This module imports only NumPy at import time; torch and the detectors load on first use.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Callable, Dict

import numpy as np

from .metrics import evaluate as _metrics

METRICS = ("auc", "ap", "rec_at_k")
METRIC_LABELS = {"auc": "AUC", "ap": "AP", "rec_at_k": "Rec@k"}
SPLIT_RATIOS = (0.4, 0.2, 0.4)


# ---- registries ------------------------------------------------------------------------------
def _gnn(seed, device="cpu", verbose=True, **kw):
    from .models import GNNDetector
    return GNNDetector(random_state=seed, device=device, verbose=verbose, **kw)


def _trees(seed, device="cpu", verbose=True, **kw):
    from .models import TreeDetector
    return TreeDetector(random_state=seed, device=device, **kw)


def _feature(seed, device="cpu", verbose=True, **kw):
    from .models import FeatureOnlyDetector
    return FeatureOnlyDetector(random_state=seed, device=device, **kw)


#: detector name -> factory(seed, device=..., verbose=..., **kwargs)
DETECTORS: Dict[str, Callable[..., Any]] = {"gnn": _gnn, "trees": _trees, "feature": _feature}

#: augmenter name -> factory(seed, **settings) returning an object with augment(graph, train_mask),
#: or None; settings (e.g. ``ratio``) are passed only when a caller gives some
AUGMENTERS: Dict[str, Callable[[int], Any]] = {"none": lambda seed: None}


def register_augmenter(name: str, factory: Callable[[int], Any]) -> None:
    """Make ``--augment NAME`` available: ``factory(seed)`` returns an augmenter (or None); it
    must also accept keyword settings if it is to be used with ``augment_kwargs``."""
    AUGMENTERS[name] = factory


def _model_augmenter(name: str) -> Callable[[int], Any]:  # pygad.models.augment (torch loads on first use)
    def factory(seed, **settings):
        from .models.augment import make_augmenter as _make
        return _make(name, random_state=seed, **settings)
    return factory


for _name in ("diffusion", "vae", "oversample", "smote", "mixup"):
    register_augmenter(_name, _model_augmenter(_name))


def make_detector(name: str, seed: int, device: str = "cpu", verbose: bool = True, **kwargs):
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](seed, device=device, verbose=verbose, **kwargs)


def make_augmenter(name: str, seed: int, **settings):
    if name not in AUGMENTERS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {sorted(AUGMENTERS)}")
    if not settings:
        return AUGMENTERS[name](seed)
    if name == "none":
        raise ValueError(f"augmenter settings {sorted(settings)} given without an augmentation (augment='none')")
    return AUGMENTERS[name](seed, **settings)


# ---- splits ----------------------------------------------------------------------------------
def stratified_split(y: np.ndarray, seed: int, ratios=SPLIT_RATIOS) -> tuple:
    """Boolean (train, val, test) masks over the labelled nodes (``y >= 0``), stratified by label."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    masks = [np.zeros(n, dtype=bool) for _ in range(3)]
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        m = idx.shape[0]
        n_tr = int(round(ratios[0] * m))
        n_va = int(round(ratios[1] * m))
        if c == 1 and m >= 3:  # keep at least one anomaly in every part
            n_tr, n_va = max(n_tr, 1), max(n_va, 1)
            n_tr = min(n_tr, m - 2)
            n_va = min(n_va, m - n_tr - 1)
        masks[0][idx[:n_tr]] = True
        masks[1][idx[n_tr:n_tr + n_va]] = True
        masks[2][idx[n_tr + n_va:]] = True
    return tuple(masks)


def get_split(graph, target: str, seed: int, split: int | None = None) -> tuple:
    """(train, val, test) boolean masks over the labelled target nodes, and a description.

    The graph's stored masks (split ``split``, default 0) when it has them; otherwise a
    stratified 40/20/40 split drawn with ``seed``. Raises ValueError for a split index the graph
    lacks, and for a training or test part without anomalies.
    """
    y = graph.y[target]
    labelled = y >= 0
    k = graph.num_splits(target)
    if k:
        kk = 0 if split is None else int(split)
        tr, va, te = graph.split(target, kk)
        tr, te = tr & labelled, te & labelled
        va = None if va is None else va & labelled
        how = f"stored split {kk} of {k}"
    else:
        if split not in (None, 0):
            raise ValueError(f"--split {split}: the graph has no stored split masks (only split 0, the "
                             "stratified 40/20/40 split drawn per seed, exists)")
        tr, va, te = stratified_split(y, seed)
        how = "stratified 40/20/40 per seed"
    for name, m in (("training", tr), ("test", te)):
        pos = int((y[m] == 1).sum())
        if pos == 0:
            raise ValueError(f"the {name} split has no anomalies ({int(m.sum())} labelled nodes, 0 anomalous); "
                             "choose another split or dataset")
    return tr, va, te, how


# ---- the loop --------------------------------------------------------------------------------
def _summary(runs: list) -> tuple:
    mean = {m: float(np.mean([r[m] for r in runs])) for m in METRICS}
    std = {m: float(np.std([r[m] for r in runs], ddof=1)) if len(runs) > 1 else 0.0 for m in METRICS}
    return mean, std


def run_evaluation(data, detector: str = "gnn", augment: str = "none", seeds: int = 5, split: int | None = None,
                   target: str | None = None, device: str = "cpu", detector_kwargs: dict | None = None,
                   verbose: bool = True, log=None, augment_kwargs: dict | None = None) -> dict:
    """Train and test ``detector`` over ``seeds`` seeds (0..seeds-1).

    Args:
        data: a :class:`~pygad.data.HeteroGraph`, a dataset name or an ``.npz`` path.
        detector: a key of :data:`DETECTORS` (``gnn``, ``trees``, ``feature``).
        augment: a key of :data:`AUGMENTERS` (``none``, ``diffusion``, ``vae``, ``oversample``,
            ``smote``, ``mixup``).
        seeds: number of seeds.
        split: stored split index (default: the first), see :func:`get_split`.
        target: node type to detect on (default: the labelled one).
        device: torch device for the GNN.
        detector_kwargs: extra detector arguments (e.g. ``{"epochs": 50}``).
        augment_kwargs: extra augmenter arguments (e.g. ``{"ratio": 3}``).
        verbose: progress bars (on a terminal) and per-seed lines on ``log``.
        log: a text stream for per-seed lines (default: stderr when verbose).

    Returns:
        ``{"runs": [{"seed", "auc", "ap", "rec_at_k"}...], "mean": {...}, "std": {...},
        "config": {...}}`` with metrics as fractions in [0, 1] (std: sample std, ddof=1).
    """
    from .data.graph import HeteroGraph

    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {sorted(DETECTORS)}")
    if augment not in AUGMENTERS:
        raise ValueError(f"unknown augmentation {augment!r}; choose one of {sorted(AUGMENTERS)}")
    if int(seeds) < 1:
        raise ValueError(f"'seeds' must be >= 1, got {seeds}")
    if isinstance(data, HeteroGraph):
        graph = data
    else:
        from .datasets import load
        graph = load(str(data))
    tgt = graph.target_type(target)
    log = log if log is not None else (sys.stderr if verbose else None)
    y = graph.y[tgt]
    n_orig = graph.num_nodes[tgt]
    runs, how = [], ""
    try:
        from tqdm.auto import tqdm
        seed_iter = tqdm(range(int(seeds)), desc=f"{detector} on {graph.name}", leave=False,
                         disable=not verbose or not sys.stderr.isatty())
    except ImportError:  # pragma: no cover
        seed_iter = range(int(seeds))
    for seed in seed_iter:
        tr, va, te, how = get_split(graph, tgt, seed, split)
        det = make_detector(detector, seed, device=device, verbose=verbose, **(detector_kwargs or {}))
        g_fit, tr_fit, va_fit = graph, tr, va
        aug = make_augmenter(augment, seed, **(augment_kwargs or {}))
        if aug is not None:
            g_fit, tr_fit = aug.augment(graph, tr)
            n_new = g_fit.num_nodes[tgt]
            if n_new < n_orig or tr_fit.shape[0] != n_new:
                raise ValueError(f"augmenter {augment!r} must return a graph with >= {n_orig} {tgt!r} nodes and a "
                                 f"train mask of its length; got {n_new} nodes and a mask of {tr_fit.shape[0]}")
            if va is not None and n_new > n_orig:
                va_fit = np.concatenate([va, np.zeros(n_new - n_orig, dtype=bool)])
        det.fit(g_fit, tr_fit, va_fit)
        scores = np.asarray(det.decision_function(g_fit))[:n_orig]
        m = _metrics(y[te], scores[te])
        runs.append({"seed": seed, **m})
        if log is not None:
            print(f"  seed {seed}: " + "  ".join(f"{METRIC_LABELS[k]} {m[k]:.4f}" for k in METRICS), file=log,
                  flush=True)
    mean, std = _summary(runs)
    config = {"data": graph.name, "detector": detector, "augment": augment, "seeds": int(seeds), "split": how,
              "target": tgt, "num_nodes": int(n_orig), "num_anomalies": int((y == 1).sum()),
              "features_derived": sorted(graph.features_derived), "detector_kwargs": detector_kwargs or {},
              "augment_kwargs": augment_kwargs or {}}
    return {"runs": runs, "mean": mean, "std": std, "config": config}


def format_table(result: dict) -> str:
    """Per-seed rows and the mean ± std line of a :func:`run_evaluation` result."""
    c = result.get("config", {})
    head = (f"{c.get('data', '?')}: detector={c.get('detector', '?')} augment={c.get('augment', '?')} "
            f"seeds={len(result['runs'])} split={c.get('split', '?')}")
    if c.get("features_derived"):
        head += f"\n(no node features in the archive for {c['features_derived']}: derived structural features used)"
    w = 17
    lines = [head, f"{'seed':<8}" + "".join(f"{METRIC_LABELS[m]:>{w}}" for m in METRICS)]
    for r in result["runs"]:
        lines.append(f"{r['seed']:<8}" + "".join(f"{r[m]:>{w}.4f}" for m in METRICS))
    lines.append(f"{'mean±std':<8}" + "".join(f"{result['mean'][m]:>{w - 9}.4f} ± {result['std'][m]:.4f}"
                                               for m in METRICS))
    return "\n".join(lines)


def write_json(result: dict, path) -> None:
    """Write a result as JSON (metrics as fractions)."""
    def clean(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, np.generic):
            return o.item()
        return o

    with open(path, "w") as f:
        json.dump(clean(result), f, indent=2)
        f.write("\n")


__all__ = ["AUGMENTERS", "DETECTORS", "register_augmenter", "make_detector", "make_augmenter", "stratified_split",
           "get_split", "run_evaluation", "format_table", "write_json", "METRICS"]
