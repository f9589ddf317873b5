"""Reading and validating the tables that ``pygad stream detect`` scores.

:func:`read_table` reads the needed columns of a CSV (pandas when installed, else the
:mod:`csv` module) or Parquet file (pyarrow) and turns them into checked arrays: the value
columns as finite float64, the time column as datetime64[ns] (ISO strings, Parquet timestamps
or dates; offsets are converted to UTC) or as numbers, the key column as strings. Every
problem raises :class:`InputError` with one line that names the file, the 1-based data row
(the header is not a row) and the column. :func:`check_time_order` checks that timestamps
strictly increase per key. Nothing here imports numba.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
INSTALL_HINT = 'pip install "pygad[tables]"'


class InputError(ValueError):
    """A problem with the input table; ``str(exc)`` is one line for the user."""


@dataclass
class Table:
    """The checked columns of an input table, rows in file order."""
    path: str
    n_rows: int
    time_name: str
    time_kind: str                      # "datetime" (int64 ns since the epoch) or "numeric"
    time: np.ndarray                    # int64 ns (datetime) or float64 (numeric)
    value_names: list[str]
    values: np.ndarray                  # float64 [n, d]
    key_name: str | None = None
    keys: np.ndarray | None = None      # str [n]
    text: dict = field(default_factory=dict)   # column -> str [n] as written in the output

    def time_for_detector(self) -> np.ndarray:
        """Timestamps as the estimators take them: datetime64[ns] or float seconds."""
        return self.time.view("datetime64[ns]") if self.time_kind == "datetime" else self.time


def is_parquet(path) -> bool:
    """True when ``path`` has a Parquet suffix."""
    return os.fspath(path).lower().endswith(PARQUET_SUFFIXES)


def have_pandas() -> bool:
    """True when pandas can be imported."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def require_pyarrow():
    """The ``pyarrow.parquet`` module, or an InputError with the install hint."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"reading Parquet needs pyarrow: {INSTALL_HINT} (or pip install "
                         "pyarrow)") from None
    return pq


def format_time(kind: str, value) -> str:
    """A timestamp of a :class:`Table` as text (ISO-8601 to the second, or finer if needed)."""
    if kind == "datetime":
        v = np.datetime64(int(value), "ns")
        return np.datetime_as_string(v, unit="s" if int(value) % 10**9 == 0 else "auto")
    f = float(value)
    return str(int(f)) if f.is_integer() and abs(f) < 1e16 else repr(f)


# ------------------------------------------------------------------------------ raw reading
def _names(columns) -> str:
    return ", ".join(repr(str(c)) for c in columns)


def _check_columns(path, available, needed) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        what = "column" if len(missing) == 1 else "columns"
        raise InputError(f"{path}: no {what} {_names(missing)}; available columns: "
                         f"{_names(available)}")


def _read_csv_pandas(path, needed) -> tuple[int, dict]:
    import pandas as pd
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty (no header line)") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({_one_line(exc)})") from None
    _check_columns(path, [str(c) for c in header.columns], needed)
    try:
        df = pd.read_csv(path, usecols=list(needed), dtype=str, na_filter=False,
                         keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path}: not a readable CSV file ({_one_line(exc)})") from None
    cols = {}
    for c in needed:
        col = df[c]
        if col.isna().any():             # (na_filter=False gives "" for short rows; be sure)
            col = col.fillna("")
        cols[c] = col.to_numpy(dtype=object)
    return len(df), cols


def _read_csv_stdlib(path, needed) -> tuple[int, dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: the file is empty (no header line)")
            _check_columns(path, header, needed)
            idx = [header.index(c) for c in needed]
            out = [[] for _ in needed]
            width = len(header)
            for r, row in enumerate(reader, start=1):
                if not row:
                    continue                 # blank line (pandas skips them too)
                if len(row) > width:
                    raise InputError(f"{path}: data row {r} has {len(row)} fields, the header "
                                     f"has {width}")
                for j, i in enumerate(idx):
                    out[j].append(row[i] if i < len(row) else "")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a readable CSV file ({_one_line(exc)})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV file ({_one_line(exc)})") from None
    n = len(out[0]) if out else 0
    return n, {c: np.array(v, dtype=object) for c, v in zip(needed, out)}


def _read_parquet(path, needed) -> tuple[int, dict]:
    pq = require_pyarrow()
    import pyarrow as pa
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_one_line(exc)})") from None
    _check_columns(path, list(schema.names), needed)
    try:
        table = pq.read_table(path, columns=list(needed))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({_one_line(exc)})") from None
    cols = {}
    for c in needed:
        col = table.column(c)
        typ = col.type
        nulls = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else None
        if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
            arr = col.cast(pa.timestamp("ns", tz=getattr(typ, "tz", None))).to_numpy(
                zero_copy_only=False).astype("datetime64[ns]")
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ):
            arr = col.to_numpy(zero_copy_only=False)
            if nulls is not None:
                arr = np.where(nulls, np.nan, arr.astype(np.float64))
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ) \
                or pa.types.is_dictionary(typ):
            arr = np.array(["" if x is None else str(x) for x in col.to_pylist()], dtype=object)
            nulls = None                  # a null string is an empty cell
        else:
            raise InputError(f"{path}: column {c!r} has Parquet type {typ}, not numbers, strings "
                             "or timestamps")
        cols[c] = (arr, nulls)
    return table.num_rows, cols


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


# ------------------------------------------------------------------------------ conversion
def _first(mask) -> int:
    return int(np.flatnonzero(mask)[0])


def _cell_error(path, row, col, raw, what) -> InputError:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return InputError(f"{path}: data row {row + 1}, column {col!r}: empty cell")
    return InputError(f"{path}: data row {row + 1}, column {col!r}: {what}: {str(raw)!r}")


def _strings_to_float(v: np.ndarray, use_pandas: bool) -> np.ndarray:
    """float64 of string cells, NaN where a cell is not a number."""
    if use_pandas:
        import pandas as pd
        return pd.to_numeric(pd.Series(v, dtype=object), errors="coerce") \
            .to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.empty(v.shape[0], np.float64)
    for i, s in enumerate(v):
        try:
            out[i] = float(s)
        except (TypeError, ValueError):
            out[i] = np.nan
    return out


def to_values(path, name, raw, use_pandas) -> np.ndarray:
    """A value column as finite float64; an empty, non-numeric or NaN/inf cell is an error."""
    arr, nulls = raw if isinstance(raw, tuple) else (raw, None)
    if arr.dtype == object:
        x = _strings_to_float(arr, use_pandas)
        text = arr
    elif arr.dtype.kind in "iufb":
        x = arr.astype(np.float64)
        text = None
    else:
        raise InputError(f"{path}: column {name!r} holds {arr.dtype} values, not numbers")
    bad = ~np.isfinite(x)
    if nulls is not None:
        bad |= nulls
    if bad.any():
        r = _first(bad)
        cell = None if (nulls is not None and nulls[r]) else (text[r] if text is not None
                                                              else x[r])
        what = "not a finite number" if isinstance(cell, float) or (
            isinstance(cell, str) and _is_float(cell)) else "not a number"
        raise _cell_error(path, r, name, cell, what)
    return x


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _parse_datetimes(v: np.ndarray, use_pandas: bool) -> np.ndarray:
    """int64 ns since the epoch (UTC) of ISO-8601 strings; the int64 minimum where unparsable."""
    if use_pandas:
        import pandas as pd
        s = pd.Series(v, dtype=object).str.strip()
        try:
            t = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            t = None
        if t is not None:
            return t.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    return np.array([_parse_one_datetime(x) for x in v], dtype=np.int64)


def _parse_one_datetime(s) -> int:
    nat = np.iinfo(np.int64).min
    if not isinstance(s, str) or not s.strip():
        return nat
    s = s.strip()
    try:
        d = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        return nat
    if d.tzinfo is not None:
        d = d.astimezone(timezone.utc).replace(tzinfo=None)
    try:
        return int(np.datetime64(d, "ns").astype(np.int64))
    except (OverflowError, ValueError):
        return nat


def to_time(path, name, raw, use_pandas) -> tuple[str, np.ndarray]:
    """The time column as ("datetime", int64 ns) or ("numeric", float64).

    The first data row decides: a number makes the column numeric, anything else must parse
    as ISO-8601.
    """
    arr = raw[0] if isinstance(raw, tuple) else raw
    nat = np.iinfo(np.int64).min
    if arr.dtype.kind == "M":
        ns = arr.astype("datetime64[ns]").view(np.int64)
        bad = ns == nat
        if bad.any():
            raise _cell_error(path, _first(bad), name, None, "")
        return "datetime", ns
    if arr.dtype.kind in "iufb":
        return "numeric", to_values(path, name, raw, use_pandas)
    if arr.dtype != object:
        raise InputError(f"{path}: column {name!r} holds {arr.dtype} values, not timestamps")
    if arr.shape[0] == 0:
        return "numeric", np.zeros(0, np.float64)
    first = arr[0]
    if not isinstance(first, str) or not first.strip():
        raise _cell_error(path, 0, name, first, "")
    if _is_float(first.strip()) and math.isfinite(float(first)):
        return "numeric", to_values(path, name, raw, use_pandas)
    ns = _parse_datetimes(arr, use_pandas)
    bad = ns == nat
    if bad.any():
        r = _first(bad)
        raise _cell_error(path, r, name, arr[r], "not an ISO-8601 date/time (data row 1 is one)")
    return "datetime", ns


def to_keys(path, name, raw) -> np.ndarray:
    """The key column as strings; an empty cell is an error."""
    nulls = raw[1] if isinstance(raw, tuple) else None
    if nulls is not None and nulls.any():
        raise _cell_error(path, _first(nulls), name, None, "")
    keys = _text(raw)
    empty = keys == ""
    if empty.any():
        raise _cell_error(path, _first(empty), name, None, "")
    return keys.astype(str)


def _text(raw) -> np.ndarray:
    """A column as the strings written to the output (CSV: the cells as read)."""
    arr, _ = raw if isinstance(raw, tuple) else (raw, None)
    if arr.dtype == object:
        return arr                       # strings as read
    if arr.dtype.kind == "M":
        ns = arr.astype("datetime64[ns]")
        iv = ns.view(np.int64)
        unit = next((u for u, q in (("s", 10**9), ("ms", 10**6), ("us", 10**3))
                     if not (iv % q).any()), "ns")
        return np.datetime_as_string(ns, unit=unit).astype(object)
    if arr.dtype.kind == "f":
        return np.array([str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)
                         for x in arr.tolist()], dtype=object)
    return np.array([str(x) for x in arr.tolist()], dtype=object)


# ------------------------------------------------------------------------------ the entry point
def read_table(path, time, values, key=None, use_pandas=None) -> Table:
    """Read and check the columns ``time``, ``values`` (list) and ``key`` of a CSV or Parquet file.

    ``use_pandas``: read CSV with pandas (default: when installed) or the csv module.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, not a CSV or Parquet file")
    values = list(values)
    named = [time, *values] + ([key] if key is not None else [])
    seen = set()
    for c in named:
        if c in seen:
            raise InputError(f"column {c!r} is named twice among --time, --value and --key")
        seen.add(c)
    if use_pandas is None:
        use_pandas = have_pandas()
    if is_parquet(path):
        n, raw = _read_parquet(path, named)
    elif use_pandas:
        n, raw = _read_csv_pandas(path, named)
    else:
        n, raw = _read_csv_stdlib(path, named)
    if n == 0:
        raise InputError(f"{path}: no data rows (only a header)")
    kind, t = to_time(path, time, raw[time], use_pandas)
    X = np.empty((n, len(values)), np.float64)
    for j, c in enumerate(values):
        X[:, j] = to_values(path, c, raw[c], use_pandas)
    keys = to_keys(path, key, raw[key]) if key is not None else None
    return Table(path=path, n_rows=n, time_name=time, time_kind=kind, time=t,
                 value_names=values, values=X, key_name=key, keys=keys,
                 text={c: _text(raw[c]) for c in named})


