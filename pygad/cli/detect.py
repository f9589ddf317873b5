"""``pygad detect``: fit a detector on the user's own node/edge tables and score every node.

Cheap to import (argparse only); the work is :func:`pygad.models.pipeline.detect_tables`.
"""
from __future__ import annotations

import argparse


def add_table_options(p, defaults_from_model: bool = False) -> None:
    """The table options shared by ``detect`` and ``score``."""
    d = " (default: the model's)" if defaults_from_model else ""
    p.add_argument("--nodes", action="append", required=True, metavar="[TYPE=]FILE",
                   help="a node table (CSV or Parquet), one per node type: an id column, numeric feature "
                        "columns and (detect) the label column; TYPE defaults to the file name. Repeatable")
    p.add_argument("--edges", action="append", default=[], metavar="REL=[SRC_TYPE:DST_TYPE:]FILE",
                   help="an edge table per relation: 'src' and 'dst' id columns, optional time and weight "
                        "columns; the endpoint types may be left out when there is one node type"
                        + ("" if not defaults_from_model else " or the model has the relation") + ". Repeatable")
    p.add_argument("--id", default=None if defaults_from_model else "id", metavar="COL",
                   help="id column of the node tables" + (d or " (default: id)"))
    p.add_argument("--time", default=None, metavar="COL",
                   help="timestamp column of the edge tables (numbers or ISO date-times)" + d)
    p.add_argument("--weight", default=None, metavar="COL", help="edge weight column of the edge tables" + d)
    p.add_argument("--src", default=None if defaults_from_model else "src", metavar="COL",
                   help="source id column of the edge tables" + (d or " (default: src)"))
    p.add_argument("--dst", default=None if defaults_from_model else "dst", metavar="COL",
                   help="destination id column of the edge tables" + (d or " (default: dst)"))


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``detect`` subcommand and its options on ``subparsers``."""
    p = subparsers.add_parser(
        "detect", help="fit a detector on your own node/edge tables (CSV/Parquet) and score every node",
        description="Read node tables and edge tables, fit an anomaly detector on the labelled nodes of the "
                    "target type (the one whose table has the label column: 1 anomaly, 0 normal, blank unknown) "
                    "with a stratified validation split drawn from them, print validation AUC / AP / Recall@k, "
                    "and write id, score, rank, flag for every target node. The flag threshold is the score "
                    "that maximises F1 on the validation nodes. Outputs are written only when everything "
                    "succeeded.")
    add_table_options(p)
    p.add_argument("--label", required=True, metavar="COL", help="label column: 1 anomaly, 0 normal, blank unknown")
    p.add_argument("--target", default=None, metavar="TYPE",
                   help="node type to detect on (default: the one whose table has the label column)")
    p.add_argument("--exclude", action="append", default=[], metavar="COL",
                   help="a node-table column that is not a feature (repeatable)")
    from ..registry import AUGMENTERS, DETECTORS  # the registries (nothing heavy at import time)

    p.add_argument("--detector", default="trees", choices=sorted(DETECTORS),
                   help="trees: gradient-boosted trees on multi-hop neighbour aggregates (default); gnn: HGT "
                        "encoder + MLP head; feature: trees on the node's own features only")
    p.add_argument("--augment", default="none", metavar="NAME",
                   help="training-graph augmentation of the registry: " + ", ".join(sorted(AUGMENTERS))
                        + " (default: none)")
    p.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                   help="share of the labelled nodes of each class held out for validation (default: 0.2)")
    p.add_argument("--epochs", type=int, default=None, help="GNN training epochs (default: the detector's)")
    p.add_argument("--device", default="cpu", help="torch device for the GNN (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, detector and augmenter (default: 0)")
    p.add_argument("--out", required=True, metavar="FILE", help="scores CSV: id, score, rank, flag")
    p.add_argument("--save-model", default=None, metavar="DIR", help="save the fitted model to DIR (pygad score)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="PNG with the score histogram (anomalies, normals, unknown) and the validation PR curve")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no report")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``pygad detect``: fit, score and write the outputs; exit code 0."""
    from ..models.pipeline import detect_tables

    detect_tables(args.nodes, args.edges, id=args.id, label=args.label, time=args.time, weight=args.weight,
                  src=args.src, dst=args.dst, target=args.target, exclude=args.exclude, detector=args.detector,
                  augment=args.augment, seed=args.seed, val_fraction=args.val_fraction, epochs=args.epochs,
                  device=args.device, out=args.out, save_model=args.save_model, plot=args.plot, quiet=args.quiet)
    return 0
