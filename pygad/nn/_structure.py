"""The graph structure an HGT layer attends over, and its cache.

:class:`HeteroStructure` merges all relations that end in one node type into one
destination-sorted CSR (and its transpose, for the backward); building it costs a sort, so
:func:`cached_structure` keeps the last few, keyed by the identity and version of the edge
tensors (a training loop that reuses its graph builds it once).

Each relation's connectivity is a ``[2, E]`` edge index or, as in PyG, a transposed sparse
adjacency ``adj_t`` of shape ``[N_dst, N_src]`` (``torch.sparse`` CSR/CSC/COO, or a
``torch_sparse.SparseTensor``); adjacencies are turned into edge indices only when a structure
is built, so a cached graph costs nothing per forward in either form.
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..ops import csr_transpose, hetero_csr

NodeType = str
EdgeType = Tuple[str, str, str]


@dataclass
class DestinationCSR:
    """All relations ending in one node type, merged into one CSR (and its transpose)."""
    relations: List[int]          # global edge-type index of each local relation
    sources: List[NodeType]       # source node type of each local relation
    num_src: List[int]            # source count of each local relation (after compaction)
    src_rows: List[Optional[Tensor]]   # per relation: the source rows that have edges, or None = all
    rowptr: Tensor
    col: Tensor                   # index into the concatenated source space
    rel: Tensor                   # local relation id per entry
    colptr: Tensor
    row: Tensor
    perm: Tensor


class HeteroStructure:
    """Destination-sorted CSR/CSC of a heterogeneous graph, for every destination node type."""

    def __init__(self, edge_index_dict: Dict[EdgeType, Tensor], num_nodes: Dict[NodeType, int],
                 edge_types: List[EdgeType]):
        index = {et: i for i, et in enumerate(edge_types)}
        per_dst: Dict[NodeType, List[EdgeType]] = {}
        edge_index_dict = {et: as_edge_index(v) for et, v in edge_index_dict.items()}
        for et in edge_index_dict:
            per_dst.setdefault(et[2], []).append(et)
        self.per_dst: Dict[NodeType, DestinationCSR] = {}
        for dst, ets in per_dst.items():
            eis, num_src, src_rows = [], [], []
            for et in ets:
                ei, n, rows = _compact_sources(edge_index_dict[et], num_nodes[et[0]])
                eis.append(ei)
                num_src.append(n)
                src_rows.append(rows)
            rowptr, col, rel, _ = hetero_csr(eis, num_src, num_nodes[dst])
            colptr, row, perm = csr_transpose(rowptr, col, sum(num_src))
            self.per_dst[dst] = DestinationCSR([index[et] for et in ets], [et[0] for et in ets], num_src, src_rows,
                                               rowptr, col, rel, colptr, row, perm)


def is_sparse_tensor(adj) -> bool:
    """True for a ``torch_sparse.SparseTensor`` (duck-typed: torch_sparse is optional)."""
    return type(adj).__name__ == "SparseTensor" and hasattr(adj, "coo") and hasattr(adj, "sparse_sizes")


def adjacency_shape(adj) -> Optional[Tuple[int, int]]:
    """``(N_dst, N_src)`` of a transposed sparse adjacency, None for a dense ``[2, E]`` edge index."""
    if isinstance(adj, Tensor):
        return None if adj.layout == torch.strided else (int(adj.shape[0]), int(adj.shape[1]))
    if is_sparse_tensor(adj):
        rows, cols = adj.sparse_sizes()
        return int(rows), int(cols)
    return None


def as_edge_index(adj) -> Tensor:
    """A ``[2, E]`` int64 edge index from an edge index or a transposed adjacency.

    A ``[2, E]`` int64 edge index (row 0 sources, row 1 destinations) from an edge index or
    a transposed adjacency ``adj_t[dst, src]`` (values are ignored, as in PyG's HGTConv).
    """
    if isinstance(adj, Tensor):
        if adj.layout == torch.strided:
            return adj
        if adj.layout == torch.sparse_csr:
            crow, src = adj.crow_indices(), adj.col_indices()
            dst = torch.repeat_interleave(torch.arange(adj.shape[0], device=crow.device), crow.diff())
        elif adj.layout == torch.sparse_csc:
            ccol, dst = adj.ccol_indices(), adj.row_indices()
            src = torch.repeat_interleave(torch.arange(adj.shape[1], device=ccol.device), ccol.diff())
        elif adj.layout == torch.sparse_coo:
            dst, src = adj._indices()   # as given (PyG does not coalesce either)
        else:
            raise TypeError(f"unsupported sparse layout {adj.layout}")
        return torch.stack([src.long(), dst.long()])
    dst, src, _ = adj.coo()   # torch_sparse.SparseTensor adj_t
    return torch.stack([src.long(), dst.long()])


# A relation whose edges touch fewer than this fraction of its source type's nodes gets its
# keys/values computed for those sources only (sampled mini-batch subgraphs: each of many
# relations reaches a small part of every node type).
_COMPACT_BELOW = 0.5


def _compact_sources(ei: Tensor, num_src: int) -> Tuple[Tensor, int, Optional[Tensor]]:
    """``(edge_index, num_src, rows)``.

    Sources renumbered to the rows that have edges when they are few (``rows`` = their original
    ids), else the input unchanged with ``rows=None``.
    """
    if ei.shape[1] >= _COMPACT_BELOW * num_src:   # cannot be sparse enough: skip the unique
        return ei, num_src, None
    rows, inverse = torch.unique(ei[0], sorted=True, return_inverse=True)
    out_of_range = rows.numel() > 0 and (int(rows[0]) < 0 or int(rows[-1]) >= num_src)
    if out_of_range or rows.numel() >= _COMPACT_BELOW * num_src:
        return ei, num_src, None   # (bad indices: left for hetero_csr to report)
    return torch.stack([inverse, ei[1]]), int(rows.numel()), rows


class _StructureCache:
    """A few recently used structures, keyed by the identity and version of the edge tensors.

    Entries hold only weak references to the edge tensors: when one is freed its entry goes,
    and a new tensor that happens to reuse a freed id can never hit a stale entry.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self.entries: "OrderedDict[tuple, tuple]" = OrderedDict()

    @staticmethod
    def _key(edge_index_dict, num_nodes):
        # (a SparseTensor has no version counter: it is immutable in practice)
        return tuple((et, id(t), getattr(t, "_version", 0), t.device.type if isinstance(t, Tensor) else "")
                     for et, t in edge_index_dict.items()) + tuple(sorted(num_nodes.items()))

    def get(self, edge_index_dict, num_nodes, edge_types) -> HeteroStructure:
        key = self._key(edge_index_dict, num_nodes)
        hit = self.entries.get(key)
        if hit is not None:
            refs, structure = hit
            if all(r() is t for r, t in zip(refs, edge_index_dict.values())):
                self.entries.move_to_end(key)
                return structure
        structure = HeteroStructure(edge_index_dict, num_nodes, edge_types)
        refs = [weakref.ref(t) for t in edge_index_dict.values()]
        for t in edge_index_dict.values():
            weakref.finalize(t, self.entries.pop, key, None)
        self.entries[key] = (refs, structure)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return structure

    def clear(self):
        self.entries.clear()


_structure_cache = _StructureCache()


def clear_structure_cache() -> None:
    """Forget all cached graph structures (they are rebuilt on the next forward)."""
    _structure_cache.clear()


def cached_structure(edge_index_dict: Dict[EdgeType, Tensor], num_nodes: Dict[NodeType, int],
                     edge_types: List[EdgeType]) -> HeteroStructure:
    """The :class:`HeteroStructure` of a graph, from the cache when its edge tensors are unchanged."""
    return _structure_cache.get(edge_index_dict, num_nodes, edge_types)
