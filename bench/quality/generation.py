"""Generation quality measured directly: synthetic anomalies against HELD-OUT real anomalies.

Research harness (not part of the package). Per seed: take the split (the full protocol, or the
few-label one with ``--train-anomalies/--train-normals``), fit the latent-diffusion augmenter
on the training labels, and draw synthetic anomalies with each method:

* ``diffusion``: latents from the diffusion model (the augmenter as shipped);
* ``vae``: latents from the VAE posteriors of training anomalies (the same fit, no diffusion);
* ``smote``, ``mixup``: the feature-space baselines.

Each method's synthetic nodes are appended to the graph as the detector would see them and
*re-encoded* by the fitted VAE encoder (encoder means), so every method is compared in the same
latent space; for ``diffusion``/``vae`` the sampled latents themselves are reported too
(``diffusion_z``, ``vae_z``). Feature space: node features standardised with the training
nodes' mean and std. The reference is the real anomalies of the *test* part (held out from the
augmenter); memorisation is measured against the training anomalies it saw.

Metrics (pure NumPy, k-NN manifolds, ``k`` neighbours):

* ``precision`` / ``recall``: improved precision and recall (Kynkäänniemi et al. 2019): the
  fraction of generated samples inside the real k-NN manifold, and of real samples inside the
  generated one;
* ``density`` / ``coverage`` (Naeem et al. 2020);
* ``nn_ratio``: median distance of a generated sample to its nearest *training* anomaly over the
  median distance of a held-out real anomaly to its nearest training anomaly (1: as far from the
  training anomalies as new real anomalies are; near 0: copies), ``copies``: the fraction of
  generated samples closer to a training anomaly than 1e-6 of the typical scale;
* ``c2st``: classifier two-sample test AUC (L2 logistic regression, stratified 5-fold
  cross-validated predictions), generated versus held-out real; 0.5 = indistinguishable.

Command::

    PYGAD_DATA=../shared/data python -P bench/quality/generation.py --data inj_cora --seeds 3 \\
        [--first-seed 0] [--k 3] [--vae-epochs 40] [--diffusion-epochs 100] \\
        [--train-anomalies 20 --train-normals 80] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

METHODS = ("diffusion", "vae", "smote", "mixup")
QUALITY = ("precision", "recall", "density", "coverage", "nn_ratio", "copies", "c2st")


# ---- metrics (pure NumPy) --------------------------------------------------------------------
def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] (float64, clipped at 0 before the square root)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of ``x`` to its ``k``-th nearest other row (the k-NN ball radius)."""
    x = np.asarray(x)
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"'k' must be in [1, {x.shape[0] - 1}] for {x.shape[0]} samples, got {k}")
    d = pairwise_distances(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Returns:
        ``(precision, recall)``: the fraction of ``fake`` rows inside some real row's k-NN ball,
        and of ``real`` rows inside some fake row's k-NN ball.
    """
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = pairwise_distances(fake, real)  # [F, R]
    precision = float((d <= r_real[None, :]).any(1).mean())
    recall = float((d.T <= r_fake[None, :]).any(1).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple:
    """Density and coverage (Naeem et al. 2020) with the real samples' k-NN balls.

    Returns:
        ``(density, coverage)``: density = mean over fakes of the number of real balls holding
        them, divided by ``k`` (about 1 for equal distributions, unbounded above); coverage =
        the fraction of real balls holding at least one fake.
    """
    r_real = knn_radii(real, k)
    inside = pairwise_distances(fake, real) <= r_real[None, :]  # [F, R]
    return float(inside.sum(1).mean() / k), float(inside.any(0).mean())


def memorisation(train_real: np.ndarray, heldout_real: np.ndarray, fake: np.ndarray) -> tuple:
    """How close generated samples sit to the training samples, against new real ones.

    Returns:
        ``(nn_ratio, copies)``: median nearest-training-sample distance of the fakes over that of
        the held-out real samples, and the fraction of fakes within 1e-6 times the held-out
        median distance of a training sample (copies).
    """
    d_fake = pairwise_distances(fake, train_real).min(1)
    d_real = pairwise_distances(heldout_real, train_real).min(1)
    scale = float(np.median(d_real))
    if scale <= 0:
        return float("nan"), float("nan")
    return float(np.median(d_fake) / scale), float((d_fake <= 1e-6 * scale).mean())


def c2st_auc(a: np.ndarray, b: np.ndarray, folds: int = 5, seed: int = 0, max_dim: int = 64) -> float:
    """Classifier two-sample test: cross-validated AUC of telling ``a`` from ``b``.

    An L2 logistic regression on standardised inputs (PCA to ``max_dim`` dimensions when wider,
    fitted on the pooled samples without labels), stratified ``folds``-fold out-of-fold scores;
    0.5 means the classifier cannot tell the samples apart, 1 that it always can.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from pygad.metrics import roc_auc

    x = np.concatenate([np.asarray(a, np.float64), np.asarray(b, np.float64)])
    y = np.r_[np.zeros(len(a), int), np.ones(len(b), int)]
    x = x - x.mean(0)
    sd = x.std(0)
    x = x / np.where(sd > 0, sd, 1.0)
    if x.shape[1] > max_dim:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        x = x @ vt[:max_dim].T
    nf = max(2, min(folds, int(min(len(a), len(b)))))
    cv = StratifiedKFold(nf, shuffle=True, random_state=seed)
    p = cross_val_predict(LogisticRegression(C=1.0, max_iter=2000), x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc(y, p))


def quality(train_real, heldout_real, fake, k: int = 3, seed: int = 0) -> Dict[str, float]:
    """Every metric of :data:`QUALITY` for ``fake`` against the held-out real samples."""
    p, r = precision_recall(heldout_real, fake, k)
    d, c = density_coverage(heldout_real, fake, k)
    ratio, copies = memorisation(train_real, heldout_real, fake)
    return {"precision": p, "recall": r, "density": d, "coverage": c, "nn_ratio": ratio, "copies": copies,
            "c2st": c2st_auc(fake, heldout_real, seed=seed)}


# ---- the harness -----------------------------------------------------------------------------
def run(graph, methods: Sequence[str] = METHODS, seeds: int = 3, first_seed: int = 0, k: int = 3,
        augmenter_kwargs: Optional[dict] = None, train_anomalies: Optional[int] = None,
        train_normals: Optional[int] = None, verbose: bool = True, log=sys.stderr) -> dict:
    """Generation quality per method and space over seeds ``first_seed ..``.

    Returns:
        ``{"runs": {row: [{"seed", metric...}]}, "mean": {row: {metric}}, "sem": ..., "config"}``
        with rows ``<method>/latent`` (re-encoded), ``<method>/feature`` and ``diffusion_z/latent``,
        ``vae_z/latent`` (the sampled latents).
    """
    import torch

    from pygad.evaluation import few_label_split, get_split
    from pygad.models.augment import LatentDiffusionAugmenter, _Ablation, append_nodes
    from pygad.registry import make_augmenter

    tgt = graph.target_type()
    y = graph.y[tgt]
    akw = dict(augmenter_kwargs or {})
    runs: Dict[str, list] = {}
    for seed in range(int(first_seed), int(first_seed) + int(seeds)):
        t0 = time.perf_counter()
        if train_anomalies is not None:
            tr, _, te = few_label_split(y, seed, train_anomalies, train_normals)
        else:
            tr, _, te, _ = get_split(graph, tgt, seed)
        aug = LatentDiffusionAugmenter(random_state=seed, **akw).fit(graph, tr)
        g, n0 = aug.graph_, aug.graph_.num_nodes[tgt]
        tr_pos, te_pos = np.flatnonzero(tr & (y == 1)), np.flatnonzero(te & (y == 1))
        n_gen = max(len(te_pos), aug.default_count())
        z_all = aug.z_real_[tgt].cpu().numpy()
        x_all = np.asarray(g.x[tgt], np.float64)
        mu, sd = x_all[tr].mean(0), x_all[tr].std(0)
        sd = np.where(sd > 0, sd, 1.0)
        spaces = {"latent": (z_all[tr_pos], z_all[te_pos]),
                  "feature": ((x_all[tr_pos] - mu) / sd, (x_all[te_pos] - mu) / sd)}
        for m in methods:
            if m in ("diffusion", "vae"):
                syn = aug._sample(n_gen, label=1, ablation=_Ablation(diffusion=(m == "diffusion")))
                rows = {f"{m}_z/latent": (spaces["latent"], syn.z)}
            else:
                base = make_augmenter(m, random_state=seed).fit(g, tr)
                syn = base.sample(n_gen, label=1)
                rows = {}
            g2, _ = append_nodes(g, tr, syn)
            with torch.no_grad():
                z_enc = aug.vae_.embed(g2)[0][tgt].cpu().numpy()[n0:]
            rows[f"{m}/latent"] = (spaces["latent"], z_enc)
            rows[f"{m}/feature"] = (spaces["feature"], (np.asarray(syn.x, np.float64) - mu) / sd)
            for row, ((ref_tr, ref_te), fake) in rows.items():
                q = quality(ref_tr, ref_te, fake, k=k, seed=seed)
                runs.setdefault(row, []).append({"seed": seed, **q})
                if log is not None and verbose:
                    print(f"  seed {seed} {row:<18}" + "  ".join(f"{a} {q[a]:.3f}" for a in QUALITY),
                          file=log, flush=True)
        # the real reference: training anomalies against the held-out ones (what "real" scores)
        for space, (ref_tr, ref_te) in spaces.items():
            half = len(ref_te) // 2
            q = quality(ref_tr, ref_te[:half], ref_te[half:], k=k, seed=seed)
            runs.setdefault(f"real_heldout/{space}", []).append({"seed": seed, **q})
        if log is not None and verbose:
            print(f"  seed {seed}: {len(tr_pos)} training anomalies, {len(te_pos)} held out, {n_gen} generated "
                  f"({time.perf_counter() - t0:.0f}s)", file=log, flush=True)
    mean = {r: {q: float(np.mean([x[q] for x in v])) for q in QUALITY} for r, v in runs.items()}
    sem = {r: {q: float(np.std([x[q] for x in v], ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
               for q in QUALITY} for r, v in runs.items()}
    config = {"data": graph.name, "seeds": list(range(int(first_seed), int(first_seed) + int(seeds))), "k": k,
              "augmenter_kwargs": akw, "train_anomalies": train_anomalies, "train_normals": train_normals}
    return {"runs": runs, "mean": mean, "sem": sem, "config": config}


def format_result(result: dict) -> str:
    """A mean ± standard error table, one row per method and space."""
    c = result["config"]
    lines = [f"{c['data']}: generation quality vs held-out real anomalies, seeds {c['seeds']}, k={c['k']}",
             f"{'method/space':<22}" + "".join(f"{q:>16}" for q in QUALITY)]
    for row in sorted(result["mean"], key=lambda r: (r.split("/")[1], r)):
        lines.append(f"{row:<22}" + "".join(f"{result['mean'][row][q]:>8.3f} ± {result['sem'][row][q]:.3f}"
                                            for q in QUALITY))
    lines.append("(real_heldout: half of the held-out real anomalies against the other half: the level of a "
                 "perfect generator with that few samples)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="inj_cora")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--vae-epochs", type=int, default=None)
    p.add_argument("--diffusion-epochs", type=int, default=None)
    p.add_argument("--augmenter-kwargs", default="{}", help="JSON settings of the augmenter")
    p.add_argument("--train-anomalies", type=int, default=None)
    p.add_argument("--train-normals", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    from pygad.datasets import load
    akw = json.loads(a.augmenter_kwargs)
    if a.vae_epochs is not None:
        akw["vae_epochs"] = a.vae_epochs
    if a.diffusion_epochs is not None:
        akw["diffusion_epochs"] = a.diffusion_epochs
    r = run(load(a.data), methods=a.methods, seeds=a.seeds, first_seed=a.first_seed, k=a.k, augmenter_kwargs=akw,
            train_anomalies=a.train_anomalies, train_normals=a.train_normals)
    print(format_result(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
