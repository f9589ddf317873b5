"""CSR/CSC construction for heterogeneous graphs (native counting sorts as torch custom ops)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from pygad.errors import PygadTypeError, PygadValueError

from ._native import _C, as_tensor, check_count, check_ndim, desc, new_empty, stream, threads


@torch.library.custom_op("pygad::hetero_csr", mutates_args=())
def _hetero_csr(edge_index: list[Tensor], src_offset: list[int], num_src: list[int],
                num_dst: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    ref = edge_index[0] if edge_index else torch.empty(0, dtype=torch.int64)
    E = sum(int(e.shape[1]) for e in edge_index) if all(e.dim() == 2 for e in edge_index) else 0
    rowptr = new_empty(ref, (num_dst + 1,), "num_dst", num_dst, dtype=torch.int64)
    col, rel, eid = (ref.new_empty(E, dtype=torch.int64) for _ in range(3))
    _C.hetero_csr([desc(e) for e in edge_index], list(src_offset), list(num_src), num_dst,
                  desc(rowptr), desc(col), desc(rel), desc(eid), threads(), stream(ref))
    return rowptr, col, rel, eid


@_hetero_csr.register_fake
def _(edge_index, src_offset, num_src, num_dst):
    ref = edge_index[0] if edge_index else torch.empty(0, dtype=torch.int64)
    E = sum(e.shape[1] for e in edge_index)
    return (ref.new_empty(num_dst + 1, dtype=torch.int64),) + tuple(ref.new_empty(E, dtype=torch.int64)
                                                                     for _ in range(3))


def hetero_csr(edge_index: Sequence, num_src: Sequence[int], num_dst: int,
               src_offset: Sequence[int] | None = None):
    """Merge the edge lists of several relations into one destination-sorted CSR.

    Args:
        edge_index: one int64 [2, E_r] array per relation (row 0 source, row 1 destination).
        num_src: number of source nodes of each relation (source indices must be below it).
        num_dst: number of destination nodes (shared by all relations).
        src_offset: where each relation's sources start in the concatenated source space;
            default: relations stacked one after another (cumulative ``num_src``).

    Returns:
        ``(rowptr [num_dst+1], col [E], rel [E], eid [E])``: ``col`` indexes the concatenated
        source space, ``rel`` is each entry's relation, ``eid`` its position in the relation-major
        concatenation of the inputs (to carry edge attributes along). Within a row, entries keep
        input order (stable). NumPy inputs give NumPy outputs.
    """
    edge_index = list(edge_index)
    is_np = bool(edge_index) and isinstance(edge_index[0], np.ndarray)
    tensors = [as_tensor(e, f"edge_index[{i}]", dtype=torch.int64) for i, e in enumerate(edge_index)]
    for i, t in enumerate(tensors):
        if t.dim() != 2 or t.shape[0] != 2:
            raise PygadValueError(f"'edge_index[{i}]' must have shape [2, E], got {list(t.shape)}")
    if isinstance(num_src, (str, bytes)) or not hasattr(num_src, "__len__"):
        raise PygadTypeError(f"'num_src' must be a sequence of ints (one per relation), got {num_src!r}")
    num_src = [check_count(n, f"num_src[{i}]") for i, n in enumerate(num_src)]
    if len(num_src) != len(tensors):
        raise PygadValueError(f"'num_src' needs one entry per relation ({len(tensors)}), got {len(num_src)}")
    if src_offset is None:
        src_offset, total = [], 0
        for n in num_src:   # Python ints: a sum past int64 is caught below, not wrapped by NumPy
            src_offset.append(total)
            total += n
    src_offset = [check_count(o, f"src_offset[{i}]") for i, o in enumerate(src_offset)]
    num_dst = check_count(num_dst, "num_dst", high=2**63 - 2)
    out = _hetero_csr(tensors, src_offset, num_src, num_dst)
    return tuple(o.numpy() for o in out) if is_np else out


@torch.library.custom_op("pygad::csr_transpose", mutates_args=())
def _csr_transpose(rowptr: Tensor, col: Tensor, num_cols: int) -> tuple[Tensor, Tensor, Tensor]:
    colptr = new_empty(rowptr, (num_cols + 1,), "num_cols", num_cols)
    row, perm = col.new_empty(col.shape[0]), col.new_empty(col.shape[0])
    _C.csr_transpose(desc(rowptr), desc(col), num_cols, desc(colptr), desc(row), desc(perm), threads(),
                     stream(rowptr))
    return colptr, row, perm


@_csr_transpose.register_fake
def _(rowptr, col, num_cols):
    return rowptr.new_empty(num_cols + 1), col.new_empty(col.shape[0]), col.new_empty(col.shape[0])


def csr_transpose(rowptr, col, num_cols: int):
    """Transpose a CSR (rows = destinations) into a source-sorted CSC.

    Args:
        rowptr: int64 [N + 1] CSR pointer.
        col: int64 [E] column index of each entry, in [0, num_cols).
        num_cols: number of columns.

    Returns:
        ``(colptr [num_cols+1], row [E], perm [E])``: for column j, entries
        ``colptr[j]:colptr[j+1]`` hold their row and their position in the CSR (ascending rows).
    """
    is_np = isinstance(rowptr, np.ndarray)
    rowptr, col = as_tensor(rowptr, "rowptr", dtype=torch.int64), as_tensor(col, "col", dtype=torch.int64)
    check_ndim(rowptr, "rowptr", 1, "[N + 1]", min_rows=1)
    check_ndim(col, "col", 1, "[E]")
    out = _csr_transpose(rowptr, col, check_count(num_cols, "num_cols", high=2**63 - 2))
    return tuple(o.numpy() for o in out) if is_np else out
