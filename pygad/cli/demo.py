"""``pygad demo``: the main job on the embedded dataset, augmenters side by side.

Runs :func:`pygad.evaluation.compare` (no augmentation, the baselines, the VAE alone and the
latent-diffusion augmenter, each over the same seeds), prints its table and writes the plots
(:func:`pygad.evaluation.save_plots`) and ``results.json``. Cheap to import (argparse only).
"""
from __future__ import annotations

import os
import sys
import time

from ..registry import DETECTORS


def add_parser(subparsers) -> None:
    """Register ``pygad demo``."""
    d = subparsers.add_parser(
        "demo", help="the main job: augmenter vs no augmentation vs baselines on the embedded dataset",
        description="Fit the latent-diffusion augmenter on the embedded default dataset (books), train the "
                    "detector with and without augmentation and with the baseline augmenters (oversampling, "
                    "SMOTE, mixup) over several seeds, print the comparison table and save plots "
                    "(precision-recall curves; PCA of real vs synthetic latents).")
    d.add_argument("--data", default=None, metavar="NAME_OR_NPZ_PATH", help="dataset (default: the embedded books)")
    d.add_argument("--seeds", type=int, default=3, metavar="N", help="number of seeds (default: 3)")
    d.add_argument("--detector", default="trees", choices=tuple(DETECTORS),
                   help="detector trained on each (augmented) graph (default: trees)")
    d.add_argument("--out-dir", default="pygad_demo_out", metavar="DIR",
                   help="where the plots and results.json go (default: ./pygad_demo_out)")
    d.add_argument("--ratio", type=float, default=None, metavar="R",
                   help="synthetic anomalies per training anomaly, for every augmenter alike (diffusion and the "
                        "baselines; default: 1)")
    d.add_argument("--vae-epochs", type=int, default=None, help="VAE epochs (default: the augmenter's)")
    d.add_argument("--threads", type=int, default=None, help="torch threads (default: the environment's)")
    d.add_argument("--quiet", action="store_true", help="no progress bars or per-seed lines")
    d.set_defaults(func=run)


def run(args, out=None) -> int:
    """Run ``pygad demo``: print the comparison, write plots and results.json; exit code 0, or 2 on bad options."""
    out = sys.stdout if out is None else out   # looked up per call: sys.stdout may be replaced
    if args.seeds < 1:
        print(f"pygad demo: error: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    if args.ratio is not None and not args.ratio > 0:
        print(f"pygad demo: error: --ratio must be > 0, got {args.ratio}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch
        torch.set_num_threads(max(1, args.threads))
    from .. import evaluation as ev
    from ..datasets import load

    akw = {} if args.vae_epochs is None else {"vae_epochs": args.vae_epochs}
    bkw = {}
    if args.ratio is not None:
        akw["ratio"] = bkw["ratio"] = args.ratio
    t0 = time.perf_counter()
    graph = load(args.data)
    print(f"pygad demo: {graph!r}", file=out, flush=True)
    result = ev.compare(graph, ev.DEMO_METHODS, args.seeds, args.detector, augmenter_kwargs=akw,
                        verbose=not args.quiet, baseline_kwargs=bkw)
    print(ev.format_comparison(result), file=out)
    paths = ev.save_plots(result, args.out_dir)
    js = os.path.join(args.out_dir, "results.json")
    ev.write_json({k: v for k, v in result.items() if k in ("runs", "mean", "std", "config")}, js)
    print(f"wrote {', '.join(paths + [js])}", file=out)
    print(f"total {time.perf_counter() - t0:.1f}s", file=out)
    return 0
