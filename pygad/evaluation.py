"""The evaluation harness behind ``pygad evaluate`` and ``pygad demo``.

Splits and labelling protocols, the seeds loop, the comparison of augmenters, tables, JSON and
plots.

For each seed: take the split (the archive's stored masks, split ``K``, when it has them;
otherwise a stratified 40/20/40 train/val/test split drawn with that seed), optionally
augment the training graph, fit the detector on train (early stopping on val), score the
test nodes and compute AUC, AP and Recall@k (:mod:`pygad.metrics`).

* :func:`run_evaluation`: one detector and one augmentation over several seeds.
* :func:`compare`: several augmentations (``none``, the baselines, ``vae``, ``diffusion``)
  with one detector, each through :func:`run_evaluation`; :func:`format_comparison` prints
  it and :func:`save_plots` draws it (the demo).

Detectors and augmenters are looked up by name in :mod:`pygad.registry` (re-exported here):
an augmenter may append synthetic nodes of the target type *after* the original ones; the
harness pads the validation mask with False and scores only the original nodes.

This module imports only NumPy at import time; torch and the detectors load on first use.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from .metrics import evaluate as _metrics
from .registry import (AUGMENTERS, BASELINE_AUGMENTERS, DETECTORS, GENERATIVE_AUGMENTERS, make_augmenter,
                       make_detector, register_augmenter, register_detector)

METRICS = ("auc", "ap", "rec_at_k")
METRIC_LABELS = {"auc": "AUC", "ap": "AP", "rec_at_k": "Rec@k"}
SPLIT_RATIOS = (0.4, 0.2, 0.4)


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


def few_label_split(y: np.ndarray, seed: int, train_anomalies: int | None = None, train_normals: int | None = None,
                    label_rate: float | None = None) -> tuple:
    """Boolean (train, val, test) masks of the few-label protocols, drawn with ``seed``.

    Either fixed counts (GADBench's semi-supervised setting: ``train_anomalies=20,
    train_normals=80``) or a stratified fraction ``label_rate`` of each class of the labelled
    nodes (``y >= 0``) for training; validation is drawn the same way with the same counts (as
    small as training: a fraud team starting out has no large validation set either); test is
    every other labelled node.

    Args:
        y: labels, 1 anomaly, 0 normal, -1 unlabelled.
        seed: seeds the draw.
        train_anomalies: K labelled anomalies for training (and K for validation).
        train_normals: M labelled normal nodes for training (and M for validation).
        label_rate: instead of counts: the fraction R of each class for training (at least one
            anomaly), the same counts for validation.

    Returns:
        ``(train, val, test)`` boolean masks of ``y``'s length, disjoint.

    Raises:
        PygadValueError: for counts the data lack (at least one anomaly and one normal node must
            remain for test), naming the flag (``--train-anomalies``, ``--train-normals``,
            ``--label-rate``).

    Examples:
        >>> y = np.r_[np.zeros(200, int), np.ones(50, int)]
        >>> tr, va, te = few_label_split(y, 0, train_anomalies=20, train_normals=80)
        >>> int(tr.sum()), int(va.sum()), int((y[te] == 1).sum())
        (100, 100, 10)
    """
    from .errors import PygadValueError

    y = np.asarray(y)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if label_rate is not None:
        if train_anomalies is not None or train_normals is not None:
            raise PygadValueError("--label-rate excludes --train-anomalies/--train-normals: give one protocol")
        r = float(label_rate)
        if not (math.isfinite(r) and 0.0 < r < 0.5):
            raise PygadValueError(f"--label-rate must be in (0, 0.5) (the same count is drawn for validation), "
                                  f"got {label_rate!r}")
        k, m = max(1, int(round(r * n_pos))), max(1, int(round(r * n_neg)))
        flags = ("--label-rate", "--label-rate")
    else:
        if train_anomalies is None or train_normals is None:
            missing = "--train-normals" if train_normals is None else "--train-anomalies"
            raise PygadValueError(f"the few-label protocol needs both --train-anomalies and --train-normals "
                                  f"({missing} is missing)")
        for flag, v in (("--train-anomalies", train_anomalies), ("--train-normals", train_normals)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise PygadValueError(f"{flag} must be an integer >= 1, got {v!r}")
        k, m = int(train_anomalies), int(train_normals)
        flags = ("--train-anomalies", "--train-normals")
    for flag, cnt, have, what in ((flags[0], k, n_pos, "anomalies"), (flags[1], m, n_neg, "normal nodes")):
        if 2 * cnt + 1 > have:
            raise PygadValueError(f"{flag}: {cnt} {what} for training and {cnt} for validation need at least "
                                  f"{2 * cnt + 1} labelled {what} (one left for test); the data have {have}")
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    masks = [np.zeros(n, dtype=bool) for _ in range(3)]
    for c, cnt in ((0, m), (1, k)):
        idx = rng.permutation(np.flatnonzero(y == c))
        masks[0][idx[:cnt]] = True
        masks[1][idx[cnt:2 * cnt]] = True
        masks[2][idx[2 * cnt:]] = True
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
                   verbose: bool = True, log=None, augment_kwargs: dict | None = None, first_seed: int = 0,
                   details: bool = False, keep_first: bool = False, train_anomalies: int | None = None,
                   train_normals: int | None = None, label_rate: float | None = None) -> dict:
    """Train and test ``detector`` over ``seeds`` seeds (``first_seed .. first_seed + seeds - 1``).

    Protocols: ``full`` (default: the stored split or stratified 40/20/40), ``few-label``
    (``train_anomalies`` K and ``train_normals`` M labelled nodes for training, as many for
    validation, test = the other labelled nodes; GADBench's semi-supervised setting is K=20,
    M=80) and ``label-rate`` (a stratified fraction ``label_rate`` for training, the same counts
    for validation); see :func:`few_label_split`. The few-label draws ignore stored masks and
    are redrawn per seed; the result's ``config["protocol"]`` records which was used.

    ``augment="auto"`` fits the detector with and without the diffusion augmenter and keeps the
    option with the higher validation AP (see :class:`pygad.models.auto_augment.AutoAugmenter`);
    each run records the choice under ``"augment_chosen"``.

    Args:
        data: a :class:`~pygad.data.HeteroGraph`, a dataset name or an ``.npz`` path.
        detector: a key of :data:`DETECTORS` (``gnn``, ``trees``, ``feature``).
        augment: a key of :data:`AUGMENTERS` (``none``, ``diffusion``, ``vae``, ``oversample``,
            ``smote``, ``mixup``).
        seeds: number of seeds; each seeds the split, the augmenter and the detector.
        split: stored split index (default: the first), see :func:`get_split`.
        target: node type to detect on (default: the labelled one).
        device: torch device for the GNN.
        detector_kwargs: extra detector arguments (e.g. ``{"epochs": 50}``).
        augment_kwargs: extra augmenter arguments (e.g. ``{"ratio": 3}``).
        verbose: progress bars (on a terminal) and per-seed lines on ``log``.
        log: a text stream for per-seed lines (default: stderr when verbose).
        first_seed: the first seed (e.g. 100 to tune settings away from the reported seeds).
        details: also record per run the synthetic node count (``n_synthetic``) and the
            seconds the augmentation and the detector took (``seconds``).
        keep_first: also return, under ``"first"``, the first seed's test labels and scores,
            its training mask and its fitted augmenter (for plots).
        train_anomalies: few-label protocol: labelled anomalies for training (and validation).
        train_normals: few-label protocol: labelled normal nodes for training (and validation).
        label_rate: label-rate protocol: stratified fraction of the labelled nodes for training.

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
    if isinstance(first_seed, bool) or not isinstance(first_seed, (int, np.integer)) or first_seed < 0:
        raise ValueError(f"'first_seed' must be an integer >= 0, got {first_seed!r}")
    if isinstance(data, HeteroGraph):
        graph = data
    else:
        from .datasets import load
        graph = load(str(data))
    tgt = graph.target_type(target)
    log = log if log is not None else (sys.stderr if verbose else None)
    y = graph.y[tgt]
    few = train_anomalies is not None or train_normals is not None or label_rate is not None
    if few:
        from .errors import PygadValueError
        if split not in (None, 0):
            raise PygadValueError(f"--split {split} picks a stored split; the few-label protocols draw their own "
                                  "splits per seed (drop --split)")
        # validates the counts before any seed runs (raises naming the flag)
        tr0, va0, _ = few_label_split(y, int(first_seed), train_anomalies, train_normals, label_rate)
        if label_rate is not None:
            protocol = {"kind": "label-rate", "label_rate": float(label_rate)}
        else:
            protocol = {"kind": "few-label"}
        protocol.update(train_anomalies=int((y[tr0] == 1).sum()), train_normals=int((y[tr0] == 0).sum()),
                        val_anomalies=int((y[va0] == 1).sum()), val_normals=int((y[va0] == 0).sum()))
    else:
        protocol = {"kind": "full"}
    n_orig = graph.num_nodes[tgt]
    runs, how, first = [], "", {}
    seed_range = range(int(first_seed), int(first_seed) + int(seeds))
    try:
        from tqdm.auto import tqdm
        seed_iter = tqdm(seed_range, desc=f"{detector} on {graph.name}", leave=False,
                         disable=not verbose or not sys.stderr.isatty())
    except ImportError:  # pragma: no cover
        seed_iter = seed_range
    for seed in seed_iter:
        t0 = time.perf_counter()
        if few:
            tr, va, te = few_label_split(y, seed, train_anomalies, train_normals, label_rate)
            how = protocol["kind"] + " per seed"
        else:
            tr, va, te, how = get_split(graph, tgt, seed, split)
        det = make_detector(detector, seed, device=device, verbose=verbose, **(detector_kwargs or {}))
        g_fit, tr_fit, va_fit = graph, tr, va
        aug = make_augmenter(augment, seed, **(augment_kwargs or {}))
        choice = None
        if aug is not None and hasattr(aug, "choose"):
            # the auto mode: fits the detector itself (with and without augmentation) on this split
            def new_detector():
                return make_detector(detector, seed, device=device, verbose=verbose, **(detector_kwargs or {}))
            det, g_fit, choice = aug.choose(graph, tr, va, new_detector, target=tgt)
        elif aug is not None:
            g_fit, tr_fit = aug.augment(graph, tr)
            n_new = g_fit.num_nodes[tgt]
            if n_new < n_orig or tr_fit.shape[0] != n_new:
                raise ValueError(f"augmenter {augment!r} must return a graph with >= {n_orig} {tgt!r} nodes and a "
                                 f"train mask of its length; got {n_new} nodes and a mask of {tr_fit.shape[0]}")
            if va is not None and n_new > n_orig:
                va_fit = np.concatenate([va, np.zeros(n_new - n_orig, dtype=bool)])
        if choice is None:
            det.fit(g_fit, tr_fit, va_fit)
        scores = np.asarray(det.decision_function(g_fit))[:n_orig]
        m = _metrics(y[te], scores[te])
        run = {"seed": seed, **m}
        if choice is not None:
            run.update(augment_chosen=choice["chosen"], val_ap=choice["val_ap"])
        if details:
            run.update(n_synthetic=int(g_fit.num_nodes[tgt] - n_orig), seconds=time.perf_counter() - t0)
        runs.append(run)
        if keep_first and not first:
            first = {"y_test": y[te].copy(), "scores_test": scores[te].copy(), "train_mask": tr, "augmenter": aug}
        if log is not None:
            cells = "  ".join(f"{METRIC_LABELS[k]} {m[k]:.4f}" for k in METRICS)
            if choice is not None:
                cells += f"  (auto: {choice['chosen']}; val AP " + ", ".join(
                    f"{k} {v:.4f}" for k, v in choice["val_ap"].items()) + ")"
            if details:
                line = f"  seed {seed} {augment:<14}{cells}  (+{run['n_synthetic']} nodes, {run['seconds']:.1f}s)"
            else:
                line = f"  seed {seed}: {cells}"
            print(line, file=log, flush=True)
        del aug
    mean, std = _summary(runs)
    config = {"data": graph.name, "detector": detector, "augment": augment, "seeds": int(seeds), "split": how,
              "target": tgt, "num_nodes": int(n_orig), "num_anomalies": int((y == 1).sum()),
              "features_derived": sorted(graph.features_derived), "detector_kwargs": detector_kwargs or {},
              "augment_kwargs": augment_kwargs or {}, "protocol": protocol}
    if first_seed:
        config["first_seed"] = int(first_seed)
    out = {"runs": runs, "mean": mean, "std": std, "config": config}
    if keep_first:
        out["first"] = first
    return out


