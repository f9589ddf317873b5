"""Dataset loaders: the ``.npz`` archive format, named datasets, the embedded default.

Archive keys (see the data README): ``x`` float [N, F] (optional), ``y`` [N] (1 anomaly,
0 normal; -1 unknown or ``labelled_mask``), ``edge_index`` int64 [2, E] (homogeneous) or
``edge_index__<rel>`` + ``relations`` (multi-relational), ``edge_time`` [E], ``edge_weight``
[E], ``num_nodes``, masks ``train_mask``/``val_mask``/``test_mask`` [N] or stacked
``train_masks``/``val_masks``/``test_masks`` [K, N]. The bipartite review format
(``review_user``, ``review_product``, ``y_user``) loads as node types ``user``/``product``.

Where an archive has no node features, :func:`structural_features` derives label-free ones
from the structure (per relation: log-degrees, neighbours' degree statistics, edge-weight
statistics) and the graph records it in ``graph.features_derived``.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._npz import load_npz as _open_npz
from ..data.graph import HeteroGraph
from ..errors import InvalidArchiveError

EMBEDDED_DIR = Path(__file__).resolve().parent / "_embedded"
#: the dataset shipped inside the wheel (MIT, pygod-team/data; see _embedded/PROVENANCE.md)
DEFAULT_DATASET = "books"
#: environment variable with extra data folders (os.pathsep-separated)
DATA_ENV = "PYGAD_DATA"


class ArchiveError(InvalidArchiveError):
    """A malformed, truncated or incomplete dataset archive.

    A :class:`pygad.InvalidArchiveError`, so also a ``ValueError`` and an ``OSError``.
    """


# ---- derived features ------------------------------------------------------------------------
def structural_features(graph: HeteroGraph, node_type: str) -> tuple:
    """Label-free structural features of one node type, computed with the native CSR kernels.

    Per relation touching ``node_type`` and per direction (in; out unless the relation is
    symmetric): ``log1p(degree)``, the mean and max of the neighbours' ``log1p(degree)``, and
    for relations with edge weights, the mean/max/min of the incident edge weights. Then the
    total ``log1p`` degree over all relations.

    Returns:
        ``(x float32 [N, F], names list[F])``.
    """
    from ..ops import neighbor_aggregate

    n = graph.num_nodes[node_type]
    cols, names = [], []
    total = np.zeros(n, dtype=np.float64)
    for et in graph.edge_types:
        rel = et[1] if et[0] == et[2] else "->".join(et)
        dirs = []
        if et[2] == node_type:
            dirs.append("in")
        has_reverse = et[0] != et[2] and any(o[0] == et[2] and o[2] == et[0] for o in graph.edge_types)
        if et[0] == node_type and not has_reverse and not (et[0] == et[2] and graph.is_symmetric(et)):
            dirs.append("out")  # (a reverse relation already gives the same view as its "in")
        for d in dirs:
            if d == "in":
                ptr, nbr, eid = graph.csr(et)
                other_deg = np.log1p(graph.degree(et, "out")).astype(np.float32)  # neighbours are sources
            else:
                ptr, nbr, eid = graph.csc(et)
                other_deg = np.log1p(graph.degree(et, "in")).astype(np.float32)
            deg = np.diff(ptr)
            total += deg
            cols.append(np.log1p(deg).astype(np.float32)[:, None])
            names.append(f"{rel}:{d}:log_degree")
            od = other_deg[:, None]
            cols += [neighbor_aggregate(od, ptr, nbr, "mean"), neighbor_aggregate(od, ptr, nbr, "max")]
            names += [f"{rel}:{d}:nbr_log_degree_mean", f"{rel}:{d}:nbr_log_degree_max"]
            if et in graph.edge_attr:
                w = graph.edge_attr[et]
                w = w[:, None] if w.ndim == 1 else w
                w = np.ascontiguousarray(w, dtype=np.float32)
                eidx = np.ascontiguousarray(eid if d == "in" else graph.csr(et)[2][eid], dtype=np.int64)
                cols += [neighbor_aggregate(w, ptr, eidx, "mean"), neighbor_aggregate(w, ptr, eidx, "max"),
                         -neighbor_aggregate(np.ascontiguousarray(-w), ptr, eidx, "max")]
                for stat in ("mean", "max", "min"):
                    names += [f"{rel}:{d}:edge_attr{j}_{stat}" for j in range(w.shape[1])]
    cols.append(np.log1p(total).astype(np.float32)[:, None])
    names.append("all:log_degree")
    x = np.concatenate(cols, axis=1).astype(np.float32)
    return x, names


def with_structural_features(graph: HeteroGraph) -> HeteroGraph:
    """A copy in which every node type without ``x`` gets :func:`structural_features`."""
    missing = [t for t in graph.node_types if t not in graph.x]
    if not missing:
        return graph
    x = dict(graph.x)
    names = dict(graph.feature_names)
    for t in missing:
        x[t], names[t] = structural_features(graph, t)
    g = graph.replace(x=x, features_derived=set(graph.features_derived) | set(missing))
    g.feature_names = names
    return g


# ---- the archive format ----------------------------------------------------------------------
def _read_all(path: Path) -> dict:
    try:
        z = _open_npz(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, KeyError) as exc:
        raise ArchiveError(f"cannot read '{path}': not a valid .npz archive or truncated/corrupt "
                           f"({type(exc).__name__}: {exc})", path) from exc
    if not isinstance(z, np.lib.npyio.NpzFile):   # a .npy file loads as one bare array
        raise ArchiveError(f"'{path}' is a single .npy array, not an .npz archive of named arrays", path)
    try:
        with z:
            out = {}
            for k in z.files:
                try:
                    out[k] = z[k]
                except ValueError as exc:
                    if "pickle" in str(exc).lower():
                        raise ArchiveError(f"array '{k}' in '{path}' holds Python objects (pickles), which "
                                           "pygad does not load; store plain numeric arrays", path) from exc
                    raise
                if out[k].dtype.kind not in "biufUS":   # complex, void, datetime: not graph data
                    raise ArchiveError(f"array '{k}' in '{path}' has dtype {out[k].dtype}; pygad archives hold "
                                       "real numbers (int, float, bool) and strings", path)
            return out
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, KeyError) as exc:
        raise ArchiveError(f"cannot read '{path}': not a valid .npz archive or truncated/corrupt "
                           f"({type(exc).__name__}: {exc})", path) from exc


def _label_array(a: np.ndarray, key: str, path) -> np.ndarray:
    if a.ndim != 1:
        raise ArchiveError(f"'{key}' in '{path}' must be 1-D [N], got shape {list(a.shape)}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool or np.issubdtype(a.dtype, np.floating)):
        raise ArchiveError(f"'{key}' in '{path}' must hold integer labels, got dtype {a.dtype}")
    bad = ~np.isin(a, (-1, 0, 1))
    if bad.any():
        raise ArchiveError(f"'{key}' in '{path}' has labels outside {{-1, 0, 1}} (1 anomaly, 0 normal, -1 unknown): "
                           f"found {np.unique(a[bad])[:5].tolist()} at {int(bad.sum())} node(s)")
    return a.astype(np.int8)


def load_npz(path, name: str | None = None, derive_features: bool = True) -> HeteroGraph:
    """Read a graph archive (the format of the shared data folder) into a :class:`HeteroGraph`.

    Args:
        path: the ``.npz`` file.
        name: graph name (default: the file stem).
        derive_features: give node types without ``x`` derived structural features
            (:func:`structural_features`; recorded in ``graph.features_derived``).

    Raises:
        FileNotFoundError: no such file.
        ArchiveError (a ValueError): unreadable/truncated archive, missing keys, labels
            outside {-1, 0, 1}, masks or arrays of the wrong length; the message names the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset archive at '{path}'")
    a = _read_all(path)
    name = name or path.stem
    try:
        graph = _from_arrays(a, path, name)
    except ArchiveError:
        raise
    except (ValueError, TypeError) as exc:  # HeteroGraph validation: name the archive too
        raise ArchiveError(f"invalid archive '{path}': {exc}") from exc
    if derive_features:
        graph = with_structural_features(graph)
    return graph


