"""``pygad demo``: the main job on the embedded default dataset, and the comparison engine.

:func:`compare` trains a detector on the training graph without augmentation, with the
latent-diffusion augmenter (and its ablations) and with the baseline augmenters, over several
seeds, and scores the real test nodes only. :func:`run_demo` runs it on ``books`` (the
embedded dataset), prints the table and writes two plots: precision-recall curves of every
method (first seed) and a 2-D PCA projection of real versus synthetic latents.

Method names: ``none``, ``oversample``, ``smote``, ``mixup``, ``vae`` (the VAE alone: latents
from training anomalies' posteriors), ``diffusion`` (the full model) and the ablations
``no_hetero``, ``no_cond``, ``no_attach``, ``decoded_edges`` (edges to real nodes chosen by the
structure decoder instead of copied from the latent-nearest training anomaly, features decoded
from the latent alone). ``vae``, ``diffusion``, ``no_attach`` and ``decoded_edges`` share one
fitted model per seed (they differ only in how they sample), so their differences isolate
the sampling step; ``no_hetero`` and ``no_cond`` refit.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

METHODS = ("none", "oversample", "smote", "mixup", "vae", "diffusion")
ABLATIONS = ("no_hetero", "no_cond", "no_attach", "decoded_edges")
# methods that only sample differently from one fitted diffusion augmenter per seed
_SHARED_FIT = ("vae", "diffusion", "no_attach", "decoded_edges")
METRICS = ("auc", "ap", "rec_at_k")
LABELS = {"auc": "AUC", "ap": "AP", "rec_at_k": "Rec@k"}


def _log(msg, log):
    if log is not None:
        print(msg, file=log, flush=True)


def compare(graph, methods: Sequence[str] = METHODS, seeds: int = 3, detector: str = "trees",
            detector_kwargs: Optional[dict] = None, augmenter_kwargs: Optional[dict] = None, split: Optional[int] = None,
            keep_scores: bool = True, verbose: bool = True, log=sys.stderr, baseline_kwargs: Optional[dict] = None,
            first_seed: int = 0) -> dict:
    """Detector quality with each augmentation method over ``seeds`` seeds.

    ``augmenter_kwargs`` go to the latent-diffusion augmenter (and its ablations),
    ``baseline_kwargs`` to the baselines ``oversample``/``smote``/``mixup`` (e.g.
    ``{"ratio": 3}`` to give them the same count as a diffusion run with ``ratio=3``; each
    baseline accepts ``ratio`` and ``n_synthetic``). The seeds are ``first_seed ..
    first_seed + seeds - 1`` (seed the split, the augmenters and the detector), so settings
    can be searched on other seeds than the reported ones.

    Returns:
        ``{"runs": {method: [{"seed", "auc", "ap", "rec_at_k", "n_synthetic", "seconds"}]},
        "mean": {method: {metric}}, "std": ..., "scores": {method: (y_test, scores_test)} (first
        seed), "latents": {"real": z, "real_y": y, "synthetic": z_syn} (first seed),
        "config": {...}}``.
    """
    import torch

    from .evaluation import get_split, make_detector
    from .metrics import evaluate as metrics
    from .models.augment import append_nodes, make_augmenter

    for m in methods:
        if m not in METHODS + ABLATIONS:
            raise ValueError(f"unknown method {m!r}; choose from {METHODS + ABLATIONS}")
    tgt = graph.target_type()
    y = graph.y[tgt]
    n0 = graph.num_nodes[tgt]
    akw = dict(augmenter_kwargs or {})
    bkw = dict(baseline_kwargs or {})
    if isinstance(first_seed, bool) or not isinstance(first_seed, (int, np.integer)) or first_seed < 0:
        raise ValueError(f"'first_seed' must be an integer >= 0, got {first_seed!r}")
    runs: Dict[str, list] = {m: [] for m in methods}
    scores_out, latents = {}, {}
    try:
        from tqdm.auto import tqdm
        bar = tqdm(total=int(seeds) * len(methods), desc=f"demo on {graph.name}", disable=not verbose,
                   leave=False, file=sys.stderr)
    except ImportError:  # pragma: no cover
        bar = None
    for seed in range(int(first_seed), int(first_seed) + int(seeds)):
        tr, va, te, how = get_split(graph, tgt, seed, split)
        shared = None  # the fitted diffusion augmenter of this seed (_SHARED_FIT)
        for m in methods:
            t0 = time.perf_counter()
            syn_z = None
            if m == "none":
                g_fit, tr_fit = graph, tr
            elif m in ("oversample", "smote", "mixup"):
                g_fit, tr_fit = make_augmenter(m, random_state=seed, **bkw).augment(graph, tr)
            else:
                if m in _SHARED_FIT:
                    if shared is None:
                        shared = make_augmenter("diffusion", random_state=seed, verbose=verbose, **akw).fit(graph, tr)
                    aug = shared
                else:
                    kw = dict(akw)
                    kw["hetero" if m == "no_hetero" else "conditional"] = False
                    aug = make_augmenter("diffusion", random_state=seed, verbose=verbose, **kw).fit(graph, tr)
                opts = {"attach": m != "no_attach"}
                if m == "decoded_edges":
                    opts.update(template_edges=False, anchor_features=False)
                with aug.sampling_options(**opts):
                    syn = aug.sample(aug.default_count(), label=1, use_diffusion=m != "vae")
                syn_z = syn.z
                g_fit, tr_fit = append_nodes(aug.graph_, aug.train_mask_, syn)
            va_fit = va
            n_new = g_fit.num_nodes[tgt]
            if va is not None and n_new > n0:
                va_fit = np.concatenate([va, np.zeros(n_new - n0, dtype=bool)])
            det = make_detector(detector, seed, verbose=False, **(detector_kwargs or {}))
            det.fit(g_fit, tr_fit, va_fit)
            s = np.asarray(det.decision_function(g_fit))[:n0]
            r = {"seed": seed, **metrics(y[te], s[te]), "n_synthetic": int(n_new - n0),
                 "seconds": time.perf_counter() - t0}
            runs[m].append(r)
            _log(f"  seed {seed} {m:<14}" + "  ".join(f"{LABELS[k]} {r[k]:.4f}" for k in METRICS)
                 + f"  (+{r['n_synthetic']} nodes, {r['seconds']:.1f}s)", log if verbose else None)
            if seed == first_seed and keep_scores:
                scores_out[m] = (y[te].copy(), s[te].copy())
                if m == "diffusion" and shared is not None:
                    trn = np.flatnonzero(tr & (y >= 0))
                    latents = {"real": shared.z_real_[tgt][torch.from_numpy(trn)].cpu().numpy(),
                               "real_y": y[trn].copy(), "synthetic": syn_z}
            if bar is not None:
                bar.update(1)
        del shared
    if bar is not None:
        bar.close()
    mean = {m: {k: float(np.mean([r[k] for r in rs])) for k in METRICS} for m, rs in runs.items()}
    std = {m: {k: float(np.std([r[k] for r in rs], ddof=1)) if len(rs) > 1 else 0.0 for k in METRICS}
           for m, rs in runs.items()}
    config = {"data": graph.name, "detector": detector, "seeds": int(seeds), "split": how, "target": tgt,
              "methods": list(methods), "augmenter_kwargs": akw, "baseline_kwargs": bkw,
              "detector_kwargs": detector_kwargs or {}, "first_seed": int(first_seed)}
    return {"runs": runs, "mean": mean, "std": std, "scores": scores_out, "latents": latents, "config": config}


def format_comparison(result: dict) -> str:
    """The mean ± std table; the best mean per metric is starred."""
    c = result["config"]
    methods = list(result["mean"])
    best = {k: max(result["mean"][m][k] for m in methods) for k in METRICS}
    head = f"{c['data']}: detector={c['detector']} seeds={c['seeds']} split={c['split']}"
    for key, name in (("augmenter_kwargs", "augmenter"), ("baseline_kwargs", "baselines")):
        if c.get(key):  # settings that change the comparison (e.g. ratio) belong in its header
            head += f" {name}=" + ",".join(f"{k}:{v}" for k, v in c[key].items())
    lines = [head,
             f"{'augmentation':<14}" + "".join(f"{LABELS[k]:>18}" for k in METRICS)]
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
    """``pr_curves.png`` (first seed) and ``latents_pca.png``; returns the written paths."""
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


def run_demo(data: Optional[str] = None, seeds: int = 3, detector: str = "trees", out_dir="pygad_demo_out",
             methods: Sequence[str] = METHODS, augmenter_kwargs: Optional[dict] = None, verbose: bool = True,
             out=sys.stdout, baseline_kwargs: Optional[dict] = None) -> dict:
    """Load ``data`` (default: the embedded books), :func:`compare`, print, plot, write JSON."""
    from .datasets import load
    from .evaluation import write_json

    t0 = time.perf_counter()
    graph = load(data)
    print(f"pygad demo: {graph!r}", file=out, flush=True)
    result = compare(graph, methods, seeds, detector, augmenter_kwargs=augmenter_kwargs, verbose=verbose,
                     baseline_kwargs=baseline_kwargs)
    print(format_comparison(result), file=out)
    paths = save_plots(result, out_dir)
    js = os.path.join(out_dir, "results.json")
    write_json({k: v for k, v in result.items() if k in ("runs", "mean", "std", "config")}, js)
    result["seconds"] = time.perf_counter() - t0
    print(f"wrote {', '.join(paths + [js])}", file=out)
    print(f"total {result['seconds']:.1f}s", file=out)
    return result


__all__ = ["compare", "format_comparison", "save_plots", "run_demo", "METHODS", "ABLATIONS"]
