"""``pygad stream``: the rotated-MNIST drift experiment (cheap to import: numba loads in run)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "stream", help="drift experiment: clipped-SGD stream anomaly detection vs baselines",
        description="Rotated-MNIST drift experiment (Sankararaman & Narayanaswamy, NeurIPS 2023): "
                    "one rotated digit is normal, other digits are anomalies, the normal digit "
                    "switches at change points. Compares pygad's ClippedSGDMean() with unclipped "
                    "SGD (1/t and constant rate), a sliding-window mean and river's "
                    "HalfSpaceTrees; prints AUC/AP per segment and recovery after each change.")
    p.add_argument("--data", type=Path, default=None,
                   help="mnist_mlxtend5k.npz (default: ../shared/data beside the checkout)")
    p.add_argument("--digits", default="0,1,7,4", help="normal digit of each segment (default 0,1,7,4)")
    p.add_argument("--segment-len", type=int, default=2000, help="samples per segment (default 2000)")
    p.add_argument("--anomaly-rate", type=float, default=0.05, help="anomaly rate (default 0.05)")
    p.add_argument("--max-angle", type=float, default=45.0, help="max rotation in degrees (default 45)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-hst", action="store_true", help="skip river's HalfSpaceTrees (slow, needs river)")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of scores, threshold, change points")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON ('-' = stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import sys

    from . import experiment as E
    data = args.data or E.DEFAULT_DATA
    if not Path(data).exists():
        print(f"pygad stream: data file not found: {data}", file=sys.stderr)
        return 2
    try:
        digits = tuple(int(d) for d in str(args.digits).split(","))
    except ValueError:
        digits = ()
    if not digits or any(not 0 <= d <= 9 for d in digits):
        print(f"pygad stream: --digits must be comma-separated digits 0-9, got {args.digits!r}",
              file=sys.stderr)
        return 2
    if not 0.0 < args.anomaly_rate < 1.0:
        print(f"pygad stream: --anomaly-rate must be in (0, 1), got {args.anomaly_rate}", file=sys.stderr)
        return 2
    if args.segment_len < 1:
        print(f"pygad stream: --segment-len must be >= 1, got {args.segment_len}", file=sys.stderr)
        return 2
    out = E.run_experiment(data, digits=digits, segment_len=args.segment_len,
                           anomaly_rate=args.anomaly_rate, max_angle=args.max_angle,
                           seed=args.seed, hst=not args.no_hst, progress=not args.quiet)
    cfg = out["config"]
    if str(args.json) != "-":
        print(f"rotated MNIST, normal digits {cfg['digits']}, {cfg['n']} samples, "
              f"{cfg['n_anomalies']} anomalies, change points {cfg['change_points']}, seed {cfg['seed']}")
        if cfg.get("note"):
            print(cfg["note"])
        print(E.format_table(out))
        f = out["threshold_flags"]
        print(f"AdaptiveThreshold on pygad's scores: {f['flagged']} flagged, precision "
              f"{f['precision']:.2f}, recall {f['recall']:.2f}")
    if args.json is not None:
        if str(args.json) == "-":
            print(E.to_json(out))
        else:
            Path(args.json).write_text(E.to_json(out))
    if args.plot is not None:
        E.plot(out, args.plot)
        if str(args.json) != "-":
            print(f"plot written to {args.plot}")
    return 0