def _from_arrays(a: dict, path, name: str) -> HeteroGraph:
    if "review_user" in a or "y_user" in a:
        return _bipartite(a, path, name)
    if "y" not in a:
        raise ArchiveError(f"'{path}' has no labels: missing key 'y' (keys: {sorted(a)})")
    y = _label_array(a["y"], "y", path)
    if "labelled_mask" in a:
        lm = a["labelled_mask"]
        if lm.shape != y.shape:
            raise ArchiveError(f"'labelled_mask' in '{path}' must have shape {list(y.shape)}, got {list(lm.shape)}")
        y = np.where(lm.astype(bool), y, -1).astype(np.int8)
    n = int(a["num_nodes"]) if "num_nodes" in a else y.shape[0]
    if y.shape[0] != n:
        raise ArchiveError(f"'y' in '{path}' has {y.shape[0]} entries but num_nodes is {n}")
    x = a.get("x")
    if x is not None:
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[0] != n:
            raise ArchiveError(f"'x' in '{path}' must have shape [{n}, F], got {list(x.shape)}")
        if x.dtype.kind not in "biuf":
            raise ArchiveError(f"'x' in '{path}' must hold real numbers, got dtype {x.dtype}")
    nt = "node"
    ei, et_time, et_attr = {}, {}, {}
    if "edge_index" in a:
        rels = [("to", "edge_index", "edge_time", "edge_weight")]
    elif "relations" in a or any(k.startswith("edge_index__") for k in a):
        names = [str(r) for r in a["relations"]] if "relations" in a else \
            sorted(k[len("edge_index__"):] for k in a if k.startswith("edge_index__"))
        rels = [(r, f"edge_index__{r}", f"edge_time__{r}", f"edge_weight__{r}") for r in names]
        for r, k, _, _ in rels:
            if k not in a:
                raise ArchiveError(f"'{path}' lists relation {r!r} in 'relations' but has no key '{k}'")
    else:
        raise ArchiveError(f"'{path}' has no edges: missing key 'edge_index' (or 'edge_index__<rel>' with "
                           f"'relations'); keys: {sorted(a)}")
    for r, k, kt, kw in rels:
        e = a[k]
        if e.ndim != 2 or e.shape[0] != 2:
            raise ArchiveError(f"'{k}' in '{path}' must have shape [2, E], got {list(e.shape)}")
        et = (nt, r, nt)
        ei[et] = e
        for key, store in ((kt, et_time), (kw, et_attr)):
            if key in a:
                v = a[key]
                if v.shape[:1] != (e.shape[1],):
                    raise ArchiveError(f"'{key}' in '{path}' must have one entry per edge ({e.shape[1]}), "
                                       f"got shape {list(v.shape)}")
                store[et] = v
    masks = {}
    for m in ("train", "val", "test"):
        for key in (f"{m}_mask", f"{m}_masks"):
            if key in a:
                v = a[key]
                if v.shape[-1] != n or v.ndim not in (1, 2):
                    raise ArchiveError(f"mask '{key}' in '{path}' must have shape [{n}] or [K, {n}] (one entry per "
                                       f"node), got {list(v.shape)}")
                masks[m] = v
    if masks and "train" not in masks:
        raise ArchiveError(f"'{path}' has split masks {sorted(masks)} but no 'train_mask'/'train_masks'")
    return HeteroGraph({nt: n}, ei, x=None if x is None else {nt: x}, y={nt: y},
                       masks={nt: masks} if masks else None, edge_time=et_time, edge_attr=et_attr, name=name)


