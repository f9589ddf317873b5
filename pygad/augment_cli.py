"""``pygad augment`` (write an augmented graph archive) and ``pygad demo`` (the main job).

Cheap to import (argparse only): torch and the models load inside the command functions.
"""
from __future__ import annotations

import sys

AUGMENT_CHOICES = ("diffusion", "vae", "oversample", "smote", "mixup")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "augment", help="synthesise anomalous training nodes and write the augmented graph archive",
        description="Fit an augmenter on the training nodes of a graph (the archive's stored split, else a "
                    "stratified 40/20/40 split drawn with --seed) and write the graph with the synthetic "
                    "anomalies appended as an .npz archive in the same format. Synthetic nodes come after the "
                    "real ones, have y=1, are in 'train_mask' and are flagged in 'synthetic_mask'.")
    p.add_argument("--data", default="books", metavar="NAME_OR_NPZ_PATH",
                   help="dataset name or .npz path (default: the embedded 'books')")
    p.add_argument("--out", required=True, metavar="FILE", help="output .npz archive")
    p.add_argument("--method", default="diffusion", choices=AUGMENT_CHOICES, help="augmenter (default: diffusion)")
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
    p.add_argument("--decoded-edges", action="store_true",
                   help="edges to real nodes chosen by the structure decoder and features decoded from the "
                        "latent alone, instead of anchoring each synthetic node on the latent-nearest training "
                        "anomaly (its edges, its features moved by the decoder) (diffusion/vae)")
    p.add_argument("--save-model", default=None, metavar="DIR",
                   help="also save the fitted model (config.json + weights.pt) to DIR (diffusion/vae)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_augment)

    d = subparsers.add_parser(
        "demo", help="the main job: augmenter vs no augmentation vs baselines on the embedded dataset",
        description="Fit the latent-diffusion augmenter on the embedded default dataset (books), train the "
                    "detector with and without augmentation and with the baseline augmenters (oversampling, "
                    "SMOTE, mixup) over several seeds, print the comparison table and save plots "
                    "(precision-recall curves; PCA of real vs synthetic latents).")
    d.add_argument("--data", default=None, metavar="NAME_OR_NPZ_PATH", help="dataset (default: the embedded books)")
    d.add_argument("--seeds", type=int, default=3, metavar="N", help="number of seeds (default: 3)")
    d.add_argument("--detector", default="trees", choices=("trees", "gnn", "feature"),
                   help="detector trained on each (augmented) graph (default: trees)")
    d.add_argument("--ablations", action="store_true",
                   help="also run the ablations no_hetero, no_cond, no_attach, decoded_edges (slower)")
    d.add_argument("--out-dir", default="pygad_demo_out", metavar="DIR",
                   help="where the plots and results.json go (default: ./pygad_demo_out)")
    d.add_argument("--ratio", type=float, default=None, metavar="R",
                   help="synthetic anomalies per training anomaly, for every augmenter alike (diffusion and the "
                        "baselines; default: 1)")
    d.add_argument("--vae-epochs", type=int, default=None, help="VAE epochs (default: the augmenter's)")
    d.add_argument("--threads", type=int, default=None, help="torch threads (default: the environment's)")
    d.add_argument("--quiet", action="store_true", help="no progress bars or per-seed lines")
    d.set_defaults(func=run_demo)


def _split(graph, seed, split):
    from .evaluation import get_split
    tgt = graph.target_type()
    tr, va, te, how = get_split(graph, tgt, seed, split)
    return tgt, tr, va, te, how


def save_archive(graph, path, train_mask=None, val_mask=None, test_mask=None) -> None:
    """Write a one-node-type graph in the archive format of :func:`pygad.datasets.load_npz`.

    Keys: ``x`` (unless the features were derived), ``y``, ``num_nodes``, ``edge_index`` (one
    relation) or ``edge_index__<rel>`` + ``relations``, ``edge_time[__<rel>]``,
    ``edge_weight[__<rel>]``, ``train_mask``/``val_mask``/``test_mask`` and ``synthetic_mask``.
    """
    import numpy as np

    if len(graph.node_types) != 1:
        raise ValueError("the archive format holds one node type (or the bipartite review format); "
                         f"this graph has {graph.node_types}")
    (t, n), = graph.num_nodes.items()
    a = {"y": graph.y[t].astype(np.int8), "num_nodes": np.int64(n)}
    if t in graph.x and t not in graph.features_derived:
        a["x"] = graph.x[t]
    ets = graph.edge_types
    if len(ets) == 1 and ets[0][1] == "to":
        et = ets[0]
        a["edge_index"] = graph.edge_index[et]
        if et in graph.edge_time:
            a["edge_time"] = graph.edge_time[et]
        if et in graph.edge_attr:
            a["edge_weight"] = graph.edge_attr[et]
    else:
        a["relations"] = np.array([et[1] for et in ets])
        for et in ets:
            a[f"edge_index__{et[1]}"] = graph.edge_index[et]
            if et in graph.edge_time:
                a[f"edge_time__{et[1]}"] = graph.edge_time[et]
            if et in graph.edge_attr:
                a[f"edge_weight__{et[1]}"] = graph.edge_attr[et]
    for name, m in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask)):
        if m is not None:
            a[name] = np.asarray(m, dtype=bool)
    syn = graph.masks.get(t, {}).get("synthetic")
    if syn is not None:
        a["synthetic_mask"] = syn
    np.savez_compressed(path, **a)