# ---- several augmentations side by side (the demo) -------------------------------------------
#: the augmentations the demo compares, in its table's order
DEMO_METHODS = ("none",) + BASELINE_AUGMENTERS + GENERATIVE_AUGMENTERS


def compare(graph, methods: Sequence[str] = DEMO_METHODS, seeds: int = 3, detector: str = "trees",
            detector_kwargs: Optional[dict] = None, augmenter_kwargs: Optional[dict] = None, split: Optional[int] = None,
            keep_scores: bool = True, verbose: bool = True, log=None, baseline_kwargs: Optional[dict] = None,
            first_seed: int = 0, train_anomalies: Optional[int] = None, train_normals: Optional[int] = None,
            label_rate: Optional[float] = None) -> dict:
    """Detector quality with each augmentation over ``seeds`` seeds, each through :func:`run_evaluation`.

    Args:
        graph: a :class:`~pygad.data.HeteroGraph`.
        methods: keys of :data:`AUGMENTERS` (``none`` trains on the graph as it is).
        seeds: number of seeds, ``first_seed .. first_seed + seeds - 1`` (they seed the split,
            the augmenters and the detector), so settings can be searched on other seeds than
            the reported ones.
        detector: a key of :data:`DETECTORS`.
        detector_kwargs: extra detector arguments.
        augmenter_kwargs: settings of the generative augmenters ``vae`` and ``diffusion``.
        baseline_kwargs: settings of the other augmenters (``oversample``, ``smote``, ``mixup``;
            e.g. ``{"ratio": 3}`` gives them the count of a diffusion run with ``ratio=3``).
        split: stored split index, see :func:`get_split`.
        keep_scores: keep the first seed's test scores (PR curves) and latents (PCA plot).
        verbose: progress bars and per-seed lines on ``log``.
        log: a text stream for per-seed lines (default: stderr).
        first_seed: the first seed.
        train_anomalies: few-label protocol: labelled anomalies for training (and validation),
            as in :func:`run_evaluation`.
        train_normals: few-label protocol: labelled normal nodes for training (and validation).
        label_rate: label-rate protocol: the stratified fraction of labelled nodes for training
            (the same count for validation).

    Returns:
        ``{"runs": {method: [{"seed", "auc", "ap", "rec_at_k", "n_synthetic", "seconds"}]},
        "mean": {method: {metric}}, "std": ..., "scores": {method: (y_test, scores_test)} (first
        seed), "latents": {"real": z, "real_y": y, "synthetic": z_syn} (first seed, diffusion),
        "config": {...}}``.
    """
    for m in methods:
        if m not in AUGMENTERS:
            raise ValueError(f"unknown method {m!r}; choose from {tuple(AUGMENTERS)}")
    if isinstance(first_seed, bool) or not isinstance(first_seed, (int, np.integer)) or first_seed < 0:
        raise ValueError(f"'first_seed' must be an integer >= 0, got {first_seed!r}")
    tgt = graph.target_type()
    akw = dict(augmenter_kwargs or {})
    bkw = dict(baseline_kwargs or {})
    runs, mean, std, scores_out, latents, how, protocol = {}, {}, {}, {}, {}, "", {}
    for m in methods:
        if m == "none":
            kw = {}
        elif m in GENERATIVE_AUGMENTERS or m == "auto":
            kw = dict(akw, verbose=verbose)
        else:
            kw = dict(bkw)
        r = run_evaluation(graph, detector=detector, augment=m, seeds=seeds, split=split,
                           detector_kwargs=detector_kwargs, verbose=verbose, log=log if verbose else None,
                           augment_kwargs=kw, first_seed=first_seed, details=True, keep_first=keep_scores,
                           train_anomalies=train_anomalies, train_normals=train_normals, label_rate=label_rate)
        runs[m], mean[m], std[m], how = r["runs"], r["mean"], r["std"], r["config"]["split"]
        protocol = r["config"]["protocol"]
        first = r.get("first")
        if keep_scores and first:
            scores_out[m] = (first["y_test"], first["scores_test"])
            aug = first["augmenter"]
            if m == "diffusion" and aug is not None:
                import torch
                y = graph.y[tgt]
                trn = np.flatnonzero(first["train_mask"] & (y >= 0))
                # the same draw as the augmentation's (sampling is seeded by the augmenter's seed)
                syn = aug.sample(aug.default_count(), label=1)
                latents = {"real": aug.z_real_[tgt][torch.from_numpy(trn)].cpu().numpy(), "real_y": y[trn].copy(),
                           "synthetic": syn.z}
    config = {"data": graph.name, "detector": detector, "seeds": int(seeds), "split": how, "target": tgt,
              "methods": list(methods), "augmenter_kwargs": akw, "baseline_kwargs": bkw,
              "detector_kwargs": detector_kwargs or {}, "first_seed": int(first_seed), "protocol": protocol}
    return {"runs": runs, "mean": mean, "std": std, "scores": scores_out, "latents": latents, "config": config}


