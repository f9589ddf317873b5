"""``pygad augment``: synthesise anomalous training nodes and write the augmented graph archive.

Cheap to import (argparse only): NumPy, torch and the augmenters load inside :func:`run`.
"""
from __future__ import annotations

import sys

from ..registry import BASELINE_AUGMENTERS, GENERATIVE_AUGMENTERS

#: ``--method`` choices: the generative augmenters first, then the baselines
METHODS = tuple(reversed(GENERATIVE_AUGMENTERS)) + BASELINE_AUGMENTERS


def add_parser(subparsers) -> None:
    """Register ``pygad augment``."""
    p = subparsers.add_parser(
        "augment", help="synthesise anomalous training nodes and write the augmented graph archive",
        description="Fit an augmenter on the training nodes of a graph (the archive's stored split, else a "
                    "stratified 40/20/40 split drawn with --seed) and write the graph with the synthetic "
                    "anomalies appended as an .npz archive in the same format. Synthetic nodes come after the "
                    "real ones, have y=1, are in 'train_mask' and are flagged in 'synthetic_mask'.")
    p.add_argument("--data", default="books", metavar="NAME_OR_NPZ_PATH",
                   help="dataset name or .npz path (default: the embedded 'books')")
    p.add_argument("--out", required=True, metavar="FILE", help="output .npz archive")
    p.add_argument("--method", default="diffusion", choices=METHODS, help="augmenter (default: diffusion)")
    p.add_argument("--n", type=int, default=None, metavar="N",
                   help="number of synthetic nodes (default: --ratio x the training anomalies)")
    p.add_argument("--ratio", type=float, default=None, metavar="R",
                   help="synthetic nodes per training anomaly when --n is not given (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the augmenter (default: 0)")
    p.add_argument("--split", type=int, default=None, metavar="K", help="stored split to use (default: the first)")
    p.add_argument("--epochs", type=int, default=None, help="VAE epochs (diffusion/vae; default: the augmenter's)")
    p.add_argument("--diffusion-epochs", type=int, default=None,
                   help="latent diffusion training epochs (diffusion; default: the augmenter's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (diffusion)")
    p.add_argument("--save-model", default=None, metavar="DIR",
                   help="also save the fitted model (config.json + weights.pt) to DIR (diffusion/vae)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``pygad augment``: write ``--out`` (and ``--save-model``); exit code 0."""
    import numpy as np

    from .. import _validate as V
    from ..datasets import load, save_archive
    from ..evaluation import get_split
    from ..registry import make_augmenter

    # before the training, so a typo costs seconds, not the run
    V.check_writable_path(args.out, "--out")
    if args.save_model:
        V.check_writable_path(args.save_model, "--save-model", directory=True)
    if args.method in GENERATIVE_AUGMENTERS:
        args.device = V.check_device(args.device)
    graph = load(args.data)
    tgt = graph.target_type()
    tr, va, te, how = get_split(graph, tgt, args.seed, args.split)
    kw = {}
    if args.method in GENERATIVE_AUGMENTERS:
        kw = {"verbose": not args.quiet, "device": args.device}
        if args.epochs is not None:
            kw["vae_epochs"] = args.epochs
        if args.diffusion_epochs is not None:
            kw["diffusion_epochs"] = args.diffusion_epochs
        if args.guidance is not None:
            kw["guidance"] = args.guidance
    if args.n is not None and args.ratio is not None:
        raise ValueError("give --n or --ratio, not both")
    if args.n is not None:
        kw["n_synthetic"] = args.n
    if args.ratio is not None:
        kw["ratio"] = args.ratio
    aug = make_augmenter(args.method, args.seed, **kw)
    g2, tr2 = aug.augment(graph, tr)
    n_new = g2.num_nodes[tgt] - graph.num_nodes[tgt]
    pad = np.zeros(n_new, dtype=bool)
    va2 = None if va is None else np.r_[va, pad]
    te2 = np.r_[te, pad]
    save_archive(g2, args.out, tr2, va2, te2)
    if args.save_model:
        if not hasattr(aug, "save"):
            print("pygad augment: note: --save-model applies to diffusion/vae only", file=sys.stderr)
        else:
            aug.save(args.save_model)
    added = sum(e.shape[1] for e in g2.edge_index.values()) - sum(e.shape[1] for e in graph.edge_index.values())
    print(f"{graph.name}: +{n_new} synthetic anomalies ({args.method}, split: {how}), +{added} edges -> {args.out}")
    return 0
