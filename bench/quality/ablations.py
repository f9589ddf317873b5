"""Ablations of the latent-diffusion augmenter: detector quality per variant over seeds.

Research harness (not part of the package): each variant is a private configuration of
:class:`pygad.models.augment.LatentDiffusionAugmenter` (``_Ablation``) built here, so the
product's constructor holds only user settings. Per seed the split, the augmenters and the
detector are seeded with the seed; the detector is fitted on the augmented training graph and
scored on the real test nodes only (AUC, AP, Recall@k).

Methods:

* ``diffusion``: the augmenter as shipped (anchored edges and features, diffusion latents);
* ``vae``: latents from the VAE posteriors of training anomalies (no diffusion prior);
* ``no_hetero``: one merged node/edge type in the encoder (refits);
* ``no_cond``: no labels anywhere, unconditional sampling (refits);
* ``no_attach``: synthetic nodes linked only among themselves (a disjoint union, as in GODM);
* ``decoded_edges``: edges to real nodes chosen by the structure decoder and decoded mean
  features instead of the latent-nearest training anomaly's;
* reference rows: ``none`` (no augmentation) and the baselines ``oversample``, ``smote``,
  ``mixup``.

``vae``, ``diffusion``, ``no_attach`` and ``decoded_edges`` only sample differently, so they
share one fitted augmenter per seed and their differences isolate the sampling step.

Command (same options as ``bench/bench_augment.py quality``, which runs its augmenter methods
through this module)::

    python -P bench/quality/ablations.py --data books --seeds 5 [--first-seed 0] [--methods ...]
        [--detector trees] [--hops 2] [--max-iter 300] [--vae-epochs E] [--skip-hetero]
        [--augmenter-kwargs JSON] [--baseline-kwargs JSON] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

#: method -> the augmenter's research variant, as keyword arguments of ``_Ablation``
VARIANTS: Dict[str, dict] = {
    "diffusion": {},
    "vae": {"diffusion": False},
    "no_hetero": {"hetero": False},
    "no_cond": {"conditional": False},
    "no_attach": {"attach": False},
    "decoded_edges": {"template_edges": False, "anchor_features": False},
}
BASELINES = ("oversample", "smote", "mixup")
METHODS = ("none",) + BASELINES + tuple(VARIANTS)
ABLATIONS = ("vae", "no_hetero", "no_cond", "no_attach", "decoded_edges")
METRICS = ("auc", "ap", "rec_at_k")
LABELS = {"auc": "AUC", "ap": "AP", "rec_at_k": "Rec@k"}


def ablation(method: str):
    """The augmenter's private configuration for ``method`` (one of :data:`VARIANTS`)."""
    from pygad.models.augment import _Ablation

    return _Ablation(**VARIANTS[method])


def _fit_key(ab) -> tuple:
    """Variants with equal fit fields share one fitted augmenter per seed."""
    return tuple(getattr(ab, f) for f in type(ab).FIT_FIELDS)


def run(graph, methods: Sequence[str] = ("diffusion",) + ABLATIONS, seeds: int = 3, detector: str = "trees",
        detector_kwargs: Optional[dict] = None, augmenter_kwargs: Optional[dict] = None,
        baseline_kwargs: Optional[dict] = None, first_seed: int = 0, split: Optional[int] = None,
        verbose: bool = True, log=sys.stderr) -> dict:
    """Detector quality with each method over seeds ``first_seed .. first_seed + seeds - 1``.

    Args:
        graph: the labelled graph.
        methods: names from :data:`METHODS`.
        seeds: number of seeds.
        detector: ``pygad.evaluation`` detector name.
        detector_kwargs: detector settings.
        augmenter_kwargs: ``LatentDiffusionAugmenter`` settings of every variant.
        baseline_kwargs: settings of ``oversample``/``smote``/``mixup`` (e.g. ``{"ratio": 3}``
            to match a variant run with ``ratio=3``).
        first_seed: first seed.
        split: stored split index of the graph (default: its first, else a stratified split).
        verbose: log a line per run (and show the augmenters' progress bars).
        log: stream of the log lines.

    Returns:
        ``{"runs": {method: [{"seed", "auc", "ap", "rec_at_k", "n_synthetic", "seconds"}]},
        "mean": {method: {metric}}, "std": ..., "config": {...}}``.
    """
    from pygad.evaluation import get_split, make_detector
    from pygad.metrics import evaluate as metrics
    from pygad.models.augment import LatentDiffusionAugmenter, append_nodes
    from pygad.registry import make_augmenter

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {METHODS}")
    tgt = graph.target_type()
    y, n0 = graph.y[tgt], graph.num_nodes[tgt]
    akw, bkw, dkw = dict(augmenter_kwargs or {}), dict(baseline_kwargs or {}), dict(detector_kwargs or {})
    runs: Dict[str, list] = {m: [] for m in methods}
    how = None
    for seed in range(int(first_seed), int(first_seed) + int(seeds)):
        tr, va, te, how = get_split(graph, tgt, seed, split)
        fitted = {}  # fit fields -> the augmenter fitted with them, this seed
        for m in methods:
            t0 = time.perf_counter()
            if m == "none":
                g_fit, tr_fit = graph, tr
            elif m in BASELINES:
                g_fit, tr_fit = make_augmenter(m, random_state=seed, **bkw).augment(graph, tr)
            else:
                ab = ablation(m)
                key = _fit_key(ab)
                if key not in fitted:
                    # one fit for every variant with these fit fields; it trains a diffusion model
                    # if any of them samples one (the VAE is trained first and alone, so posterior
                    # draws from this fit equal those of a fit without diffusion)
                    fit_ab = type(ab)(**dict(zip(type(ab).FIT_FIELDS, key)),
                                      diffusion=any(ablation(v).diffusion for v in methods
                                                    if v in VARIANTS and _fit_key(ablation(v)) == key))
                    fitted[key] = LatentDiffusionAugmenter._configured(
                        fit_ab, random_state=seed, verbose=verbose, **akw).fit(graph, tr)
                aug = fitted[key]
                syn = aug._sample(aug.default_count(), label=1, ablation=ab)
                g_fit, tr_fit = append_nodes(aug.graph_, aug.train_mask_, syn)
            n_new = g_fit.num_nodes[tgt]
            va_fit = va if va is None or n_new == n0 else np.concatenate([va, np.zeros(n_new - n0, bool)])
            det = make_detector(detector, seed, verbose=False, **dkw).fit(g_fit, tr_fit, va_fit)
            s = np.asarray(det.decision_function(g_fit))[:n0]
            r = {"seed": seed, **metrics(y[te], s[te]), "n_synthetic": int(n_new - n0),
                 "seconds": time.perf_counter() - t0}
            runs[m].append(r)
            if verbose and log is not None:
                print(f"  seed {seed} {m:<14}" + "  ".join(f"{LABELS[k]} {r[k]:.4f}" for k in METRICS)
                      + f"  (+{r['n_synthetic']} nodes, {r['seconds']:.1f}s)", file=log, flush=True)
        del fitted
    mean = {m: {k: float(np.mean([r[k] for r in rs])) for k in METRICS} for m, rs in runs.items()}
    std = {m: {k: float(np.std([r[k] for r in rs], ddof=1)) if len(rs) > 1 else 0.0 for k in METRICS}
           for m, rs in runs.items()}
    config = {"data": graph.name, "detector": detector, "seeds": int(seeds), "first_seed": int(first_seed),
              "split": how, "target": tgt, "methods": list(methods), "augmenter_kwargs": akw,
              "baseline_kwargs": bkw, "detector_kwargs": dkw}
    return {"runs": runs, "mean": mean, "std": std, "config": config}


