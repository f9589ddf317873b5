"""The ``pygad`` command.

Each subcommand lives beside the code it drives and exposes ``add_parser(subparsers)``, which
registers an argparse sub-parser whose ``func(args) -> int`` runs it. Sub-parser modules must
be cheap to import (no numba/torch at import time) so ``pygad --help`` stays fast.

A user error (a :class:`pygad.errors.PygadError`, ``ValueError`` or ``OSError`` raised by a
subcommand) is printed as one line ``pygad: error: <message>`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (subcommand module, attribute) in the order shown by --help
SUBCOMMANDS = [
    "pygad.evaluation_cli",   # pygad evaluate
    "pygad.augment_cli",      # pygad augment, pygad demo
    "pygad.stream.cli",       # pygad stream
    "pygad.cli.detect",       # pygad detect (the user's own tables)
    "pygad.cli.score",        # pygad score (a saved model on new tables)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pygad", description="Graph and stream anomaly detection with a native C++/CUDA core.")
    parser.add_argument("--version", action="store_true", help="print version and build configuration")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module: surface it
                raise
            continue  # subcommand not part of this build yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
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
    except (ValueError, OSError) as exc:  # PygadError's subclasses are among these
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"pygad: error: {msg}", file=sys.stderr)
        return 2
    except Exception as exc:
        from ..errors import PygadError
        if not isinstance(exc, PygadError):
            raise
        print(f"pygad: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
