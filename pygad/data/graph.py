"""The :class:`HeteroGraph` container: node types, edge types, validation, CSR caching, interop.

A graph holds NumPy arrays (the native kernels accept them without copies):

* per node type ``t``: ``num_nodes[t]``, optional features ``x[t]`` float32 [N_t, F_t], labels
  ``y[t]`` int8 [N_t] with 1 = anomaly, 0 = normal, -1 = unknown, and optional masks
  ``masks[t][name]`` bool [N_t] or stacked [K, N_t] (``"train"``, ``"val"``, ``"test"``);
* per edge type ``(src, rel, dst)``: ``edge_index`` int64 [2, E], optional ``edge_time``
  float64 [E] and ``edge_attr`` float32 [E, D].

A homogeneous graph is one node type (``"node"``) and one relation (``("node", "to", "node")``).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Tuple

import numpy as np

NodeType = str
EdgeType = Tuple[str, str, str]

DEFAULT_NODE_TYPE = "node"
DEFAULT_EDGE_TYPE: EdgeType = ("node", "to", "node")
MASK_NAMES = ("train", "val", "test")


def _to_numpy(a: Any, name: str) -> np.ndarray:
    """NumPy view of an array-like (torch tensors are moved to CPU, without a torch import)."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch.Tensor
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"'{name}' must be array-like, got {type(a).__name__}") from exc


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` through a sort.

    NumPy 2's hash-based unique of wide int64 keys is ~50x slower than sorting (12 s against
    0.2 s for YelpChi's 1.1M edges on a busy 2-core machine).
    """
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if a.size else a


def _fmt_et(et: EdgeType) -> str:
    return "(" + ", ".join(repr(p) for p in et) + ")"


class HeteroGraph:
    """A (possibly heterogeneous, possibly temporal) attributed graph with anomaly labels.

    Args:
        num_nodes: node count per node type (``{type: N}``); may be omitted for types that
            have ``x`` or ``y`` (inferred from them).
        edge_index: ``{(src, rel, dst): int [2, E]}``; row 0 are source indices (into ``src``
            nodes), row 1 destination indices.
        x: optional ``{type: float [N, F]}`` node features.
        y: optional ``{type: int [N]}`` labels in {-1, 0, 1} (1 = anomaly, -1 = unknown).
        masks: optional ``{type: {"train"|"val"|"test": bool [N] or [K, N]}}``.
        edge_time: optional ``{edge_type: float [E]}`` timestamps.
        edge_attr: optional ``{edge_type: float [E] or [E, D]}`` edge attributes.
        features_derived: node types whose ``x`` was derived from structure (no features in
            the source); see :func:`pygad.datasets.structural_features`.
        name: a label for printing.

    Raises:
        ValueError / TypeError naming the offending array (shape, dtype, index range, label
        values, mask length).
    """

    def __init__(self, num_nodes: Mapping[str, int] | None = None,
                 edge_index: Mapping[EdgeType, Any] | None = None, *,
                 x: Mapping[str, Any] | None = None, y: Mapping[str, Any] | None = None,
                 masks: Mapping[str, Mapping[str, Any]] | None = None,
                 edge_time: Mapping[EdgeType, Any] | None = None,
                 edge_attr: Mapping[EdgeType, Any] | None = None,
                 features_derived: Iterable[str] = (), name: str = "graph"):
        self.name = name
        x, y, masks = dict(x or {}), dict(y or {}), dict(masks or {})
        edge_index = {tuple(k): v for k, v in dict(edge_index or {}).items()}
        edge_time = {tuple(k): v for k, v in dict(edge_time or {}).items()}
        edge_attr = {tuple(k): v for k, v in dict(edge_attr or {}).items()}

        # ---- node types and counts
        nn: Dict[str, int] = {}
        for t, n in dict(num_nodes or {}).items():
            n = int(n)
            if n < 0:
                raise ValueError(f"'num_nodes[{t!r}]' must be >= 0, got {n}")
            nn[str(t)] = n
        for src in (x, y):
            for t, a in src.items():
                if t not in nn:
                    nn[t] = int(len(_to_numpy(a, f"[{t!r}]")))
        for et in edge_index:
            if len(et) != 3:
                raise ValueError(f"edge type {et!r} must be a (src, rel, dst) tuple")
            for t in (et[0], et[2]):
                if t not in nn:
                    raise ValueError(f"edge type {_fmt_et(et)} uses node type {t!r} with unknown node count; "
                                     f"pass num_nodes={{{t!r}: N}} (or x/y for it)")
        self.num_nodes: Dict[str, int] = nn

        # ---- node arrays
        self.x: Dict[str, np.ndarray] = {}
        for t, a in x.items():
            if a is None:
                continue
            self._check_type(t, "x")
            a = _to_numpy(a, f"x[{t!r}]")
            if a.ndim == 1:
                a = a[:, None]
            if a.ndim != 2 or a.shape[0] != nn[t]:
                raise ValueError(f"'x[{t!r}]' must have shape [{nn[t]}, F], got {list(a.shape)}")
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"'x[{t!r}]' must be numeric, got dtype {a.dtype}")
            a = np.ascontiguousarray(a, dtype=np.float32)
            if not np.isfinite(a).all():
                raise ValueError(f"'x[{t!r}]' contains NaN or infinite values")
            self.x[t] = a
        self.y: Dict[str, np.ndarray] = {}
        for t, a in y.items():
            if a is None:
                continue
            self._check_type(t, "y")
            a = _to_numpy(a, f"y[{t!r}]")
            if a.ndim != 1 or a.shape[0] != nn[t]:
                raise ValueError(f"'y[{t!r}]' must have shape [{nn[t]}], got {list(a.shape)}")
            if a.dtype == bool:
                a = a.astype(np.int8)
            if not np.issubdtype(a.dtype, np.number):
                raise TypeError(f"'y[{t!r}]' must be integer labels, got dtype {a.dtype}")
            if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a) & (a == np.round(a))):
                raise ValueError(f"'y[{t!r}]' must hold integer labels in {{-1, 0, 1}}")
            bad = ~np.isin(a, (-1, 0, 1))
            if bad.any():
                vals = np.unique(a[bad])[:5].tolist()
                raise ValueError(f"'y[{t!r}]' has labels outside {{-1, 0, 1}} (1 anomaly, 0 normal, -1 unknown): "
                                 f"found {vals} at {int(bad.sum())} node(s)")
            self.y[t] = a.astype(np.int8)
        self.masks: Dict[str, Dict[str, np.ndarray]] = {}
        for t, md in masks.items():
            if not md:
                continue
            self._check_type(t, "masks")
            out = {}
            for mname, m in dict(md).items():
                m = _to_numpy(m, f"masks[{t!r}][{mname!r}]")
                if m.ndim not in (1, 2) or m.shape[-1] != nn[t]:
                    raise ValueError(f"mask '{mname}' of node type {t!r} must have shape [{nn[t]}] or [K, {nn[t]}] "
                                     f"(one entry per node), got {list(m.shape)}")
                if m.dtype != bool:
                    if not np.isin(m, (0, 1)).all():
                        raise ValueError(f"mask '{mname}' of node type {t!r} must be boolean (0/1)")
                    m = m.astype(bool)
                out[mname] = np.ascontiguousarray(m)
            ks = {v.shape[0] for v in out.values() if v.ndim == 2}
            if len(ks) > 1:
                raise ValueError(f"stacked masks of node type {t!r} have different split counts: {sorted(ks)}")
            self.masks[t] = out

        # ---- edges
        self.edge_index: Dict[EdgeType, np.ndarray] = {}
        self.edge_time: Dict[EdgeType, np.ndarray] = {}
        self.edge_attr: Dict[EdgeType, np.ndarray] = {}
        for et, ei in edge_index.items():
            et = tuple(str(p) for p in et)
            nm = f"edge_index[{_fmt_et(et)}]"
            ei = _to_numpy(ei, nm)
            if ei.ndim != 2 or ei.shape[0] != 2:
                raise ValueError(f"'{nm}' must have shape [2, E], got {list(ei.shape)}")
            if not np.issubdtype(ei.dtype, np.integer):
                raise TypeError(f"'{nm}' must have an integer dtype, got {ei.dtype}")
            ei = np.ascontiguousarray(ei, dtype=np.int64)
            if ei.shape[1]:
                for row, t, what in ((0, et[0], "source"), (1, et[2], "destination")):
                    lo, hi = int(ei[row].min()), int(ei[row].max())
                    if lo < 0 or hi >= nn[t]:
                        raise ValueError(f"'{nm}' has {what} index out of range: values in [{lo}, {hi}], "
                                         f"node type {t!r} has {nn[t]} nodes")
            self.edge_index[et] = ei
        for store, src, nm0 in ((self.edge_time, edge_time, "edge_time"), (self.edge_attr, edge_attr, "edge_attr")):
            for et, a in src.items():
                if a is None:
                    continue
                et = tuple(str(p) for p in et)
                nm = f"{nm0}[{_fmt_et(et)}]"
                if et not in self.edge_index:
                    raise ValueError(f"'{nm}' given for an edge type without edge_index")
                a = _to_numpy(a, nm)
                E = self.edge_index[et].shape[1]
                if a.shape[:1] != (E,) or a.ndim > (1 if nm0 == "edge_time" else 2):
                    raise ValueError(f"'{nm}' must have shape [{E}]{'' if nm0 == 'edge_time' else ' or [E, D]'}, "
                                     f"got {list(a.shape)}")
                if not np.issubdtype(a.dtype, np.number):
                    raise TypeError(f"'{nm}' must be numeric, got dtype {a.dtype}")
                a = np.ascontiguousarray(a, dtype=np.float64 if nm0 == "edge_time" else np.float32)
                if not np.isfinite(a).all():
                    raise ValueError(f"'{nm}' contains NaN or infinite values")
                store[et] = a
        self.features_derived = {t for t in features_derived}
        self.feature_names: Dict[str, list] = {}
        # external node ids per type (e.g. the id column of a node table), in index order
        self.node_ids: Dict[str, np.ndarray] = {}
        self._cache: Dict[Any, Any] = {}

    def _check_type(self, t: str, what: str) -> None:
        if t not in self.num_nodes:
            raise ValueError(f"'{what}' has unknown node type {t!r} (known: {list(self.num_nodes)})")

    # ---- description ------------------------------------------------------------------------
    @property
    def node_types(self) -> list:
        """The node types, in insertion order."""
        return list(self.num_nodes)

    @property
    def edge_types(self) -> list:
        """The relations ``(src_type, rel, dst_type)``, in insertion order."""
        return list(self.edge_index)

    def metadata(self) -> tuple:
        """``(node_types, edge_types)`` as PyG and :class:`pygad.nn.HGT` expect."""
        return self.node_types, self.edge_types

    @property
    def is_homogeneous(self) -> bool:
        """True for one node type and at most one relation."""
        return len(self.num_nodes) == 1 and len(self.edge_index) <= 1

    @property
    def is_temporal(self) -> bool:
        """True when any relation has edge timestamps."""
        return bool(self.edge_time)

    def num_edges(self, edge_type: EdgeType | None = None) -> int:
        """The number of edges of relation ``edge_type``, or of all relations when None."""
        if edge_type is not None:
            return int(self.edge_index[tuple(edge_type)].shape[1])
        return int(sum(e.shape[1] for e in self.edge_index.values()))

    def target_type(self, target: str | None = None) -> str:
        """The node type to detect anomalies on: ``target`` if given, else the one with known labels."""
        if target is not None:
            if target not in self.num_nodes:
                raise ValueError(f"target node type {target!r} not in the graph (node types: {self.node_types})")
            return target
        labelled = [t for t, y in self.y.items() if (y >= 0).any()]
        if len(labelled) == 1:
            return labelled[0]
        if not labelled:
            raise ValueError("the graph has no labelled node type (labels 'y' with values 0/1); "
                             "pass labels or a target node type")
        raise ValueError(f"several node types carry labels ({labelled}); choose one with target=...")

    def num_splits(self, node_type: str) -> int:
        """How many train/val/test splits the graph's masks hold for ``node_type`` (0 = none)."""
        md = self.masks.get(node_type, {})
        if "train" not in md:
            return 0
        return md["train"].shape[0] if md["train"].ndim == 2 else 1

    def split(self, node_type: str, k: int = 0) -> tuple:
        """The stored ``(train, val, test)`` boolean masks of split ``k`` (``val`` may be None)."""
        n = self.num_splits(node_type)
        if n == 0:
            raise ValueError(f"the graph has no stored split masks for node type {node_type!r}")
        if not 0 <= k < n:
            raise ValueError(f"split {k} out of range: the graph has {n} stored split(s) (0..{n - 1})")
        md = self.masks[node_type]
        out = []
        for name in MASK_NAMES:
            m = md.get(name)
            if m is not None and m.ndim == 2:
                m = m[k]
            out.append(m)
        if out[2] is None:
            out[2] = ~out[0] if out[1] is None else ~(out[0] | out[1])
        return tuple(out)

    def __repr__(self) -> str:
        parts = [f"{t}: {n} nodes" + (f", x[{self.x[t].shape[1]}]" if t in self.x else "")
                 + (" (derived)" if t in self.features_derived else "")
                 + (f", {int((self.y[t] == 1).sum())} anomalies" if t in self.y else "")
                 for t, n in self.num_nodes.items()]
        parts += [f"{_fmt_et(et)}: {e.shape[1]} edges" + (" +time" if et in self.edge_time else "")
                  for et, e in self.edge_index.items()]
        return f"HeteroGraph(name={self.name!r}; " + "; ".join(parts) + ")"

    # ---- structure (cached) -----------------------------------------------------------------
    def csr(self, dst_type_or_edge_type) -> tuple:
        """Destination-sorted CSR from the native kernel (cached).

        ``csr(edge_type)`` gives ``(rowptr [N_dst+1], col [E], eid [E])`` of one relation
        (``col`` indexes its source nodes). ``csr(node_type)`` merges all relations ending in
        that type: ``(rowptr, col, rel, eid, edge_types)`` with ``col`` in the concatenated
        source space (relations stacked in ``edge_types`` order).
        """
        from ..ops import hetero_csr  # lazy: torch

        key = ("csr", dst_type_or_edge_type if isinstance(dst_type_or_edge_type, str)
               else tuple(dst_type_or_edge_type))
        if key in self._cache:
            return self._cache[key]
        if isinstance(dst_type_or_edge_type, str):
            t = dst_type_or_edge_type
            ets = [et for et in self.edge_index if et[2] == t]
            rowptr, col, rel, eid = hetero_csr([self.edge_index[et] for et in ets],
                                               [self.num_nodes[et[0]] for et in ets], self.num_nodes[t])
            out = (rowptr, col, rel, eid, ets)
        else:
            et = key[1]
            if et not in self.edge_index:
                raise ValueError(f"unknown edge type {_fmt_et(et)} (known: {self.edge_types})")
            rowptr, col, _, eid = hetero_csr([self.edge_index[et]], [self.num_nodes[et[0]]], self.num_nodes[et[2]])
            out = (rowptr, col, eid)
        self._cache[key] = out
        return out

    def csc(self, edge_type: EdgeType) -> tuple:
        """Source-sorted view of one relation.

        ``(colptr [N_src+1], row [E], perm [E])`` (cached), where ``row`` are destination indices
        and ``perm`` positions in :meth:`csr` order.
        """
        from ..ops import csr_transpose

        et = tuple(edge_type)
        key = ("csc", et)
        if key not in self._cache:
            rowptr, col, _ = self.csr(et)
            self._cache[key] = csr_transpose(rowptr, col, self.num_nodes[et[0]])
        return self._cache[key]

    def degree(self, edge_type: EdgeType, direction: str = "in") -> np.ndarray:
        """In-degree (per destination node) or out-degree (per source node) of one relation."""
        et = tuple(edge_type)
        if direction == "in":
            ptr = self.csr(et)[0]
        elif direction == "out":
            ptr = self.csc(et)[0]
        else:
            raise ValueError(f"'direction' must be 'in' or 'out', got {direction!r}")
        return np.diff(ptr)

    def is_symmetric(self, edge_type: EdgeType) -> bool:
        """True when the relation (same source and destination type) contains every reverse edge."""
        et = tuple(edge_type)
        key = ("sym", et)
        if key not in self._cache:
            if et[0] != et[2]:
                self._cache[key] = False
            else:
                ei, n = self.edge_index[et], self.num_nodes[et[0]]
                a = _sorted_unique(ei[0] * n + ei[1])
                b = _sorted_unique(ei[1] * n + ei[0])
                self._cache[key] = bool(a.shape == b.shape and np.array_equal(a, b))
        return self._cache[key]

    def with_reverse_edges(self, prefix: str = "rev_") -> "HeteroGraph":
        """A copy with reverse relations added, so messages flow both ways.

        A copy with a reverse relation ``(dst, prefix+rel, src)`` for every relation that lacks
        one (symmetric same-type relations need none), so messages flow both ways.
        """
        ei, et_time, et_attr = dict(self.edge_index), dict(self.edge_time), dict(self.edge_attr)
        for et in list(self.edge_index):
            if et[0] == et[2] and self.is_symmetric(et):
                continue
            if et[0] != et[2] and any(o[0] == et[2] and o[2] == et[0] for o in self.edge_index):
                continue  # a relation in the other direction already exists
            rev = (et[2], prefix + et[1], et[0])
            ei[rev] = self.edge_index[et][::-1].copy()
            if et in self.edge_time:
                et_time[rev] = self.edge_time[et]
            if et in self.edge_attr:
                et_attr[rev] = self.edge_attr[et]
        g = HeteroGraph(self.num_nodes, ei, x=self.x, y=self.y, masks=self.masks, edge_time=et_time,
                        edge_attr=et_attr, features_derived=self.features_derived, name=self.name)
        g.feature_names = dict(self.feature_names)
        g.node_ids = dict(self.node_ids)
        return g

    def replace(self, **changes) -> "HeteroGraph":
        """A copy with some constructor arguments replaced (arrays are shared, not copied)."""
        kw = dict(num_nodes=self.num_nodes, edge_index=self.edge_index, x=self.x, y=self.y, masks=self.masks,
                  edge_time=self.edge_time, edge_attr=self.edge_attr, features_derived=self.features_derived,
                  name=self.name)
        kw.update(changes)
        g = HeteroGraph(kw.pop("num_nodes"), kw.pop("edge_index"), **kw)
        g.feature_names = {t: v for t, v in self.feature_names.items() if t in g.x}
        g.node_ids = {t: v for t, v in self.node_ids.items() if g.num_nodes.get(t) == len(v)}
        return g

    # ---- torch views ------------------------------------------------------------------------
    def x_dict(self, device=None) -> dict:
        """Node features as float32 torch tensors, ``{type: [N, F]}`` (types without x are left out)."""
        import torch

        return {t: torch.from_numpy(a).to(device) for t, a in self.x.items()}

    def edge_index_dict(self, device=None) -> dict:
        """Edge indices as int64 torch tensors, ``{(src, rel, dst): [2, E]}``."""
        import torch

        return {et: torch.from_numpy(a).to(device) for et, a in self.edge_index.items()}

    # ---- construction helpers ---------------------------------------------------------------
    @classmethod
    def homogeneous(cls, edge_index, num_nodes: int | None = None, *, x=None, y=None, masks=None,
                    edge_time=None, edge_attr=None, name: str = "graph", node_type: str = DEFAULT_NODE_TYPE,
                    relation: str = "to") -> "HeteroGraph":
        """One node type and one relation."""
        et = (node_type, relation, node_type)
        if num_nodes is None:
            if x is not None:
                num_nodes = len(x)
            elif y is not None:
                num_nodes = len(y)
            else:
                ei = _to_numpy(edge_index, "edge_index")
                num_nodes = int(ei.max()) + 1 if ei.size else 0
        return cls({node_type: int(num_nodes)}, {et: edge_index},
                   x=None if x is None else {node_type: x}, y=None if y is None else {node_type: y},
                   masks=None if masks is None else {node_type: masks},
                   edge_time=None if edge_time is None else {et: edge_time},
                   edge_attr=None if edge_attr is None else {et: edge_attr}, name=name)

    @classmethod
    def from_edges(cls, src=None, dst=None, *, num_nodes: int | None = None, x=None, y=None, masks=None,
                   edge_time=None, edge_attr=None, relation=None, df=None, src_col: str = "src",
                   dst_col: str = "dst", rel_col: str | None = "rel", time_col: str | None = "time",
                   attr_cols: list | None = None, name: str = "graph") -> "HeteroGraph":
        """A one-node-type graph from edge arrays or a pandas edge list.

        Args:
            src: integer array [E] of source node ids (or use ``df``).
            dst: integer array [E] of destination node ids (or use ``df``).
            num_nodes: node count (default: from ``x``/``y`` or the largest id + 1).
            x: node features (see :class:`HeteroGraph`).
            y: node labels (see :class:`HeteroGraph`).
            masks: node masks (see :class:`HeteroGraph`).
            edge_time: float [E] timestamps.
            edge_attr: float [E] or [E, D].
            relation: optional array [E] of relation names: one edge type per distinct value
                (multi-relational graph); default a single relation ``"to"``.
            df: a pandas DataFrame edge list with columns ``src_col``, ``dst_col`` and optionally
                ``rel_col`` (relation), ``time_col`` (timestamps) and ``attr_cols``.
            src_col: the source id column of ``df``.
            dst_col: the destination id column of ``df``.
            rel_col: the relation column of ``df`` (used when present; None: never).
            time_col: the timestamp column of ``df`` (used when present; None: never).
            attr_cols: the edge attribute columns of ``df``.
            name: the graph's name.
        """
        if df is not None:
            for c in (src_col, dst_col):
                if c not in df.columns:
                    raise ValueError(f"edge list DataFrame has no column {c!r} (columns: {list(df.columns)})")
            src, dst = df[src_col].to_numpy(), df[dst_col].to_numpy()
            if rel_col and rel_col in df.columns and relation is None:
                relation = df[rel_col].astype(str).to_numpy()
            if time_col and time_col in df.columns and edge_time is None:
                edge_time = df[time_col].to_numpy(dtype=np.float64)
            if attr_cols:
                edge_attr = df[list(attr_cols)].to_numpy(dtype=np.float32)
        if src is None or dst is None:
            raise ValueError("from_edges needs 'src' and 'dst' arrays or a DataFrame 'df'")
        src, dst = _to_numpy(src, "src"), _to_numpy(dst, "dst")
        if src.ndim != 1 or dst.shape != src.shape:
            raise ValueError(f"'src' and 'dst' must be 1-D arrays of equal length, got {list(src.shape)} and "
                             f"{list(dst.shape)}")
        if not (np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)):
            raise TypeError(f"'src' and 'dst' must be integer node ids, got {src.dtype} and {dst.dtype}")
        if num_nodes is None:
            if x is not None:
                num_nodes = len(x)
            elif y is not None:
                num_nodes = len(y)
            else:
                num_nodes = int(max(src.max(initial=-1), dst.max(initial=-1))) + 1
        ei_all = np.stack([src, dst]).astype(np.int64)
        nt = DEFAULT_NODE_TYPE
        if relation is None:
            rels = {"to": slice(None)}
        else:
            relation = np.asarray(relation)
            if relation.shape != src.shape:
                raise ValueError(f"'relation' must have one entry per edge ({src.shape[0]}), got {list(relation.shape)}")
            rels = {str(r): relation == r for r in np.unique(relation)}
        ei, et_time, et_attr = {}, {}, {}
        for r, sel in rels.items():
            et = (nt, r, nt)
            ei[et] = ei_all[:, sel]
            if edge_time is not None:
                et_time[et] = _to_numpy(edge_time, "edge_time")[sel]
            if edge_attr is not None:
                et_attr[et] = _to_numpy(edge_attr, "edge_attr")[sel]
        return cls({nt: int(num_nodes)}, ei, x=None if x is None else {nt: x}, y=None if y is None else {nt: y},
                   masks=None if masks is None else {nt: masks}, edge_time=et_time, edge_attr=et_attr, name=name)

    @classmethod
    def from_pandas(cls, nodes, edges=None, *, id: str = "id", label: str | None = None, time: str | None = None,
                    **kwargs) -> "HeteroGraph":
        """A graph from pandas node and edge tables.

        A graph from node tables ``{type: DataFrame}`` and edge tables ``{rel: DataFrame}`` or
        ``{rel: (src_type, dst_type, DataFrame)}``; see :func:`pygad.data.tables.from_pandas`
        (needs pandas: ``pip install "pygad[tables]"``).

        Examples:
            >>> import pandas as pd
            >>> acc = pd.DataFrame({"id": [1, 2, 3], "f": [0.5, 3.0, 0.1], "fraud": [0, 1, None]})
            >>> g = HeteroGraph.from_pandas({"account": acc}, {"pays": pd.DataFrame({"src": [1], "dst": [2]})},
            ...                             label="fraud")
            >>> g.num_nodes, g.y["account"].tolist()
            ({'account': 3}, [0, 1, -1])
        """
        from .tables import from_pandas

        return from_pandas(nodes, edges, id=id, label=label, time=time, **kwargs)

    # ---- PyG interop ------------------------------------------------------------------------
    @classmethod
    def from_pyg(cls, data, name: str = "graph") -> "HeteroGraph":
        """From a torch_geometric ``Data`` (homogeneous) or ``HeteroData`` (duck-typed: PyG is not imported).

        Reads ``x``, ``y``, ``train_mask``/``val_mask``/``test_mask``, ``edge_index``,
        ``edge_time`` (or ``time``) and ``edge_attr``.
        """
        def get(store, key):
            try:
                return store[key] if key in store else None
            except (KeyError, TypeError, AttributeError):  # pragma: no cover
                return getattr(store, key, None)

        def masks_of(store):
            m = {n: get(store, f"{n}_mask") for n in MASK_NAMES}
            return {k: v for k, v in m.items() if v is not None} or None

        if hasattr(data, "node_types") and hasattr(data, "edge_types"):  # HeteroData
            num_nodes, x, y, masks = {}, {}, {}, {}
            for t in data.node_types:
                st = data[t]
                num_nodes[t] = int(st.num_nodes)
                if get(st, "x") is not None:
                    x[t] = get(st, "x")
                if get(st, "y") is not None:
                    y[t] = get(st, "y")
                m = masks_of(st)
                if m:
                    masks[t] = m
            ei, et_time, et_attr = {}, {}, {}
            for et in data.edge_types:
                st = data[et]
                et = tuple(et)
                ei[et] = get(st, "edge_index")
                t = get(st, "edge_time")
                if t is None:
                    t = get(st, "time")
                if t is not None:
                    et_time[et] = t
                if get(st, "edge_attr") is not None:
                    et_attr[et] = get(st, "edge_attr")
            return cls(num_nodes, ei, x=x, y=y, masks=masks, edge_time=et_time, edge_attr=et_attr, name=name)
        # homogeneous Data
        n = int(data.num_nodes)
        t = getattr(data, "edge_time", None)
        if t is None:
            t = getattr(data, "time", None)
        return cls.homogeneous(data.edge_index, n, x=getattr(data, "x", None), y=getattr(data, "y", None),
                               masks=masks_of(data), edge_time=t, edge_attr=getattr(data, "edge_attr", None),
                               name=name)

    def to_pyg(self):
        """A torch_geometric ``Data`` for a homogeneous graph, else a ``HeteroData``.

        Raises ImportError with a hint when torch_geometric is not installed.
        """
        try:
            from torch_geometric.data import Data, HeteroData
        except ImportError as exc:
            raise ImportError("HeteroGraph.to_pyg needs torch_geometric (pip install torch_geometric)") from exc
        import torch

        def put(store, t):
            if t in self.x:
                store.x = torch.from_numpy(self.x[t].copy())
            if t in self.y:
                store.y = torch.from_numpy(self.y[t].astype(np.int64))
            for mname, m in self.masks.get(t, {}).items():
                store[f"{mname}_mask"] = torch.from_numpy(m.copy())

        def put_edges(store, et):
            store.edge_index = torch.from_numpy(self.edge_index[et].copy())
            if et in self.edge_time:
                store.edge_time = torch.from_numpy(self.edge_time[et].copy())
            if et in self.edge_attr:
                store.edge_attr = torch.from_numpy(self.edge_attr[et].copy())

        if self.is_homogeneous:
            (t, n), = self.num_nodes.items()
            data = Data(num_nodes=n)
            put(data, t)
            if self.edge_index:
                put_edges(data, self.edge_types[0])
            else:
                data.edge_index = torch.empty((2, 0), dtype=torch.int64)
            return data
        data = HeteroData()
        for t, n in self.num_nodes.items():
            data[t].num_nodes = n
            put(data[t], t)
        for et in self.edge_index:
            put_edges(data[et], et)
        return data
