"""``pygad stream detect`` as a library function.

Score a CSV/Parquet time series with a clipped-SGD stream detector, prequentially, and
write the scores (see :func:`detect`).

Cheap to import: numba, pandas and matplotlib load in the run.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time as _time
from dataclasses import dataclass
from types import SimpleNamespace


@dataclass(frozen=True)
class Detector:
    """A ``--detector`` choice: its estimator class, timestamp use and settable parameters.

    A ``--detector`` choice: the estimator class in :mod:`pygad.stream` (built with its
    defaults plus the options given), whether its calls take timestamps ``t=``, and the
    constructor parameters settable from the command line (``--lags``, ``--season``,
    ``--rank``), and the smallest score it flags (``--alarm-score``'s default).
    """
    class_name: str
    takes_t: bool = False
    options: tuple = ()
    alarm_score: float = 0.0


DETECTORS = {
    # the forecaster's novelty score is scale-free: 0.05 is about where one threshold scores
    # best over the NAB corpus (0.06 with the daily season; 0.01 without)
    "forecaster": Detector("ClippedSGDForecaster", takes_t=True, options=("lags", "season"),
                           alarm_score=0.05),
    "mean": Detector("ClippedSGDMean"),
    "subspace": Detector("ClippedSGDSubspace", options=("rank",)),
}
DEFAULT_DETECTOR = "forecaster"
DEFAULT_ALARM_PROBA = 0.9997
CLI_FORMAT = "pygad.stream.cli/1"   # tags the bookkeeping in --state archives (stored: never change it)
OUTPUT_COLUMNS = ("score", "probability", "flag")


def _detector_class(name: str):
    import pygad.stream as ps
    return getattr(ps, DETECTORS[name].class_name, None)


def detect(file, *, time, value, out, key=None, detector=None, lags=None, season=None, rank=None,
           alarm_proba: float = DEFAULT_ALARM_PROBA, alarm_score=None, state=None, plot=None,
           chunk_size: int = 50_000, quiet: bool = False) -> int:
    """Score every row of ``file`` and write ``out``: the options of ``pygad stream detect``.

    Each row is scored against the state before it, then learned. ``out`` (CSV) holds the time,
    key and value columns, ``score``, ``probability`` and ``flag`` (probability >=
    ``alarm_proba`` and score >= ``alarm_score``) in input order, written atomically; with
    ``state`` the detector is loaded from and saved to that archive, so a later run continues
    where this one stopped. Prints a one-line summary.

    Args:
        file: input table (.csv, .csv.gz or .parquet).
        time: time column (ISO-8601 date/times or numbers); must strictly increase per key.
        value: value column names, scored together as one row.
        out: output CSV path.
        key: key column (one independent detector state per key), or None.
        detector: a key of :data:`DETECTORS` (default: ``forecaster``, or the saved one).
        lags: detector option (see ``pygad stream detect --help``).
        season: detector option (see ``pygad stream detect --help``).
        rank: detector option (see ``pygad stream detect --help``).
        alarm_proba: the flag rule's probability threshold.
        alarm_score: the flag rule's score threshold (default: the detector's).
        state: detector archive (loaded if it exists, saved after the run), or None.
        plot: PNG path of the values, flags, scores and probabilities, or None.
        chunk_size: rows per detector call.
        quiet: no progress bar.

    Returns:
        0.

    Raises:
        pygad.stream.io.InputError: on any input error (nothing is written then).
    """
    args = SimpleNamespace(file=file, time=time, value=list(value), out=out, key=key, detector=detector,
                           lags=lags, season=season, rank=rank, alarm_proba=alarm_proba,
                           alarm_score=alarm_score, state=state, plot=plot, chunk_size=chunk_size,
                           quiet=quiet)
    return _detect(args)


_NOT_GIVEN = object()


def _parse_season(s):
    """``--season`` as the forecaster's ``season`` (``none`` -> None); _NOT_GIVEN if omitted."""
    from .io import InputError
    if s is None:
        return _NOT_GIVEN
    if s.lower() == "none":
        return None
    if s in ("hour", "day", "week"):
        return s
    try:
        n = int(s)
    except ValueError:
        n = 0
    if n < 2:
        raise InputError(f"--season must be hour, day, week, none or a period of N >= 2 rows, "
                         f"got {s!r}")
    return n


