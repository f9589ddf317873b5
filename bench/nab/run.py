"""Run anomaly detectors over the NAB corpus and print a quality table.

    python -P bench/nab/run.py [--data DIR] [--detectors a,b,c] [--json out.json] [--markdown]

Columns: NAB standard-profile score (0 = detect nothing, 100 = perfect), mean per-series
point ROC AUC, window recall at a 1% per-series false-alarm budget, median detection delay in
rows, and the detector's own run time in seconds (scoring excluded).

Adding a detector takes one line, anywhere that is imported before ``main`` runs::

    register("my-detector")(lambda values, timestamps: my_scores(values))

or as a decorator on a ``fn(values, timestamps) -> scores`` function. A detector that also
wants the series key or the NAB data folder declares keyword parameters ``name`` and/or
``data_root``; the harness passes whichever the function accepts.
"""
from __future__ import annotations

import argparse
import fnmatch
import inspect
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "nab"

# `python -P` leaves the script's folder off sys.path; the sibling modules live there.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import baselines
import scoring

Detector = Callable[..., np.ndarray]

#: name -> fn(values, timestamps[, *, name, data_root]) -> per-row scores
DETECTORS: dict[str, Detector] = {}


def register(name: str, fn: Detector | None = None):
    """Add a detector to :data:`DETECTORS`: ``register(name, fn)`` or ``@register(name)``."""

    def add(f: Detector) -> Detector:
        if name in DETECTORS:
            raise ValueError(f"detector {name!r} is already registered")
        DETECTORS[name] = f
        return f

    return add if fn is None else add(fn)


# ---- built-in entries -----------------------------------------------------------------------
register("rolling-z", baselines.rolling_zscore)
register("ewm-z", baselines.ewm_zscore)
register("river-gaussian", baselines.river_gaussian)
register("river-hst", baselines.river_hst)
for _det in baselines.PUBLISHED_DETECTORS:
    register(f"published:{_det}", baselines.published(_det))


def _lag_features(values):
    x = np.asarray(values, dtype=np.float64)
    return np.column_stack([x, np.diff(x, prepend=x[:1])])


@register("pygad-mean")
def pygad_mean(values, timestamps=None):
    """pygad's ClippedSGDMean (defaults) on [x_t, x_t - x_(t-1)]: its raw scores."""
    from pygad.stream import ClippedSGDMean
    return ClippedSGDMean(dtype="float64").process_many(_lag_features(values))


@register("pygad-mean-proba")
def pygad_mean_proba(values, timestamps=None):
    """The same detector's anomaly probability."""
    from pygad.stream import ClippedSGDMean
    return ClippedSGDMean(dtype="float64").process_many(_lag_features(values), proba=True)[1]


@register("pygad-forecaster")
def pygad_forecaster(values, timestamps=None):
    """pygad's ClippedSGDForecaster with its defaults on the raw series and its timestamps
    (the default daily season reads them): its scores."""
    from pygad.stream import ClippedSGDForecaster
    return ClippedSGDForecaster().process_many(np.asarray(values, np.float64)[:, None],
                                               t=timestamps)


@register("pygad-forecaster-proba")
def pygad_forecaster_proba(values, timestamps=None):
    """The same detector's anomaly probability."""
    from pygad.stream import ClippedSGDForecaster
    x = np.asarray(values, np.float64)[:, None]
    return ClippedSGDForecaster().process_many(x, t=timestamps, proba=True)[1]


@register("pygad-forecaster-no-season")
def pygad_forecaster_no_season(values, timestamps=None):
    """ClippedSGDForecaster(season=None): no seasonal envelope."""
    from pygad.stream import ClippedSGDForecaster
    return ClippedSGDForecaster(season=None).process_many(np.asarray(values, np.float64)[:, None])


