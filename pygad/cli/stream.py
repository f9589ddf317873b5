"""The ``pygad stream`` subcommands, ``detect`` and ``drift``.

``pygad stream``: ``detect`` scores a CSV/Parquet time series (:func:`pygad.stream.detect.detect`),
``drift`` runs the rotated-digits drift experiment (:mod:`pygad.stream.experiment`).

Cheap to import: numba, pandas and matplotlib load in the run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..stream.detect import DEFAULT_ALARM_PROBA, DEFAULT_DETECTOR, DETECTORS


def _add_drift_options(p, alias: bool = False) -> None:
    # as an alias on ``pygad stream`` itself: hidden, and absent from the namespace unless given
    def add(*names, **kw):
        if alias:
            kw["help"] = argparse.SUPPRESS
            kw["default"] = argparse.SUPPRESS
        p.add_argument(*names, **kw)
    add("--data", type=Path, default=None,
        help="an MNIST .npz (x uint8 [N, 28, 28], y) "
             "(default: scikit-learn's bundled 8x8 digits, sklearn.datasets.load_digits)")
    add("--digits", default="0,1,7,4", help="normal digit of each segment (default 0,1,7,4)")
    add("--segment-len", type=int, default=2000, help="samples per segment (default 2000)")
    add("--anomaly-rate", type=float, default=0.05, help="anomaly rate (default 0.05)")
    add("--max-angle", type=float, default=45.0, help="max rotation in degrees (default 45)")
    add("--seed", type=int, default=0, help="random seed (default 0)")
    add("--no-hst", action="store_true", default=False,
        help="skip river's HalfSpaceTrees (slow, needs river)")
    add("--plot", type=Path, default=None, help="write a PNG of scores, threshold, change points")
    add("--json", type=Path, default=None, help="write the results as JSON ('-' = stdout)")
    add("--quiet", action="store_true", default=False, help="no progress bar")


_DRIFT_DESCRIPTION = (
    "Drift experiment (Sankararaman & Narayanaswamy, NeurIPS 2023) on real handwritten digits: "
    "one rotated digit is normal, other digits are anomalies, the normal digit switches at "
    "change points. Compares pygad's ClippedSGDSubspace() and ClippedSGDMean(score_clip=3) "
    "with unclipped SGD (1/t and constant rate), a sliding-window mean and river's HalfSpaceTrees; prints AUC/AP per segment and "
    "recovery after each change. Default data: scikit-learn's bundled 8x8 digits; --data "
    "selects a 28x28 MNIST archive.")

_DETECT_DESCRIPTION = (
    "Score every row of a CSV or Parquet time series (one or more value columns, optionally one "
    "series per --key) with a clipped-SGD stream detector, prequentially: each row is scored "
    "against the state before it, then learned. Writes --out (CSV: the time, key and value "
    "columns, score, probability, flag = probability >= --alarm-proba and score >= "
    "--alarm-score) in input order. Rows "
    "are processed in file order; timestamps must strictly increase per key. With --state the "
    "detector is loaded from and saved to an archive, so a later run continues exactly where "
    "this one stopped. On any input error nothing is written and the exit code is 2.")


def _add_detect_options(p) -> None:
    p.add_argument("file", metavar="FILE", help="input table: .csv (or .csv.gz) or .parquet")
    p.add_argument("--time", required=True, metavar="COL",
                   help="time column: ISO-8601 date/times or numbers (e.g. unix seconds)")
    p.add_argument("--value", required=True, nargs="+", metavar="COL",
                   help="value column(s) scored together as one multivariate row")
    p.add_argument("--key", default=None, metavar="COL",
                   help="key column: one independent detector state per key (rows may interleave)")
    p.add_argument("--detector", default=None, metavar="NAME",
                   help=f"{' | '.join(DETECTORS)} (default {DEFAULT_DETECTOR}; with an existing "
                        "--state: the saved one)")
    p.add_argument("--lags", type=int, default=None,
                   help="forecaster: past values the forecast uses (default 8)")
    p.add_argument("--season", default=None, metavar="day|week|hour|none|N",
                   help="forecaster: the period whose phases get their own envelope of values: "
                        "hour, day or week of the timestamps (numbers are taken as seconds), "
                        "a period of N rows per key, or none (default: the forecaster's, day)")
    p.add_argument("--rank", type=int, default=None,
                   help="subspace: dimension of the subspace (default: the subspace's own, "
                        "min(24, value columns // 2))")
    p.add_argument("--alarm-proba", type=float, default=DEFAULT_ALARM_PROBA, metavar="P",
                   help="flag rows whose anomaly probability is >= P "
                        f"(default {DEFAULT_ALARM_PROBA})")
    p.add_argument("--alarm-score", type=float, default=None, metavar="S",
                   help="and whose score is >= S (default: 0.05 for the forecaster, whose "
                        "score is scale-free; 0 for the others)")
    p.add_argument("--out", required=True, type=Path, metavar="SCORES.csv",
                   help="output CSV, written atomically")
    p.add_argument("--state", type=Path, default=None, metavar="STATE.npz",
                   help="detector archive: loaded if it exists, saved (atomically) after the run")
    p.add_argument("--plot", type=Path, default=None, metavar="PLOT.png",
                   help="PNG of the values with flagged rows and the score/probability "
                        "(keyed input: the key with the most flags); needs matplotlib")
    p.add_argument("--chunk-size", type=int, default=50_000, metavar="N",
                   help="rows per detector call (default 50000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``stream`` subcommand (``detect``, ``drift``) and its options on ``subparsers``."""
    p = subparsers.add_parser(
        "stream", help="stream anomaly detection: score a CSV/Parquet time series (detect); "
                       "drift experiment (drift)",
        description="Clipped-SGD stream anomaly detection. `pygad stream detect FILE ...` scores "
                    "a table; `pygad stream drift` runs the drift experiment (`pygad stream "
                    "[drift options]` is the same as `pygad stream drift`).")
    _add_drift_options(p, alias=True)
    sub = p.add_subparsers(dest="stream_command", metavar="SUBCOMMAND")
    det = sub.add_parser("detect", help="score a CSV/Parquet time series: score, probability, flag",
                         description=_DETECT_DESCRIPTION)
    _add_detect_options(det)
    det.set_defaults(func=run_detect)
    dr = sub.add_parser("drift", help="rotated-digits drift experiment: clipped SGD vs baselines",
                        description=_DRIFT_DESCRIPTION)
    _add_drift_options(dr)
    dr.set_defaults(func=run_drift)
    p.set_defaults(func=run, _stream_parsers=(p, det, dr))
    return p