def check_time_order(table: Table, last: dict | None = None, state_name: str = "") -> None:
    """Check that timestamps strictly increase per key, in file order.

    Timestamps must strictly increase per key (the whole file without a key), in file
    order, and continue after ``last`` ({key or None: last timestamp}) from a saved state.
    """
    t, n = table.time, table.n_rows
    if table.keys is None:
        codes = np.zeros(n, np.int64)
        uniq = np.array([None], dtype=object)
    else:
        uniq, codes = np.unique(table.keys, return_inverse=True)
        codes = codes.reshape(-1)
    order = np.lexsort((np.arange(n), codes))          # by key, then file order
    same = codes[order[1:]] == codes[order[:-1]]
    bad = same & (t[order[1:]] <= t[order[:-1]])
    worst = n
    prev_row = None
    if bad.any():
        cand = order[1:][bad]
        k = int(np.argmin(cand))
        worst = int(cand[k])
        prev_row = int(order[:-1][bad][k])
    first_bad_resume = None
    if last:
        starts = np.ones(n, bool)
        starts[1:] = ~same
        for i in order[starts]:
            key = None if table.keys is None else str(uniq[codes[i]])
            if key in last and t[i] <= last[key] and i < worst:
                worst, first_bad_resume = int(i), last[key]
    if worst == n:
        return
    where = f"{table.path}: data row {worst + 1}"
    if table.keys is not None:
        where += f" (key {str(table.keys[worst])!r})"
    col = table.time_name
    cur = format_time(table.time_kind, t[worst])
    if first_bad_resume is not None:
        word = "repeats" if t[worst] == first_bad_resume else "is before"
        before = format_time(table.time_kind, first_bad_resume)
        raise InputError(f"{where}: time {cur} in column {col!r} {word} the last one processed "
                         f"for this key in {state_name} ({before}); timestamps must keep "
                         "increasing across runs")
    prev = format_time(table.time_kind, t[prev_row])
    word = "duplicate" if t[worst] == t[prev_row] else "decreasing"
    scope = "of the same key " if table.keys is not None else ""
    raise InputError(f"{where}: {word} time {cur} in column {col!r} (data row {prev_row + 1} "
                     f"{scope}has {prev}); timestamps must strictly increase"
                     + (" per key" if table.keys is not None else ""))