def format_comparison(result: dict) -> str:
    """The mean ± std table of a :func:`compare` result; the best mean per metric is starred."""
    c = result["config"]
    methods = list(result["mean"])
    best = {k: max(result["mean"][m][k] for m in methods) for k in METRICS}
    head = f"{c['data']}: detector={c['detector']} seeds={c['seeds']} split={c['split']}"
    for key, name in (("augmenter_kwargs", "augmenter"), ("baseline_kwargs", "baselines")):
        if c.get(key):  # settings that change the comparison (e.g. ratio) belong in its header
            head += f" {name}=" + ",".join(f"{k}:{v}" for k, v in c[key].items())
    lines = [head,
             f"{'augmentation':<14}" + "".join(f"{METRIC_LABELS[k]:>18}" for k in METRICS)]
    for m in methods:
        cells = []
        for k in METRICS:
            mu, sd = result["mean"][m][k], result["std"][m][k]
            cells.append(f"{mu:.4f} ± {sd:.4f}{'*' if mu == best[k] else ' '}".rjust(18))
        lines.append(f"{m:<14}" + "".join(cells))
    lines.append("(* best mean per metric; metrics on the real test nodes only)")
    return "\n".join(lines)


def _save_figure(fig, out_dir, name: str) -> str:
    import matplotlib.pyplot as plt
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_plots(result: dict, out_dir) -> list:
    """Plots of a :func:`compare` result; returns the written paths.

    ``pr_curves.png``: precision-recall of every method on the first seed; ``latents_pca.png``:
    2-D PCA of real versus synthetic latents.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(6, 5))
    for m, (yt, s) in result["scores"].items():
        order = np.argsort(-s, kind="mergesort")
        yy = yt[order].astype(bool)
        tp = np.cumsum(yy)
        prec = tp / np.arange(1, yy.size + 1)
        rec = tp / max(1, yy.sum())
        ap = result["runs"][m][0]["ap"]
        ax.plot(np.r_[0, rec], np.r_[1, prec], label=f"{m} (AP {ap:.3f})", lw=1.5)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{result['config']['data']}: precision-recall (seed {result['config'].get('first_seed', 0)}, test nodes)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    paths.append(_save_figure(fig, out_dir, "pr_curves.png"))
    lat = result.get("latents") or {}
    if lat.get("synthetic") is not None and lat.get("real") is not None:
        zr, yr, zs = lat["real"], lat["real_y"], lat["synthetic"]
        allz = np.concatenate([zr, zs])
        mu = allz.mean(0)
        _, _, vt = np.linalg.svd(zr - zr.mean(0), full_matrices=False)
        pr, ps = (zr - mu) @ vt[:2].T, (zs - mu) @ vt[:2].T
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.scatter(pr[yr == 0, 0], pr[yr == 0, 1], s=5, c="0.7", label="real normal (train)")
        ax.scatter(pr[yr == 1, 0], pr[yr == 1, 1], s=18, c="tab:red", label="real anomaly (train)")
        ax.scatter(ps[:, 0], ps[:, 1], s=18, marker="x", c="tab:blue", label="synthetic anomaly")
        ax.set_title(f"{result['config']['data']}: VAE latents, PCA of the real training nodes")
        ax.legend(fontsize=8)
        paths.append(_save_figure(fig, out_dir, "latents_pca.png"))
    return paths


def format_table(result: dict) -> str:
    """Per-seed rows and the mean ± std line of a :func:`run_evaluation` result."""
    c = result.get("config", {})
    head = (f"{c.get('data', '?')}: detector={c.get('detector', '?')} augment={c.get('augment', '?')} "
            f"seeds={len(result['runs'])} split={c.get('split', '?')}")
    proto = c.get("protocol") or {}
    if proto.get("kind") in ("few-label", "label-rate"):
        head += (f"\nprotocol {proto['kind']}: train {proto['train_anomalies']} anomalies + {proto['train_normals']} "
                 f"normal, validation {proto['val_anomalies']} + {proto['val_normals']}, test = the other labelled nodes")
    if c.get("features_derived"):
        head += f"\n(no node features in the archive for {c['features_derived']}: derived structural features used)"
    w = 17
    lines = [head, f"{'seed':<8}" + "".join(f"{METRIC_LABELS[m]:>{w}}" for m in METRICS)]
    for r in result["runs"]:
        lines.append(f"{r['seed']:<8}" + "".join(f"{r[m]:>{w}.4f}" for m in METRICS)
                     + (f"  (auto: {r['augment_chosen']})" if "augment_chosen" in r else ""))
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


__all__ = ["AUGMENTERS", "DETECTORS", "register_augmenter", "register_detector", "make_detector", "make_augmenter",
           "stratified_split", "few_label_split", "get_split", "run_evaluation", "format_table", "write_json", "METRICS", "DEMO_METHODS",
           "compare", "format_comparison", "save_plots"]