def _check_target(path, what, input_path) -> None:
    from .io import InputError
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{what} {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{what} {path} is a folder")
    if os.path.exists(input_path) and os.path.exists(path) and os.path.samefile(path, input_path):
        raise InputError(f"{what} {path} would overwrite the input file")


def _load_state(path):
    """(detector name, params, state dict, bookkeeping dict or None) of an existing archive."""
    from . import state as S
    from .io import InputError
    try:
        st = S.load_file(path)
        class_name, params, arrays = S.unpack(st)
    except (ValueError, KeyError, OSError) as exc:
        raise InputError(f"--state {path}: {' '.join(str(exc).split())}") from None
    names = [n for n, d in DETECTORS.items() if d.class_name == class_name]
    if not names:
        raise InputError(f"--state {path} holds a {class_name}; stream detect uses "
                         f"{', '.join(d.class_name for d in DETECTORS.values())}")
    book = None
    if "cli_format" in arrays:
        if str(arrays["cli_format"]) != CLI_FORMAT:
            raise InputError(f"--state {path}: unknown bookkeeping format "
                             f"{str(arrays['cli_format'])!r} (written by a newer pygad?)")
        book = {k: arrays[k] for k in arrays if k.startswith("cli_")}
        need = {"cli_time_kind": "U", "cli_key_column": "U", "cli_last_time": "iuf", "cli_count": "iu"}
        for k, kinds in need.items():
            if k not in book or book[k].dtype.kind not in kinds:
                raise InputError(f"--state {path}: bookkeeping entry {k!r} is missing or malformed")
        if book["cli_last_time"].shape != book["cli_count"].shape or book["cli_count"].ndim != 1:
            raise InputError(f"--state {path}: bookkeeping entries 'cli_last_time'/'cli_count' disagree")
        keyed = str(book["cli_key_column"]) != ""
        if keyed and ("cli_keys" not in book or book["cli_keys"].shape != book["cli_count"].shape):
            raise InputError(f"--state {path}: bookkeeping entry 'cli_keys' is missing or malformed")
    return names[0], params, st, book


def _cumcount(codes):
    """Position of each row among the earlier rows of its key (0, 1, 2, ...)."""
    import numpy as np
    n = codes.shape[0]
    order = np.lexsort((np.arange(n), codes))
    sc = codes[order]
    start = np.ones(n, bool)
    start[1:] = sc[1:] != sc[:-1]
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(start, idx, 0))
    out = np.empty(n, np.int64)
    out[order] = idx - first
    return out