def run_augment(args) -> int:
    import numpy as np

    from . import _validate as V
    from .errors import PygadError
    try:   # before the training, so a typo costs seconds, not the run
        V.check_writable_path(args.out, "--out")
        if args.save_model:
            V.check_writable_path(args.save_model, "--save-model", directory=True)
        if args.method in ("diffusion", "vae"):
            args.device = V.check_device(args.device)
    except PygadError as exc:
        print(f"pygad augment: error: {exc}", file=sys.stderr)
        return 2

    try:
        from .datasets import load
        from .models.augment import make_augmenter
        graph = load(args.data)
        tgt, tr, va, te, how = _split(graph, args.seed, args.split)
        kw = {}
        if args.method in ("diffusion", "vae"):
            kw = {"verbose": not args.quiet, "device": args.device}
            if args.epochs is not None:
                kw["vae_epochs"] = args.epochs
            if args.diffusion_epochs is not None:
                kw["diffusion_epochs"] = args.diffusion_epochs
            if args.guidance is not None:
                kw["guidance"] = args.guidance
            if args.decoded_edges:
                kw["template_edges"] = kw["anchor_features"] = False
        if args.n is not None and args.ratio is not None:
            raise ValueError("give --n or --ratio, not both")
        if args.n is not None:
            kw["n_synthetic"] = args.n
        if args.ratio is not None:
            kw["ratio"] = args.ratio
        aug = make_augmenter(args.method, random_state=args.seed, **kw)
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
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"pygad augment: error: {exc}", file=sys.stderr)
        return 1
    added = sum(e.shape[1] for e in g2.edge_index.values()) - sum(e.shape[1] for e in graph.edge_index.values())
    print(f"{graph.name}: +{n_new} synthetic anomalies ({args.method}, split: {how}), +{added} edges -> {args.out}")
    return 0


def run_demo(args) -> int:
    if args.seeds < 1:
        print(f"pygad demo: error: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch
        torch.set_num_threads(max(1, args.threads))
    from .demo import ABLATIONS, METHODS, run_demo as _run

    if args.ratio is not None and not args.ratio > 0:
        print(f"pygad demo: error: --ratio must be > 0, got {args.ratio}", file=sys.stderr)
        return 2
    methods = METHODS + (ABLATIONS if args.ablations else ())
    akw = {} if args.vae_epochs is None else {"vae_epochs": args.vae_epochs}
    bkw = {}
    if args.ratio is not None:
        akw["ratio"] = bkw["ratio"] = args.ratio
    try:
        _run(args.data, seeds=args.seeds, detector=args.detector, out_dir=args.out_dir, methods=methods,
             augmenter_kwargs=akw, baseline_kwargs=bkw, verbose=not args.quiet)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"pygad demo: error: {exc}", file=sys.stderr)
        return 1
    return 0