# ---- running --------------------------------------------------------------------------------
def call_detector(fn: Detector, series: scoring.Series, data_root: Path) -> np.ndarray:
    """Run ``fn`` on one series, passing ``name``/``data_root`` if it takes them."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    extra = {}
    if "name" in params:
        extra["name"] = series.name
    if "data_root" in params:
        extra["data_root"] = data_root
    out = np.asarray(fn(series.values, series.timestamps, **extra), dtype=np.float64).reshape(-1)
    if out.shape[0] != len(series):
        raise ValueError(f"{series.name}: detector returned {out.shape[0]} scores for "
                         f"{len(series)} rows")
    return out


def _progress(items, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:
        print(f"[{desc}] {len(items)} series ...", file=sys.stderr, flush=True)
        return items
    return tqdm(items, desc=desc, leave=False, file=sys.stderr)


def evaluate(name: str, corpus: list[scoring.Series], data_root: Path) -> dict:
    """Run one registered detector over the corpus and compute every metric."""
    fn = DETECTORS[name]
    scores: dict[str, np.ndarray] = {}
    seconds = 0.0
    for s in _progress(corpus, name):
        t0 = time.perf_counter()
        scores[s.name] = call_detector(fn, s, data_root)
        seconds += time.perf_counter() - t0
    nab = scoring.nab_score(corpus, scores)
    auc = scoring.point_auc(corpus, scores)
    ev = scoring.event_recall_at_budget(corpus, scores, budget=0.01)
    return {
        "detector": name,
        "nab_standard": nab.score,
        "nab": nab.as_dict(),
        "point_auc": auc["mean"],
        "point_auc_per_category": auc["per_category"],
        "event_recall_1pct": ev["recall"],
        "median_delay": ev["median_delay"],
        "events_detected": ev["detected"],
        "events": ev["windows"],
        "seconds": seconds,
    }


def select(spec: str | None) -> list[str]:
    """Comma list of registry names or shell patterns (``published:*``); all when empty."""
    if not spec:
        return list(DETECTORS)
    chosen: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        hits = [n for n in DETECTORS if fnmatch.fnmatchcase(n, part)]
        if not hits:
            raise SystemExit(f"unknown detector {part!r}; known: {', '.join(DETECTORS)}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


COLUMNS = (
    ("detector", "detector", "{}"),
    ("nab_standard", "NAB std", "{:.1f}"),
    ("point_auc", "point-AUC", "{:.3f}"),
    ("event_recall_1pct", "recall@1%FA", "{:.3f}"),
    ("median_delay", "med delay", "{:.0f}"),
    ("seconds", "seconds", "{:.1f}"),
)


def _cell(row: dict, key: str, fmt: str) -> str:
    if "error" in row and key != "detector":
        return "ERROR" if key == "nab_standard" else ""
    v = row.get(key)
    if isinstance(v, float) and math.isnan(v):
        return "-"
    return fmt.format(v)


def format_table(rows: list[dict], markdown: bool = False) -> str:
    heads = [h for _, h, _ in COLUMNS]
    body = [[_cell(r, k, f) for k, _, f in COLUMNS] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|"]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(heads)]
    def fmt_line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt_line(heads), fmt_line(["-" * w for w in widths])]
    lines += [fmt_line(b) for b in body]
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return None if math.isnan(x) else (str(x) if math.isinf(x) else x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="NAB folder holding data/, labels/, published_scores/ "
                         "(default: ../shared/data/nab beside the repo)")
    ap.add_argument("--detectors", default=None,
                    help="comma-separated names or patterns (default: all); see --list")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--list", action="store_true", help="list the registered detectors")
    args = ap.parse_args(argv)

    if args.list:
        print("\n".join(DETECTORS))
        return 0
    data = args.data.resolve()
    if not (data / "labels" / "combined_windows.json").is_file() or not (data / "data").is_dir():
        print(f"error: NAB data not found under {data} (expected data/ and "
              "labels/combined_windows.json); pass --data DIR", file=sys.stderr)
        return 2
    names = select(args.detectors)
    corpus = scoring.load_corpus(data)
    n_rows = sum(len(s) for s in corpus)
    n_win = sum(len(s.windows) for s in corpus)
    print(f"NAB corpus: {len(corpus)} series, {n_rows} rows, {n_win} windows ({data})",
          file=sys.stderr)

    rows: list[dict] = []
    failed = False
    for name in names:
        try:
            rows.append(evaluate(name, corpus, data))
        except Exception as exc:  # noqa: BLE001 - keep going, report at the end
            failed = True
            print(f"error: detector {name!r} failed: {exc!r}", file=sys.stderr)
            rows.append({"detector": name, "error": repr(exc)})

    print(format_table(rows, markdown=args.markdown))
    if args.json is not None:
        payload = {"data": str(data), "series": len(corpus), "rows": n_rows,
                   "windows": n_win, "results": rows}
        args.json.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
