"""``pygad score``: score new node/edge tables with a model saved by ``pygad detect --save-model``.

Cheap to import (argparse only); the work is :func:`pygad.models.pipeline.score_tables`.
"""
from __future__ import annotations

import argparse

from .detect import add_table_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``score`` subcommand and its options on ``subparsers``."""
    p = subparsers.add_parser(
        "score", help="score new tables (new nodes welcome) with a saved detector",
        description="Load a model directory written by 'pygad detect --save-model' (no code is run from it) and "
                    "write id, score, rank, flag for every target node of the given tables, flagged at the "
                    "model's threshold. The tables need the model's node types, relations and feature columns "
                    "(extra columns are ignored); nodes unseen in training are scored like any other.")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory")
    add_table_options(p, defaults_from_model=True)
    p.add_argument("--device", default=None, help="torch device for a GNN model (default: the one it was fitted on)")
    p.add_argument("--out", required=True, metavar="FILE", help="scores CSV: id, score, rank, flag")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no report")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``pygad score``: score the tables with the saved model and write the outputs; exit code 0."""
    from ..models.pipeline import score_tables

    score_tables(args.model, args.nodes, args.edges, id=args.id, time=args.time, weight=args.weight, src=args.src,
                 dst=args.dst, device=args.device, out=args.out, quiet=args.quiet)
    return 0
