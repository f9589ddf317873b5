"""Graphs from tables: node tables and one edge table per relation (pandas, CSV, Parquet).

A **node table** (one per node type) has an id column, numeric feature columns and, for the
node type to detect on, a label column: ``1`` anomaly, ``0`` normal, blank = unknown. An **edge
table** (one per relation) has ``src`` and ``dst`` columns holding node ids, and optionally a
time column (numbers or ISO date-times) and a weight column; its other columns are ignored.

* :func:`from_pandas` (also :meth:`HeteroGraph.from_pandas`) builds a
  :class:`~pygad.data.HeteroGraph` from DataFrames;
* :func:`read_table` reads one CSV or Parquet file; :func:`read_graph` reads the files named
  on the ``pygad detect`` / ``pygad score`` command line (``TYPE=FILE``,
  ``REL=SRC_TYPE:DST_TYPE:FILE``) and calls :func:`from_pandas`.

Every problem raises :class:`pygad.errors.PygadValueError` (or :class:`PygadFileError` for an
unreadable file) with one line naming the file (or ``nodes['TYPE']`` / ``edges['REL']`` for a
DataFrame), the column and the 1-based data row (the header is not a row). The built graph
carries ``node_ids[type]`` (the ids as strings, in table order) and ``feature_names[type]``.

pandas (and pyarrow for Parquet) are the ``tables`` extra: ``pip install "pygad[tables]"``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Sequence

import numpy as np

from ..errors import PygadFileError, PygadValueError
from .graph import HeteroGraph

INSTALL_HINT = 'pip install "pygad[tables]"'
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def require_pandas():
    """The pandas module, or an ImportError naming the ``tables`` extra."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(f"reading tables needs pandas: {INSTALL_HINT}") from None
    return pd


# ---- cell conversion -------------------------------------------------------------------------
def _blank(v: np.ndarray) -> np.ndarray:
    """True where an object cell is empty: None, NaN, NA, NaT or only whitespace."""
    pd = require_pandas()
    na = np.asarray(pd.isna(v), dtype=bool)
    return na | np.fromiter((isinstance(c, str) and not c.strip() for c in v), dtype=bool, count=v.shape[0])


def _rows(mask: np.ndarray, limit: int = 1) -> str:
    """'data row 7' (1-based) of the first hit, plus how many more there are."""
    idx = np.flatnonzero(mask)
    first = f"data row {int(idx[0]) + 1}"
    more = idx.shape[0] - 1
    return first + (f" (and {more} more row{'s' if more > 1 else ''})" if more > 0 else "")