def format_table(result: dict) -> str:
    """The mean ± std table; the best mean per metric is starred."""
    c = result["config"]
    methods = list(result["mean"])
    best = {k: max(result["mean"][m][k] for m in methods) for k in METRICS}
    head = f"{c['data']}: detector={c['detector']} seeds={c['seeds']} (from {c['first_seed']}) split={c['split']}"
    for key, name in (("augmenter_kwargs", "augmenter"), ("baseline_kwargs", "baselines")):
        if c.get(key):
            head += f" {name}=" + ",".join(f"{k}:{v}" for k, v in c[key].items())
    lines = [head, f"{'method':<14}" + "".join(f"{LABELS[k]:>18}" for k in METRICS)]
    for m in methods:
        cells = [f"{result['mean'][m][k]:.4f} ± {result['std'][m][k]:.4f}"
                 f"{'*' if result['mean'][m][k] == best[k] else ' '}".rjust(18) for k in METRICS]
        lines.append(f"{m:<14}" + "".join(cells))
    lines.append("(* best mean per metric; metrics on the real test nodes only)")
    return "\n".join(lines)


DEFAULT_METHODS = ("diffusion",) + ABLATIONS


def add_arguments(p: argparse.ArgumentParser, default_methods: Sequence[str] = DEFAULT_METHODS) -> None:
    """The command-line options (shared with ``bench/bench_augment.py quality``)."""
    p.add_argument("--data", default="books")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds first_seed .. first_seed + seeds - 1 (e.g. 100 for a search away from 0-4)")
    p.add_argument("--detector", default="trees")
    p.add_argument("--hops", type=int, default=2)
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--vae-epochs", type=int, default=None)
    p.add_argument("--methods", nargs="+", default=list(default_methods), choices=METHODS, metavar="METHOD",
                   help=f"methods to run, from {', '.join(METHODS)} (default: {' '.join(default_methods)})")
    p.add_argument("--skip-hetero", action="store_true", help="skip no_hetero (identical on one symmetric relation)")
    p.add_argument("--augmenter-kwargs", default=None,
                   help='JSON of LatentDiffusionAugmenter settings, e.g. \'{"guidance": 1.5, "ratio": 2}\'')
    p.add_argument("--baseline-kwargs", default=None,
                   help='JSON of settings for oversample/smote/mixup, e.g. \'{"ratio": 3}\'')
    p.add_argument("--json", default=None, help="write runs, means, stds and the config here")


def main_args(a: argparse.Namespace) -> dict:
    """Run the options parsed by :func:`add_arguments`; prints the table, returns the result."""
    from pygad.datasets import load

    g = load(a.data)
    methods = list(a.methods)
    if a.skip_hetero:
        methods = [m for m in methods if m != "no_hetero"]
    dkw = {"hops": a.hops, "max_iter": a.max_iter} if a.detector == "trees" else {}
    akw = json.loads(a.augmenter_kwargs) if a.augmenter_kwargs else {}
    if a.vae_epochs:
        akw["vae_epochs"] = a.vae_epochs
    bkw = json.loads(a.baseline_kwargs) if a.baseline_kwargs else {}
    t0 = time.perf_counter()
    res = run(g, methods, a.seeds, a.detector, detector_kwargs=dkw, augmenter_kwargs=akw, baseline_kwargs=bkw,
              first_seed=a.first_seed)
    print(format_table(res))
    print(f"total {time.perf_counter() - t0:.0f}s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    a = p.parse_args(argv)
    shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
    if os.path.isdir(shared):                # the real datasets beside a source checkout
        os.environ.setdefault("PYGAD_DATA", os.path.normpath(shared))
    main_args(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