def _drift_dests() -> dict:
    p = argparse.ArgumentParser(add_help=False)
    _add_drift_options(p)
    return vars(p.parse_args([]))


def run(args) -> int:
    """``pygad stream``: with drift options, the drift experiment; bare, the help of both subcommands (exit 2)."""
    defaults = _drift_dests()
    if any(k in vars(args) for k in defaults):
        for k, v in defaults.items():
            if not hasattr(args, k):
                setattr(args, k, v)
        return run_drift(args)
    parsers = getattr(args, "_stream_parsers", None)
    if parsers:
        print(parsers[0].format_help())
        for sp in parsers[1:]:
            print(sp.format_help())
    return 2


def run_drift(args) -> int:
    """Run ``pygad stream drift``: print the table (and write ``--json``/``--plot``); exit code 0, or 2 on bad options."""
    from ..stream import experiment as E
    me = "pygad stream drift"
    from .. import _validate as V
    from ..errors import PygadError
    try:   # every argument checked before the (minutes-long) run
        if args.data is not None:
            if not Path(args.data).exists():
                raise ValueError(f"data file not found: {args.data}")
            V.check_readable_file(args.data, "--data")
        try:
            digits = V.parse_int_list(args.digits, "--digits", low=0, high=9)
        except ValueError:
            raise ValueError(f"--digits must be comma-separated digits 0-9, got {args.digits!r}") from None
        if not 0.0 < args.anomaly_rate < 1.0:
            raise ValueError(f"--anomaly-rate must be in (0, 1), got {args.anomaly_rate}")
        if args.segment_len < 1:
            raise ValueError(f"--segment-len must be >= 1, got {args.segment_len}")
        if args.json is not None and str(args.json) != "-":
            V.check_writable_path(args.json, "--json")
        if args.plot is not None:
            V.check_writable_path(args.plot, "--plot")
    except (PygadError, ValueError) as exc:
        print(f"{me}: {exc}", file=sys.stderr)
        return 2
    try:
        out = E.run_experiment(args.data, digits=digits, segment_len=args.segment_len,
                               anomaly_rate=args.anomaly_rate, max_angle=args.max_angle,
                               seed=args.seed, hst=not args.no_hst, progress=not args.quiet)
    except PygadError as exc:   # e.g. --data is not an image archive
        print(f"{me}: {exc}", file=sys.stderr)
        return 2
    cfg = out["config"]
    if str(args.json) != "-":
        print(f"rotated digits from {cfg['data']}, normal digits {cfg['digits']}, {cfg['n']} "
              f"samples, {cfg['n_anomalies']} anomalies, change points {cfg['change_points']}, "
              f"seed {cfg['seed']}")
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


def run_detect(args) -> int:
    """Run ``pygad stream detect``; exit code 0, or 2 with a one-line message on any input error."""
    from ..stream.detect import _detect
    from ..stream.io import InputError
    try:
        return _detect(args)
    except InputError as exc:
        print(f"pygad stream detect: {exc}", file=sys.stderr)
        return 2