def _bipartite(a: dict, path, name: str) -> HeteroGraph:
    for k in ("review_user", "review_product", "y_user"):
        if k not in a:
            raise ArchiveError(f"bipartite archive '{path}' misses key '{k}' (keys: {sorted(a)})")
    y = _label_array(a["y_user"], "y_user", path)
    ru, rp = a["review_user"], a["review_product"]
    if ru.ndim != 1 or ru.shape != rp.shape:
        raise ArchiveError(f"'review_user' and 'review_product' in '{path}' must be 1-D of equal length, got "
                           f"{list(ru.shape)} and {list(rp.shape)}")
    n_prod = int(a["product_orig_id"].shape[0]) if "product_orig_id" in a else int(rp.max(initial=-1)) + 1
    ei = np.stack([ru, rp]).astype(np.int64)
    # Review labels (y_review) are not attached: they would leak the user labels into the graph.
    return HeteroGraph({"user": y.shape[0], "product": n_prod},
                       {("user", "review", "product"): ei, ("product", "rev_review", "user"): ei[::-1].copy()},
                       y={"user": y}, name=name)


# ---- archive writing ---------------------------------------------------------------------
def save_archive(graph, path, train_mask=None, val_mask=None, test_mask=None) -> None:
    """Write a one-node-type graph as a compressed ``.npz`` archive that :func:`load_npz` reads back.

    Keys: ``x`` (unless the features were derived), ``y``, ``num_nodes``, ``edge_index`` (one
    relation) or ``edge_index__<rel>`` + ``relations``, ``edge_time[__<rel>]``,
    ``edge_weight[__<rel>]``, ``train_mask``/``val_mask``/``test_mask`` (those given) and
    ``synthetic_mask`` (the graph's ``synthetic`` mask, when it has one).

    Args:
        graph: a :class:`~pygad.data.HeteroGraph` with one node type.
        path: the output file.
        train_mask: boolean mask over the nodes to store as ``train_mask`` (optional).
        val_mask: boolean mask over the nodes to store as ``val_mask`` (optional).
        test_mask: boolean mask over the nodes to store as ``test_mask`` (optional).

    Raises:
        ValueError: for a graph with several node types.
    """
    if len(graph.node_types) != 1:
        raise ValueError("the archive format holds one node type (or the bipartite review format); "
                         f"this graph has {graph.node_types}")
    (t, n), = graph.num_nodes.items()
    a = {"y": graph.y[t].astype(np.int8), "num_nodes": np.int64(n)}
    if t in graph.x and t not in graph.features_derived:
        a["x"] = graph.x[t]
    ets = graph.edge_types
    if len(ets) == 1 and ets[0][1] == "to":
        et = ets[0]
        a["edge_index"] = graph.edge_index[et]
        if et in graph.edge_time:
            a["edge_time"] = graph.edge_time[et]
        if et in graph.edge_attr:
            a["edge_weight"] = graph.edge_attr[et]
    else:
        a["relations"] = np.array([et[1] for et in ets])
        for et in ets:
            a[f"edge_index__{et[1]}"] = graph.edge_index[et]
            if et in graph.edge_time:
                a[f"edge_time__{et[1]}"] = graph.edge_time[et]
            if et in graph.edge_attr:
                a[f"edge_weight__{et[1]}"] = graph.edge_attr[et]
    for name, m in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask)):
        if m is not None:
            a[name] = np.asarray(m, dtype=bool)
    syn = graph.masks.get(t, {}).get("synthetic")
    if syn is not None:
        a["synthetic_mask"] = syn
    np.savez_compressed(path, **a)