def _to_float(series, where: str, col: str, what: str, hint: str = "") -> np.ndarray:
    """float64 of a column, or an error naming the first empty or non-numeric cell."""
    pd = require_pandas()
    s = series
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            cell = "an empty cell" if np.isnan(v[i]) else f"{v[i]!r}"
            raise PygadValueError(f"{where}: {what} {col!r} has {cell} at {_rows(bad)}; "
                                  f"{what}s must hold finite numbers{hint}")
        return v
    raw = s.to_numpy(dtype=object)
    blank = _blank(raw)
    if blank.any():
        raise PygadValueError(f"{where}: {what} {col!r} has an empty cell at {_rows(blank)}; "
                              f"{what}s must hold finite numbers{hint}")
    v = pd.to_numeric(pd.Series(raw, dtype=object).map(lambda c: c.strip() if isinstance(c, str) else c),
                      errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PygadValueError(f"{where}: {what} {col!r} is not numeric: {_rows(bad)} has {str(raw[i])!r}; "
                              f"{what}s must hold finite numbers{hint}")
    return v


def _ids(series, where: str, col: str, what: str = "id column") -> np.ndarray:
    """Ids as an object array of str (integers without a '.0'), or an error for an empty cell."""
    pd = require_pandas()
    s = series
    if pd.api.types.is_bool_dtype(s.dtype):
        raise PygadValueError(f"{where}: {what} {col!r} holds booleans, not ids")
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        return s.to_numpy().astype(np.int64).astype(str).astype(object)
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(v).any():
            raise PygadValueError(f"{where}: {what} {col!r} has an empty cell at {_rows(np.isnan(v))}")
        if np.all(v == np.round(v)) and np.all(np.abs(v) < 2 ** 53):
            return v.astype(np.int64).astype(str).astype(object)
        return v.astype(str).astype(object)
    raw = s.to_numpy(dtype=object)
    blank = _blank(raw)
    if blank.any():
        raise PygadValueError(f"{where}: {what} {col!r} has an empty cell at {_rows(blank)}")
    return np.array([c.strip() if isinstance(c, str) else str(c) for c in raw], dtype=object)


def _labels(series, where: str, col: str) -> np.ndarray:
    """int8 labels: 1 anomaly, 0 normal, -1 for a blank cell; an error for any other value."""
    pd = require_pandas()
    s = series
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy().astype(np.int8)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        blank = np.isnan(v)
        raw = v
    else:
        raw = s.to_numpy(dtype=object)
        blank = _blank(raw)
        v = pd.to_numeric(pd.Series(raw, dtype=object).map(lambda c: c.strip() if isinstance(c, str) else c),
                          errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~blank & ~np.isin(v, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cell = raw[i]
        cell = repr(str(cell).strip()) if isinstance(cell, str) else f"{float(cell):g}"
        raise PygadValueError(f"{where}: label column {col!r} has {cell} at {_rows(bad)}; labels must be 1 "
                              "(anomaly), 0 (normal) or blank (unknown)")
    return np.where(blank, -1, v).astype(np.int8)


def _times(series, where: str, col: str) -> np.ndarray:
    """float64 timestamps: numbers as they are, date-times as seconds since 1970-01-01 UTC."""
    pd = require_pandas()
    s = series
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if s.isna().any():
            raise PygadValueError(f"{where}: time column {col!r} has an empty cell at {_rows(s.isna().to_numpy())}")
        t = s.dt.tz_convert("UTC") if getattr(s.dt, "tz", None) is not None else s
        return t.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return _to_float(s, where, col, "time column")
    raw = s.to_numpy(dtype=object)
    blank = _blank(raw)
    if blank.any():
        raise PygadValueError(f"{where}: time column {col!r} has an empty cell at {_rows(blank)}")
    txt = pd.Series([str(c).strip() for c in raw], dtype=object)
    num = pd.to_numeric(txt, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(num)
    if ok.all():
        return num
    if ok.any():  # a numeric time column with a stray cell
        i = int(np.flatnonzero(~ok)[0])
        raise PygadValueError(f"{where}: time column {col!r} has {raw[i]!r} at {_rows(~ok)}, not a number like "
                              "the other cells")
    try:
        dt = pd.to_datetime(txt, utc=True, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):  # pragma: no cover - older pandas without format="ISO8601"
        dt = pd.to_datetime(txt, utc=True, errors="coerce")
    bad = dt.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PygadValueError(f"{where}: time column {col!r} has {raw[i]!r} at {_rows(bad)}, neither a number "
                              "nor an ISO date-time")
    return dt.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9


def _need(df, where: str, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PygadValueError(f"{where}: no {what} {missing[0]!r}; available columns: "
                              f"{', '.join(repr(str(c)) for c in df.columns)}")


# ---- from DataFrames -------------------------------------------------------------------------
def from_pandas(nodes: Mapping[str, Any], edges: Mapping[str, Any] | None = None, *, id: str = "id",
                label: str | None = None, time: str | None = None, weight: str | None = None,
                src: str = "src", dst: str = "dst", target: str | None = None,
                features: Mapping[str, Sequence[str]] | None = None, exclude: Iterable[str] = (),
                require_anomaly: bool = True, sources: Mapping[tuple, str] | None = None,
                name: str = "graph") -> HeteroGraph:
    """A :class:`HeteroGraph` from node and edge DataFrames.

    Args:
        nodes: ``{node_type: DataFrame}``, one row per node: the ``id`` column, feature columns
            (every other column unless ``features`` says which), and the ``label`` column on the
            node type to detect on.
        edges: ``{relation: DataFrame}`` when there is one node type, else
            ``{relation: (src_type, dst_type, DataFrame)}``; columns ``src`` and ``dst`` hold
            node ids, ``time`` and ``weight`` (when named and present) timestamps and weights.
        id: the id column of the node tables (ids are compared as text: ``7`` and ``"7"`` match).
        label: the label column: 1 anomaly, 0 normal, blank (NaN/None/"") unknown.
        time: the timestamp column of the edge tables (numbers, or date-times turned into
            seconds since 1970 UTC); tables without it have no timestamps.
        weight: the edge weight column (stored as ``edge_attr``).
        src: the source endpoint column of the edge tables.
        dst: the destination endpoint column of the edge tables.
        target: the node type to detect on (default: the one whose table has ``label``).
        features: ``{node_type: [column, ...]}``: take exactly these feature columns in this
            order (a saved detector's schema); other columns are ignored.
        exclude: columns that are never features.
        require_anomaly: with ``label``, refuse a graph without any node labelled 1.
        sources: ``{("nodes", type) | ("edges", rel): file name}`` used in error messages.
        name: the graph's name.

    Returns:
        The graph, with ``node_ids`` (``{type: str array}``) and ``feature_names`` set.

    Raises:
        PygadValueError naming the table, column and row: a missing column, an empty or
        duplicate id, a non-numeric feature column, a label outside {0, 1, blank}, an edge id
        missing from its node table, an endpoint naming an unknown node type, no anomaly.

    Examples:
        >>> import pandas as pd
        >>> acc = pd.DataFrame({"id": ["a", "b", "c"], "amount": [1.0, 9.0, 2.0], "fraud": [0, 1, None]})
        >>> tx = pd.DataFrame({"src": ["a", "b"], "dst": ["b", "c"]})
        >>> g = from_pandas({"account": acc}, {"pays": tx}, label="fraud")
        >>> g.y["account"].tolist(), g.edge_types
        ([0, 1, -1], [('account', 'pays', 'account')])
    """
    pd = require_pandas()
    sources = dict(sources or {})
    exclude = set(exclude)
    if not nodes:
        raise PygadValueError("no node tables given")

    def nwhere(t):
        return sources.get(("nodes", t), f"nodes[{t!r}]")

    def ewhere(r):
        return sources.get(("edges", r), f"edges[{r!r}]")

    for t, df in nodes.items():
        if not isinstance(df, pd.DataFrame):
            raise PygadValueError(f"{nwhere(t)}: expected a pandas DataFrame, got {type(df).__name__}")
    node_types = [str(t) for t in nodes]

    # ---- the labelled (target) type
    with_label = [t for t, df in nodes.items() if label is not None and label in df.columns]
    if target is not None and target not in nodes:
        raise PygadValueError(f"target node type {target!r} has no node table (node types: {', '.join(node_types)})")
    if label is not None:
        if target is None:
            if not with_label:
                raise PygadValueError(f"no node table has the label column {label!r} ("
                                      + "; ".join(f"{nwhere(t)}: {', '.join(map(str, df.columns))}"
                                                  for t, df in nodes.items()) + ")")
            if len(with_label) > 1:
                raise PygadValueError(f"several node tables have the label column {label!r} "
                                      f"({', '.join(nwhere(t) for t in with_label)}); choose the target node type")
            target = with_label[0]
        elif require_anomaly and target not in with_label:
            _need(nodes[target], nwhere(target), [label], "label column")

    # ---- nodes
    num_nodes, x, y, ids, names = {}, {}, {}, {}, {}
    index = {}
    for t, df in nodes.items():
        where = nwhere(t)
        _need(df, where, [id], "id column")
        ids_t = _ids(df[id], where, id)
        idx = pd.Index(ids_t)
        if not idx.is_unique:
            dup = idx.duplicated(keep=False)
            first = ids_t[np.flatnonzero(dup)[0]]
            rows = np.flatnonzero(ids_t == first)[:2] + 1
            n_dup = int(idx.duplicated().sum())
            raise PygadValueError(f"{where}: id column {id!r} has the id {first!r} twice (data rows {rows[0]} and "
                                  f"{rows[1]}); {n_dup} duplicate id{'s' if n_dup > 1 else ''} in all")
        num_nodes[t], ids[t], index[t] = len(ids_t), ids_t, idx
        if features is not None:
            cols = list(features.get(t, ()))
            for c in cols:
                if c not in df.columns:
                    raise PygadValueError(f"{where}: no column {c!r}, one of the feature columns "
                                          f"{', '.join(map(repr, cols))} expected for node type {t!r}; available "
                                          f"columns: {', '.join(repr(str(c)) for c in df.columns)}")
        else:
            skip = {id, label} | exclude
            cols = [c for c in df.columns if c not in skip]
        if cols:
            mats = []
            for c in cols:
                hint = ("" if features is not None else
                        f" (encode the column as numbers, or leave it out: "
                        f"{'--exclude ' + str(c) if ('nodes', t) in sources else 'exclude=[' + repr(c) + ']'})")
                mats.append(_to_float(df[c], where, str(c), "feature column", hint))
            x[t] = np.stack(mats, axis=1).astype(np.float32)
            names[t] = [str(c) for c in cols]
        if label is not None and t == target and label in df.columns:
            y[t] = _labels(df[label], where, label)

    if label is not None and target in y and require_anomaly:
        yy = y[target]
        if not (yy == 1).any():
            raise PygadValueError(f"{nwhere(target)}: label column {label!r} has no anomaly (no row labelled 1 among "
                                  f"{int((yy >= 0).sum())} labelled and {int((yy < 0).sum())} blank rows); "
                                  "a supervised detector needs labelled anomalies")

    # ---- edges
    ei, etime, eattr = {}, {}, {}
    saw_time = saw_weight = False
    for rel, spec in dict(edges or {}).items():
        rel = str(rel)
        where = ewhere(rel)
        if isinstance(spec, tuple):
            if len(spec) != 3:
                raise PygadValueError(f"{where}: expected (src_type, dst_type, DataFrame), got a tuple of {len(spec)}")
            s_t, d_t, df = spec
            for role, tt in (("source", s_t), ("destination", d_t)):
                if tt not in nodes:
                    raise PygadValueError(f"{where}: relation {rel!r} names the {role} node type {tt!r}, which has "
                                          f"no node table (node types: {', '.join(node_types)})")
        else:
            if len(nodes) != 1:
                raise PygadValueError(f"{where}: relation {rel!r} must name its endpoints (src_type, dst_type, "
                                      f"DataFrame) since there are several node types ({', '.join(node_types)})")
            s_t = d_t = node_types[0]
            df = spec
        if not isinstance(df, pd.DataFrame):
            raise PygadValueError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
        _need(df, where, [src, dst], "endpoint column")
        pos = []
        for col, tt in ((src, s_t), (dst, d_t)):
            e_ids = _ids(df[col], where, col, "endpoint column")
            p = index[tt].get_indexer(e_ids)
            bad = p < 0
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise PygadValueError(f"{where}: column {col!r} has the id {e_ids[i]!r} at {_rows(bad)}, which is not "
                                      f"in the node table of type {tt!r} ({nwhere(tt)}, id column {id!r})")
            pos.append(p.astype(np.int64))
        et = (str(s_t), rel, str(d_t))
        ei[et] = np.stack(pos) if pos[0].size else np.zeros((2, 0), np.int64)
        if time is not None and time in df.columns:
            etime[et] = _times(df[time], where, time)
            saw_time = True
        if weight is not None and weight in df.columns:
            eattr[et] = _to_float(df[weight], where, weight, "weight column").astype(np.float32)
            saw_weight = True
    if edges and time is not None and not saw_time:
        raise PygadValueError(f"no edge table has the time column {time!r} ("
                              + "; ".join(ewhere(str(r)) for r in edges) + ")")
    if edges and weight is not None and not saw_weight:
        raise PygadValueError(f"no edge table has the weight column {weight!r} ("
                              + "; ".join(ewhere(str(r)) for r in edges) + ")")

    g = HeteroGraph(num_nodes, ei, x=x, y=y, edge_time=etime, edge_attr=eattr, name=name)
    g.feature_names = names
    g.node_ids = ids
    return g


# ---- files -----------------------------------------------------------------------------------
def is_parquet(path) -> bool:
    return os.fspath(path).lower().endswith(PARQUET_SUFFIXES)


def read_table(path) -> Any:
    """One CSV or Parquet file as a DataFrame (CSV cells as text, so ids keep leading zeros).

    Raises:
        PygadFileError: a missing or unreadable file (the message names it).
        ImportError: pandas (or pyarrow for Parquet) is missing; the message names the extra.
    """
    pd = require_pandas()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PygadFileError(f"{path}: no such file")
    if is_parquet(path):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(f"reading Parquet needs pyarrow: {INSTALL_HINT}") from None
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise PygadFileError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())})") from None
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise PygadFileError(f"{path}: the file is empty (no header line)") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise PygadFileError(f"{path}: not a readable CSV file ({' '.join(str(exc).split())})") from None


def _stem(path: str) -> str:
    base = os.path.basename(path)
    for suf in (".csv.gz", ".csv", *PARQUET_SUFFIXES):
        if base.lower().endswith(suf):
            return base[: -len(suf)]
    return os.path.splitext(base)[0]


def parse_node_specs(specs: Sequence[str]) -> Dict[str, str]:
    """``TYPE=FILE`` or ``FILE`` (the type is then the file's stem) -> ``{type: file}``."""
    out: Dict[str, str] = {}
    for spec in specs:
        t, sep, path = spec.partition("=")
        if not sep:
            t, path = _stem(spec), spec
        t = t.strip()
        if not t or not path:
            raise PygadValueError(f"--nodes {spec!r}: expected TYPE=FILE or FILE")
        if t in out:
            raise PygadValueError(f"--nodes: node type {t!r} given twice ({out[t]} and {path})")
        out[t] = path
    return out


def parse_edge_specs(specs: Sequence[str], node_types: Sequence[str]) -> Dict[str, tuple]:
    """``REL=SRC_TYPE:DST_TYPE:FILE``, ``REL=FILE`` or ``FILE`` -> ``{rel: (src_type, dst_type, file)}``.

    Endpoints may be left out only when there is one node type. A named endpoint that is not a
    node type is an error (unless the whole right-hand side is an existing file).
    """
    out: Dict[str, tuple] = {}
    for spec in specs:
        rel, sep, rest = spec.partition("=")
        if not sep:
            rel, rest = _stem(spec), spec
        rel = rel.strip()
        if not rel or not rest:
            raise PygadValueError(f"--edges {spec!r}: expected REL=SRC_TYPE:DST_TYPE:FILE or REL=FILE")
        parts = rest.split(":", 2)
        if len(parts) == 3 and not os.path.isfile(rest):
            s_t, d_t, path = parts
            for role, tt in (("source", s_t), ("destination", d_t)):
                if tt not in node_types:
                    raise PygadValueError(f"--edges {spec}: the {role} node type {tt!r} has no --nodes table "
                                          f"(node types: {', '.join(node_types)})")
        else:
            if len(node_types) != 1:
                raise PygadValueError(f"--edges {spec}: name the endpoints as REL=SRC_TYPE:DST_TYPE:FILE; there are "
                                      f"several node types ({', '.join(node_types)})")
            s_t = d_t = node_types[0]
            path = rest
        if rel in out:
            raise PygadValueError(f"--edges: relation {rel!r} given twice")
        out[rel] = (s_t, d_t, path)
    return out


def read_graph(node_files: Mapping[str, str], edge_files: Mapping[str, tuple], progress=None,
               **kwargs) -> HeteroGraph:
    """Read the node and edge files and build the graph with :func:`from_pandas`.

    Args:
        node_files: ``{type: path}`` (see :func:`parse_node_specs`).
        edge_files: ``{rel: (src_type, dst_type, path)}`` (see :func:`parse_edge_specs`).
        progress: optional callable ``(path) -> None`` called before each file is read.
        **kwargs: passed to :func:`from_pandas` (``id``, ``label``, ``time``, ...).
    """
    nodes, edges, sources = {}, {}, {}
    for t, path in node_files.items():
        if progress is not None:
            progress(path)
        nodes[t] = read_table(path)
        sources[("nodes", t)] = path
    for rel, (s_t, d_t, path) in edge_files.items():
        if progress is not None:
            progress(path)
        edges[rel] = (s_t, d_t, read_table(path))
        sources[("edges", rel)] = path
    return from_pandas(nodes, edges, sources=sources, **kwargs)


__all__ = ["from_pandas", "read_table", "read_graph", "parse_node_specs", "parse_edge_specs", "require_pandas"]