def _detect(args) -> int:
    import numpy as np

    from . import io as tio
    from .io import InputError
    t_start = _time.perf_counter()

    # ---- options (nothing read yet)
    if not 0.0 <= args.alarm_proba <= 1.0:
        raise InputError(f"--alarm-proba must be in [0, 1], got {args.alarm_proba}")
    if args.chunk_size < 1:
        raise InputError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.detector is not None and args.detector not in DETECTORS:
        raise InputError(f"unknown --detector {args.detector!r}; choose from "
                         f"{', '.join(DETECTORS)}")
    if args.lags is not None and args.lags < 1:
        raise InputError(f"--lags must be >= 1, got {args.lags}")
    if args.rank is not None and args.rank < 1:
        raise InputError(f"--rank must be >= 1, got {args.rank}")
    season = _parse_season(args.season)
    given = {k: v for k, v in (("lags", args.lags), ("rank", args.rank)) if v is not None}
    if season is not _NOT_GIVEN:
        given["season"] = season
    clash = sorted(set(OUTPUT_COLUMNS) & {args.time, args.key, *args.value})
    if clash:
        raise InputError(f"input column {clash[0]!r} has the name of an output column "
                         f"({', '.join(OUTPUT_COLUMNS)}); rename it")
    if not os.path.exists(args.file):
        raise InputError(f"{args.file}: no such file")
    _check_target(args.out, "--out", args.file)
    if args.plot is not None:
        _check_target(args.plot, "--plot", args.file)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install matplotlib") from None
    if args.state is not None:
        _check_target(args.state, "--state", args.file)
    if tio.is_parquet(args.file):
        tio.require_pyarrow()

    # ---- the saved state, if any
    saved = None
    if args.state is not None and os.path.exists(args.state):
        saved = _load_state(args.state)
        name, params = saved[0], saved[1]
        if args.detector is not None and args.detector != name:
            raise InputError(f"--state {args.state} holds a {name} detector, not --detector "
                             f"{args.detector}; omit --detector or use another --state")
    else:
        name, params = args.detector or DEFAULT_DETECTOR, None
    spec = DETECTORS[name]
    for opt, val in given.items():
        if opt not in spec.options:
            users = [n for n, d in DETECTORS.items() if opt in d.options]
            raise InputError(f"--{opt} applies to --detector {' or '.join(users)}, not {name}")
        if params is not None and params.get(opt) != val:
            raise InputError(f"--{opt} {_opt_text(val)} does not match the saved detector in "
                             f"--state {args.state} ({opt}={params.get(opt)!r}); omit --{opt} "
                             "to continue it")
    cls = _detector_class(name)
    if cls is None:
        raise InputError(f"--detector {name} needs pygad.stream.{spec.class_name}, which this "
                         "pygad does not have; upgrade pygad or choose another --detector")

    # ---- the table
    t_read = _time.perf_counter()
    table = tio.read_table(args.file, args.time, args.value, args.key)
    n, d = table.values.shape
    book = saved[3] if saved else None
    last = {}
    counts = {}
    if saved is not None:
        st = saved[2]
        if "vectors" in st and st["vectors"].shape[-1] != d:
            raise InputError(f"--state {args.state} was built on {st['vectors'].shape[-1]} value "
                             f"column(s); this run has {d} ({', '.join(args.value)})")
    if book is not None:
        was_keyed = str(book["cli_key_column"]) != ""
        if was_keyed != (args.key is not None):
            raise InputError(f"--state {args.state} was built "
                             + ("with --key " + repr(str(book['cli_key_column'])) if was_keyed
                                else "without --key")
                             + "; this run must " + ("use one too" if was_keyed else "not use one"))
        kind = str(book["cli_time_kind"])
        if kind != table.time_kind:
            raise InputError(f"--state {args.state} was built from {kind} timestamps; column "
                             f"{args.time!r} of {args.file} holds {table.time_kind} ones")
        bkeys = [None] if not was_keyed else [str(k) for k in book["cli_keys"]]
        last = dict(zip(bkeys, book["cli_last_time"].tolist()))
        counts = dict(zip(bkeys, book["cli_count"].tolist()))
    tio.check_time_order(table, last, f"--state {args.state}")
    read_s = _time.perf_counter() - t_read

    # ---- the detector
    if saved is not None:
        try:
            det = cls().load_state_dict(saved[2])
        except ValueError as exc:   # pygad.InvalidArchiveError: a field failed validation
            raise InputError(f"--state {args.state}: {' '.join(str(exc).split())}") from None
    else:
        try:
            det = cls(**given)
        except (TypeError, ValueError) as exc:
            raise InputError(f"--detector {name}: {exc}") from None
    keys_all = table.keys
    if keys_all is None:
        codes, uniq = np.zeros(n, np.int64), [None]
    else:
        u, codes = np.unique(keys_all, return_inverse=True)
        codes = codes.reshape(-1)
        uniq = [str(k) for k in u]
    t_arg = None
    if spec.takes_t:
        per = getattr(det, "season", None)
        if isinstance(per, (int, np.integer)) and not isinstance(per, bool):
            base = np.array([counts.get(k, 0) for k in uniq], np.int64)
            t_arg = (base[codes] + _cumcount(codes)).astype(np.float64)   # row index per key
        elif per is not None:
            t_arg = table.time_for_detector()

    scores = np.empty(n, np.float64)
    proba = np.empty(n, np.float64)
    bar = _progress(n, args.quiet)
    t_det = _time.perf_counter()
    try:
        for a in range(0, n, args.chunk_size):
            b = min(n, a + args.chunk_size)
            kw = {} if keys_all is None else {"keys": keys_all[a:b].tolist()}
            if t_arg is not None:
                kw["t"] = t_arg[a:b]
            s, p = det.process_many(table.values[a:b], proba=True, **kw)
            scores[a:b] = s
            proba[a:b] = p
            bar.update(b - a)
    except ValueError as exc:
        raise InputError(f"the detector refused {args.file}: "
                         f"{' '.join(str(exc).split())}") from None
    finally:
        bar.close()
    det_s = _time.perf_counter() - t_det
    alarm_score = (spec.alarm_score if args.alarm_score is None
                   else args.alarm_score)
    flags = ((proba >= args.alarm_proba) & (scores >= alarm_score)).astype(np.int8)

    # ---- bookkeeping for the next run: last timestamp and row count per key
    order = np.lexsort((np.arange(n), codes))
    ends = np.ones(n, bool)
    ends[:-1] = codes[order[1:]] != codes[order[:-1]]
    last_rows = order[ends]
    per_key_n = np.bincount(codes, minlength=len(uniq))
    for r in last_rows:
        k = uniq[codes[r]]
        last[k] = table.time[r]
        counts[k] = counts.get(k, 0) + int(per_key_n[codes[r]])

    # ---- outputs: temp files beside the targets, renamed at the end
    temps = []
    try:
        out_tmp = _temp_beside(args.out, ".csv")
        temps.append(out_tmp)
        _write_scores(out_tmp, table, scores, proba, flags)
        plot_key = None
        if args.plot is not None:
            plot_tmp = _temp_beside(args.plot, ".png")
            temps.append(plot_tmp)
            plot_key = _plot(plot_tmp, table, scores, proba, flags, args.alarm_proba,
                             f"{name} {_describe(det, spec)}", alarm_score)
        if args.state is not None:
            from . import state as S
            st = det.state_dict()
            ks = list(last)
            st["cli_format"] = np.array(CLI_FORMAT)
            st["cli_time_kind"] = np.array(table.time_kind)
            st["cli_key_column"] = np.array(args.key or "")
            st["cli_value_columns"] = np.array(list(args.value), dtype=str)
            if args.key is not None:
                st["cli_keys"] = np.array(ks, dtype=str)
            dt = np.int64 if table.time_kind == "datetime" else np.float64
            st["cli_last_time"] = np.array([last[k] for k in ks], dtype=dt)
            st["cli_count"] = np.array([counts[k] for k in ks], dtype=np.int64)
            S.save_atomic(args.state, st)
        os.replace(out_tmp, args.out)
        temps.remove(out_tmp)
        if args.plot is not None:
            os.replace(plot_tmp, args.plot)
            temps.remove(plot_tmp)
    finally:
        for tmp in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    # ---- summary
    total_s = _time.perf_counter() - t_start
    n_flag = int(flags.sum())
    n_keys = 1 if keys_all is None else len(uniq)
    keys_txt = f"{n_keys:,} keys ({args.key})" if keys_all is not None else "no key"
    parts = [f"{os.path.basename(args.file)}: {n:,} rows, {d} value column{'s' if d > 1 else ''} "
             f"({', '.join(args.value)}), {keys_txt}; detector {name} ({_describe(det, spec)})"
             + (f" resumed from {args.state}" if saved is not None else "")
             + f"; {n_flag:,} rows flagged ({n_flag / n:.2%}) at probability >= {args.alarm_proba}"
             + (f" and score >= {alarm_score}" if alarm_score > 0 else "")
             + (f" in {int((np.bincount(codes, weights=flags) > 0).sum()):,} keys"
                if keys_all is not None else "")
             + f"; {total_s:.2f} s ({read_s:.2f} s reading, {det_s:.2f} s detecting: "
             f"{n / max(det_s, 1e-9):,.0f} rows/s). Scores written to {args.out}"]
    if args.state is not None:
        parts.append(f"state saved to {args.state}")
    if args.plot is not None:
        parts.append(f"plot written to {args.plot}"
                     + (f" (key {plot_key!r})" if plot_key is not None else ""))
    print("; ".join(parts) + ".")
    return 0


