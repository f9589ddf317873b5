"""The few-label regime: detector quality per augmentation, mean ± standard error over seeds.

Research harness (not part of the package): every method runs through
:func:`pygad.evaluation.compare` with the few-label protocol (GADBench's semi-supervised
setting by default: 20 labelled anomalies + 80 normal nodes for training, as many for
validation, test = all other labelled nodes, drawn per seed). Per seed the split, the augmenter
and the detector are seeded with the seed, so methods are paired by seed; the table gives each
method's mean ± standard error and its paired difference to ``none`` (mean ± standard error of
the per-seed differences; ``**`` marks a difference beyond two standard errors).

Command::

    PYGAD_DATA=../shared/data python -P bench/quality/few_label.py --data inj_cora --seeds 10 \\
        [--first-seed 0] [--detector trees] [--methods none diffusion vae smote mixup] \\
        [--train-anomalies 20 --train-normals 80] [--augmenter-kwargs JSON] [--json FILE]

Tune settings on ``--first-seed 100`` and up, never on the reported seeds.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

METRICS = ("auc", "ap", "rec_at_k")
LABELS = {"auc": "AUC", "ap": "AP", "rec_at_k": "Rec@k"}


def summarise(result: dict) -> dict:
    """Per method and metric: mean, standard error and the paired difference to ``none``."""
    out = {}
    base = result["runs"].get("none")
    for m, runs in result["runs"].items():
        row = {}
        for k in METRICS:
            v = np.array([r[k] for r in runs])
            cell = {"mean": float(v.mean()), "sem": float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0}
            if base is not None and m != "none":
                d = v - np.array([r[k] for r in base])
                cell.update(diff=float(d.mean()), diff_sem=float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0)
            row[k] = cell
        out[m] = row
    return out


def format_summary(result: dict, summary: dict) -> str:
    c = result["config"]
    p = c["protocol"]
    lines = [f"{c['data']}: detector={c['detector']} protocol={p['kind']} train {p['train_anomalies']}+"
             f"{p['train_normals']} val {p['val_anomalies']}+{p['val_normals']} seeds "
             f"{c['first_seed']}..{c['first_seed'] + c['seeds'] - 1}",
             f"{'method':<11}" + "".join(f"{LABELS[k]:>34}" for k in METRICS)]
    for m, row in summary.items():
        cells = []
        for k in METRICS:
            s = row[k]
            txt = f"{s['mean']:.4f} ± {s['sem']:.4f}"
            if "diff" in s:
                star = "**" if abs(s["diff"]) > 2 * s["diff_sem"] else "  "
                txt += f" ({s['diff']:+.4f} ± {s['diff_sem']:.4f}{star})"
            cells.append(txt.rjust(34))
        lines.append(f"{m:<11}" + "".join(cells))
    lines.append("(mean ± standard error over seeds; in brackets the paired difference to none, ** beyond 2 SE)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="inj_cora")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--detector", default="trees")
    p.add_argument("--methods", nargs="+", default=["none", "diffusion", "vae", "smote", "mixup"])
    p.add_argument("--train-anomalies", type=int, default=20)
    p.add_argument("--train-normals", type=int, default=80)
    p.add_argument("--augmenter-kwargs", default="{}", help="JSON settings of vae/diffusion/auto")
    p.add_argument("--baseline-kwargs", default="{}", help="JSON settings of smote/mixup/oversample")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    from pygad import evaluation as ev
    from pygad.datasets import load
    r = ev.compare(load(a.data), methods=a.methods, seeds=a.seeds, detector=a.detector, first_seed=a.first_seed,
                   augmenter_kwargs=json.loads(a.augmenter_kwargs), baseline_kwargs=json.loads(a.baseline_kwargs),
                   keep_scores=False, verbose=True, train_anomalies=a.train_anomalies, train_normals=a.train_normals)
    s = summarise(r)
    print(format_summary(r, s))
    if a.json:
        r.pop("scores", None)
        r.pop("latents", None)
        ev.write_json({**r, "summary": s}, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
