"""The ``pygad`` command: one module per subcommand, each exposing ``add_parser(subparsers)``.

A subcommand module registers its sub-parser with ``set_defaults(func=run)``; ``run(args)``
returns the exit code. Modules are cheap to import (argparse only: torch, numba and the models
load inside ``run``) so ``pygad --help`` stays fast.

User errors (``ValueError``, ``OSError`` and :class:`pygad.errors.PygadError`) end the command
with one line ``pygad: error: <message>`` on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand modules, in the order ``--help`` lists them
SUBCOMMANDS = ("detect", "score", "evaluate", "augment", "demo", "stream")


def _user_errors() -> tuple:
    errors = (ValueError, OSError)
    try:
        from ..errors import PygadError
    except ImportError:
        return errors
    return errors + (PygadError,)


def build_parser() -> argparse.ArgumentParser:
    """The ``pygad`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="pygad", description="Graph and stream anomaly detection with a native C++/CUDA core.")
    parser.add_argument("--version", action="store_true", help="print version and build configuration")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``pygad`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import pygad
        print(f"pygad {pygad.__version__}")
        for k, v in pygad.build_config().items():
            print(f"  {k}: {v}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"pygad: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


__all__ = ["main", "build_parser", "SUBCOMMANDS"]