def _opt_text(v) -> str:
    return "none" if v is None else str(v)


def _describe(det, spec) -> str:
    p = det.get_params()
    shown = [f"{k}={p[k]!r}" for k in spec.options if p.get(k) is not None]
    return ", ".join(shown) if shown else "defaults"


class _NoBar:
    def update(self, k):
        pass

    def close(self):
        pass


def _progress(n, quiet):
    isatty = getattr(sys.stderr, "isatty", None)
    if quiet or not (isatty and isatty()):
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=n, unit="row", unit_scale=True, file=sys.stderr, desc="pygad stream detect",
                leave=False)


def _temp_beside(path, suffix) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def _write_scores(path, table, scores, proba, flags) -> None:
    import csv
    cols = [table.time_name] + ([table.key_name] if table.key_name is not None else []) \
        + list(table.value_names)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols + list(OUTPUT_COLUMNS))
        w.writerows(zip(*(table.text[c] for c in cols), map(repr, scores.tolist()),
                        map(repr, proba.tolist()), flags.tolist()))
        f.flush()
        os.fsync(f.fileno())


def _plot(path, table, scores, proba, flags, alarm, detector_txt, alarm_score=0.0):
    """Values with flagged rows marked; score; probability (as -log10(1 - p)).

    Returns the key plotted (keyed input: the one with the most flags), else None.
    """
    import numpy as np
    from matplotlib.figure import Figure
    rows = np.arange(table.n_rows)
    key = None
    if table.keys is not None:
        u, codes = np.unique(table.keys, return_inverse=True)
        codes = codes.reshape(-1)
        nflag = np.bincount(codes, weights=flags, minlength=len(u))
        nrow = np.bincount(codes, minlength=len(u))
        best = int(np.lexsort((-nrow, -nflag))[0])
        key = str(u[best])
        rows = np.flatnonzero(codes == best)
    t = table.time[rows]
    x = t.view("datetime64[ns]") if table.time_kind == "datetime" else t
    f = flags[rows].astype(bool)
    fig = Figure(figsize=(12, 7.5))
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1, 1]})
    ax = axes[0]
    for j, c in enumerate(table.value_names):
        v = table.values[rows, j]
        ax.plot(x, v, lw=0.8, label=c, zorder=1)
        if f.any():
            ax.scatter(x[f], v[f], s=28, facecolors="none", edgecolors="tab:red", lw=1.4,
                       zorder=3, label="flagged" if j == 0 else None)
    ax.set_ylabel("value")
    ax.legend(loc="upper right", fontsize=8)
    title = f"{os.path.basename(table.path)}"
    if key is not None:
        title += (f", key {key!r} (the key with the most flags: {int(f.sum()):,} of "
                  f"{len(rows):,} rows)")
    else:
        title += f": {int(f.sum()):,} of {len(rows):,} rows flagged"
    rule = f"probability >= {alarm}" + (f" and score >= {alarm_score}" if alarm_score > 0 else "")
    ax.set_title(f"{title}\ndetector {detector_txt}; flag = {rule}", fontsize=10)
    ax = axes[1]
    ax.plot(x, scores[rows], lw=0.8, c="tab:gray")
    if f.any():
        ax.scatter(x[f], scores[rows][f], s=12, c="tab:red", zorder=3)
    ax.set_ylabel("score")
    ax = axes[2]
    nines = -np.log10(np.clip(1.0 - proba[rows], 1e-12, 1.0))
    ax.plot(x, nines, lw=0.8, c="tab:purple")
    if alarm < 1.0:
        ax.axhline(-np.log10(max(1.0 - alarm, 1e-12)), c="tab:red", ls="--", lw=0.9,
                   label=f"alarm: probability {alarm}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylabel("-log10(1 - probability)")
    ax.set_xlabel(table.time_name)
    if table.time_kind == "datetime":
        fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    return key