# ---- named datasets --------------------------------------------------------------------------
def data_dirs() -> list:
    """Folders searched by :func:`load`, in order: ``$PYGAD_DATA`` entries, ``./data``, the embedded one."""
    dirs = [Path(p) for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "data", EMBEDDED_DIR]
    seen, out = set(), []
    for d in dirs:
        key = str(d.resolve()) if d.exists() else str(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def available() -> list:
    """Names of the graph datasets :func:`load` can find (``.npz`` stems in :func:`data_dirs`)."""
    names = set()
    for d in data_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.npz"))
    return sorted(names)


def find(name: str) -> Path:
    """The path of a named dataset or an archive path; FileNotFoundError listing what exists."""
    p = Path(name)
    if p.suffix == ".npz" or p.is_file() or os.sep in name:
        if p.is_file():
            return p
        raise FileNotFoundError(f"no dataset archive at '{name}'")
    for d in data_dirs():
        cand = d / f"{name}.npz"
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"dataset {name!r} not found in {[str(d) for d in data_dirs()]}; available: "
                            f"{available()} (set ${DATA_ENV} to a folder of .npz archives or pass a path)")


def load(name: str | None = None, derive_features: bool = True) -> HeteroGraph:
    """Load a dataset by name (searched in :func:`data_dirs`) or by ``.npz`` path.

    ``load()`` returns the embedded default (``books``: 1,418 nodes, MIT, shipped in the wheel).
    """
    if name is None:
        return load_npz(EMBEDDED_DIR / f"{DEFAULT_DATASET}.npz", DEFAULT_DATASET, derive_features)
    path = find(name)
    return load_npz(path, path.stem, derive_features)


__all__ = ["load", "load_npz", "save_archive", "available", "find", "data_dirs", "structural_features",
           "with_structural_features", "ArchiveError", "DEFAULT_DATASET", "EMBEDDED_DIR"]
