"""Pure-torch twins of every native op: the specification the kernels are tested against.

They build the per-edge tensors the native kernels avoid, so they are slow and memory-hungry
on big graphs, but short enough to check by eye.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def segment_ids(ptr: Tensor, num_entries: int | None = None) -> Tensor:
    """Segment id of every entry of a CSR pointer ``ptr`` [N+1]."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts,
                                   output_size=num_entries)


def segment_sum(src: Tensor, ptr: Tensor) -> Tensor:
    out = src.new_zeros((ptr.numel() - 1, src.shape[1]))
    return out.index_add(0, segment_ids(ptr, src.shape[0]), src)


def segment_softmax(src: Tensor, ptr: Tensor) -> Tensor:
    seg = segment_ids(ptr, src.shape[0])
    n = ptr.numel() - 1
    mx = src.new_full((n, src.shape[1]), -math.inf).scatter_reduce(0, seg[:, None].expand_as(src), src, "amax")
    ex = (src - mx[seg]).exp()
    den = src.new_zeros((n, src.shape[1])).index_add(0, seg, ex)
    return ex / den[seg]


def neighbor_aggregate(x: Tensor, rowptr: Tensor, col: Tensor, reduce: str = "mean") -> Tensor:
    seg = segment_ids(rowptr, col.numel())
    n = rowptr.numel() - 1
    msg = x[col]
    if reduce == "max":
        out = x.new_full((n, x.shape[1]), -math.inf).scatter_reduce(0, seg[:, None].expand_as(msg), msg, "amax")
        return torch.where(torch.isinf(out), torch.zeros_like(out), out)
    out = x.new_zeros((n, x.shape[1])).index_add(0, seg, msg)
    if reduce == "mean":
        out = out / (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(x.dtype)[:, None]
    elif reduce != "sum":
        raise ValueError(f"'reduce' must be one of sum, mean, max; got '{reduce}'")
    return out


def hetero_csr(edge_index: list[Tensor], num_src: list[int], num_dst: int,
               src_offset: list[int] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if src_offset is None:
        src_offset = [sum(num_src[:r]) for r in range(len(num_src))]
    src = torch.cat([e[0] + o for e, o in zip(edge_index, src_offset)])
    dst = torch.cat([e[1] for e in edge_index])
    rel = torch.cat([torch.full((e.shape[1],), r, dtype=torch.int64) for r, e in enumerate(edge_index)])
    order = torch.sort(dst, stable=True).indices
    rowptr = torch.zeros(num_dst + 1, dtype=torch.int64)
    rowptr[1:] = torch.cumsum(torch.bincount(dst, minlength=num_dst), 0)
    return rowptr, src[order], rel[order], order


def csr_transpose(rowptr: Tensor, col: Tensor, num_cols: int) -> tuple[Tensor, Tensor, Tensor]:
    row = segment_ids(rowptr, col.numel())
    perm = torch.sort(col, stable=True).indices
    colptr = torch.zeros(num_cols + 1, dtype=torch.int64)
    colptr[1:] = torch.cumsum(torch.bincount(col, minlength=num_cols), 0)
    return colptr, row[perm], perm


def hetero_attention(q: Tensor, k: Tensor, v: Tensor, mu: Tensor, rowptr: Tensor, col: Tensor, rel: Tensor,
                     scale: float | None = None) -> Tensor:
    """Per-edge formulation of :func:`pygad.ops.hetero_attention` (materialises [E, H, D])."""
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[2])
    dst = segment_ids(rowptr, col.numel())
    logits = (q[dst] * k[col]).sum(-1) * mu[rel] * scale          # [E, H]
    alpha = segment_softmax(logits, rowptr)                        # [E, H]
    msg = alpha.unsqueeze(-1) * v[col]                             # [E, H, D]
    return q.new_zeros(q.shape).index_add(0, dst, msg)
