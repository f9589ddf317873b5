"""``pygad evaluate``: train and test a detector over several seeds; print a table, write JSON.

Cheap to import (argparse only): torch, NumPy and the detectors load inside :func:`run`.
"""
from __future__ import annotations

import argparse
import sys

from ..registry import DETECTORS


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``pygad evaluate`` on ``subparsers``."""
    p = subparsers.add_parser(
        "evaluate", help="train and test a detector over N seeds (AUC, AP, Recall@k)",
        description="Train and test an anomaly detector over N seeds and print mean ± std of AUC, AP and "
                    "Recall@k (k = number of anomalies in the test set). Splits: the archive's stored masks "
                    "when it has them (--split K picks one), else stratified 40/20/40 train/val/test per seed.")
    p.add_argument("--data", default="books", metavar="NAME_OR_NPZ_PATH",
                   help="dataset name (searched in $PYGAD_DATA, ./data, then the embedded datasets) or an .npz "
                        "path; default: the embedded 'books'")
    p.add_argument("--detector", default="gnn", choices=tuple(DETECTORS),
                   help="gnn: HGT encoder + MLP head; trees: gradient-boosted trees on multi-hop neighbour "
                        "aggregates; feature: the same trees on node features only (no graph). Default: gnn")
    p.add_argument("--augment", default="none", metavar="NAME",
                   help="training-graph augmentation (default: none); 'auto' fits the detector with and without "
                        "diffusion augmentation and keeps the one with the higher validation AP")
    p.add_argument("--augment-ratio", type=float, default=None, metavar="R",
                   help="synthetic anomalies per training anomaly for --augment (default: the augmenter's, 1)")
    p.add_argument("--seeds", type=int, default=5, metavar="N", help="number of seeds (default: 5)")
    p.add_argument("--split", type=int, default=None, metavar="K",
                   help="which stored split to use when the archive has several (default: the first)")
    p.add_argument("--train-anomalies", type=int, default=None, metavar="K",
                   help="few-label protocol: K labelled anomalies for training and K for validation, drawn per "
                        "seed (stratified; test = the other labelled nodes). GADBench's semi-supervised setting: "
                        "--train-anomalies 20 --train-normals 80")
    p.add_argument("--train-normals", type=int, default=None, metavar="M",
                   help="few-label protocol: M labelled normal nodes for training and M for validation")
    p.add_argument("--label-rate", type=float, default=None, metavar="R",
                   help="label-rate protocol: a stratified fraction R of the labelled nodes for training, the "
                        "same counts for validation, test = the rest (0 < R < 0.5)")
    p.add_argument("--target", default=None, metavar="NODE_TYPE",
                   help="node type to detect on (default: the labelled one)")
    p.add_argument("--epochs", type=int, default=None, help="GNN training epochs (default: the detector's)")
    p.add_argument("--device", default="cpu", help="torch device for the GNN (default: cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: as the environment sets, e.g. OMP_NUM_THREADS)")
    p.add_argument("--json", default=None, metavar="FILE", help="write runs, mean and std as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-seed lines")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``pygad evaluate``: print the table (and write ``--json``); exit code 0, or 2 on bad options."""
    from .. import _validate as V
    from .. import evaluation as ev

    # before the seeds run, so a bad path or device fails in seconds
    args.device = V.check_device(args.device)
    if args.json:
        V.check_writable_path(args.json, "--json")

    if args.augment not in ev.AUGMENTERS:
        print(f"pygad evaluate: error: unknown --augment {args.augment!r}; choose one of "
              f"{', '.join(sorted(ev.AUGMENTERS))}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"pygad evaluate: error: --seeds must be >= 1, got {args.seeds}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch
        torch.set_num_threads(max(1, args.threads))
    augment_kwargs = {}
    if args.augment_ratio is not None:
        if args.augment == "none":
            print("pygad evaluate: error: --augment-ratio needs --augment other than none", file=sys.stderr)
            return 2
        augment_kwargs["ratio"] = args.augment_ratio
    kwargs = {}
    if args.epochs is not None:
        if args.detector != "gnn":
            print("pygad evaluate: error: --epochs applies to --detector gnn only", file=sys.stderr)
            return 2
        kwargs["epochs"] = args.epochs
    from ..datasets import load
    graph = load(args.data)
    if graph.features_derived and not args.quiet:
        print(f"note: {graph.name} has no node features for {sorted(graph.features_derived)}; using derived "
              "structural features (degrees, neighbour-degree statistics per relation)", file=sys.stderr)
    result = ev.run_evaluation(graph, detector=args.detector, augment=args.augment, seeds=args.seeds,
                               split=args.split, target=args.target, device=args.device,
                               detector_kwargs=kwargs, augment_kwargs=augment_kwargs, verbose=not args.quiet,
                               train_anomalies=args.train_anomalies, train_normals=args.train_normals,
                               label_rate=args.label_rate)
    print(ev.format_table(result))
    if args.json:
        ev.write_json(result, args.json)
        print(f"wrote {args.json}", file=sys.stderr if args.quiet else sys.stdout)
    return 0
