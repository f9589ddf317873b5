"""Fused heterogeneous attention: the message passing of an HGT layer as one native op."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from pygad.errors import PygadValueError

from ._native import _C, as_tensor, desc, stream, threads


# The CPU forward keeps each entry's raw q . k and softmax weight ([E, 2, H], 32 bytes per edge
# at 4 heads in float32) so the backward skips recomputing them; CUDA recomputes them.
def _split_for_cuda(k, v):
    """The CUDA kernels take separate k and v: split an interleaved [M, 2, H, D] k there."""
    if v is None and k.is_cuda and k.dim() == 4 and k.shape[1] == 2:
        return k[:, 0].contiguous(), k[:, 1].contiguous(), True
    return k, v, False


def _forward_kernel(q, k, v, mu, rowptr, col, rel, scale):
    k, v, _ = _split_for_cuda(k, v)
    out = torch.empty_like(q)
    lse = q.new_empty(q.shape[:2])
    keep = not q.is_cuda
    saved = q.new_empty((col.shape[0] if keep else 0, 2, q.shape[1]))
    _C.hetero_attention_forward(desc(q), desc(k), None if v is None else desc(v), desc(mu), desc(rowptr), desc(col),
                                desc(rel), scale, desc(out), desc(lse), desc(saved) if keep else None, threads(),
                                stream(q))
    return out, lse, saved


def _backward_kernel(grad_out, q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale, out, lse, saved):
    """``(grad_q, grad_k, grad_v, grad_mu)``.

    With interleaved k (v None) grad_k is interleaved too and grad_v is an empty placeholder
    (custom ops cannot return None).
    """
    k, v, split = _split_for_cuda(k, v)
    gq, gk, gmu = torch.empty_like(q), torch.empty_like(k), torch.empty_like(mu)
    gv = None if v is None else torch.empty_like(v)
    kept = saved.shape[0] == col.shape[0] and saved.shape[0] > 0
    _C.hetero_attention_backward(desc(grad_out), desc(q), desc(k), None if v is None else desc(v), desc(mu),
                                 desc(rowptr), desc(col), desc(rel), desc(colptr), desc(row), desc(perm), scale,
                                 desc(out), desc(lse), desc(saved) if kept else None, desc(gq), desc(gk),
                                 None if gv is None else desc(gv), desc(gmu), threads(), stream(q))
    if split:
        gk, gv = torch.stack([gk, gv], 1), None
    return gq, gk, (gv if gv is not None else gk.new_empty(0)), gmu


@torch.library.custom_op("pygad::hetero_attention", mutates_args=())
def _hetero_attention(q: Tensor, k: Tensor, v: Optional[Tensor], mu: Tensor, rowptr: Tensor, col: Tensor,
                      rel: Tensor, colptr: Tensor, row: Tensor, perm: Tensor,
                      scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """The forward kernel's ``(out, lse, saved)``.

    ``(out, lse, saved)``; ``saved`` is [E, 2, H] (q . k and alpha per entry) where the CPU kernel
    kept them for the backward, else [0, 2, H].
    """
    return _forward_kernel(q, k, v, mu, rowptr, col, rel, scale)


@_hetero_attention.register_fake
def _(q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale):
    keep = q.device.type != "cuda"
    return torch.empty_like(q), q.new_empty(q.shape[:2]), q.new_empty((col.shape[0] if keep else 0, 2, q.shape[1]))


@torch.library.custom_op("pygad::hetero_attention_backward", mutates_args=())
def _hetero_attention_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Optional[Tensor], mu: Tensor,
                               rowptr: Tensor, col: Tensor, rel: Tensor, colptr: Tensor, row: Tensor, perm: Tensor,
                               scale: float, out: Tensor, lse: Tensor,
                               saved: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return _backward_kernel(grad_out, q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale, out, lse, saved)


@_hetero_attention_backward.register_fake
def _(grad_out, q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale, out, lse, saved):
    gv = k.new_empty(0) if v is None else torch.empty_like(v)
    return torch.empty_like(q), torch.empty_like(k), gv, torch.empty_like(mu)


def _setup(ctx, inputs, output):
    q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale = inputs
    out, lse, saved = output
    ctx.save_for_backward(q, k, v, mu, rowptr, col, rel, colptr, row, perm, out, lse, saved)
    ctx.scale = scale


def _input_grads(ctx, grad_out, run_backward):
    """Gradients of (q, k, v, mu, <7 non-differentiable inputs>) from what ``_setup`` saved.

    ``run_backward`` is the registered backward op (traced) or its kernel (eager).
    """
    q, k, v, mu, rowptr, col, rel, colptr, row, perm, out, lse, saved = ctx.saved_tensors
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    gq, gk, gv, gmu = run_backward(grad_out.contiguous(), q, k, v, mu, rowptr, col, rel, colptr, row, perm,
                                   ctx.scale, out, lse, saved)
    return gq, gk, (None if v is None else gv), gmu, None, None, None, None, None, None, None


def _backward(ctx, grad_out, grad_lse, grad_saved):
    return _input_grads(ctx, grad_out, _hetero_attention_backward)


_hetero_attention.register_autograd(_backward, setup_context=_setup)


class _EagerAttention(torch.autograd.Function):
    """The same kernels as the registered op, for eager mode.

    A plain autograd.Function costs a fraction of the custom-op dispatch (schema checks,
    redispatch, wrapper autograd), which on small graphs is a visible share of an HGT layer.
    ``torch.compile`` traces the custom op.
    """

    @staticmethod
    def forward(ctx, q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale):
        out, lse, saved = _forward_kernel(q, k, v, mu, rowptr, col, rel, scale)
        _setup(ctx, (q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale), (out, lse, saved))
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return _input_grads(ctx, grad_out, _backward_kernel)


def hetero_attention(q, k, v, mu, rowptr, col, rel, colptr, row, perm, scale: float | None = None) -> Tensor:
    """Softmax attention of each destination over all its incoming edges of all relations.

    For entry e = (j -> i) of relation r = rel[e] (rows of a destination-sorted CSR)::

        logit[e, h] = (q[i, h] . k[j, h]) * mu[r, h] * scale
        out[i, h]   = sum_e softmax_i(logit)[e, h] * v[j, h]

    No per-edge [E, H, D] tensor is formed in the forward or the backward; on the CPU the forward
    keeps each edge's ``q . k`` and softmax weight ([E, 2, H]) so the backward does not recompute
    them.

    Args:
        q: [N, H, D] queries of the destination nodes.
        k: [M, H, D] keys in the concatenated source space, with the relation transforms
            already applied (see :class:`pygad.nn.HGTConv`). With ``v=None``: [M, 2, H, D] with
            each source row's key then value (the layout HGTConv projects into with one GEMM per
            relation; its gradient comes back in the same layout).
        v: [M, H, D] values, laid out as ``k``; None when ``k`` holds keys and values.
        mu: [R, H] relation priors.
        rowptr: destination-sorted CSR row pointer [N + 1] (see :func:`pygad.ops.hetero_csr`).
        col: the CSR's source index per entry [E].
        rel: the CSR's relation per entry [E].
        colptr: the transposed CSR's pointer (see :func:`pygad.ops.csr_transpose`), used by
            the backward so threads write disjoint rows.
        row: the transpose's destination index per entry.
        perm: the transpose's entry positions in CSR order.
        scale: logit scale, default ``1/sqrt(D)``.

    Returns:
        [N, H, D] attention output (zeros for destinations without incoming edges).
    """
    q = as_tensor(q, "q", floating=True)
    k, mu = as_tensor(k, "k", dtype=q.dtype), as_tensor(mu, "mu", dtype=q.dtype)
    if v is not None:
        v = as_tensor(v, "v", dtype=q.dtype)
    elif k.dim() != 4 or k.shape[1] != 2:
        raise PygadValueError(f"with v=None, 'k' must hold keys and values as [M, 2, H, D], got {list(k.shape)}")
    idx = [as_tensor(t, n, dtype=torch.int64)
           for t, n in zip((rowptr, col, rel, colptr, row, perm), ("rowptr", "col", "rel", "colptr", "row", "perm"))]
    if q.dim() != 3:
        raise PygadValueError(f"'q' must have shape [N, H, D], got {list(q.shape)}")
    if q.shape[2] == 0:
        raise PygadValueError(f"'q' must have a head width D >= 1, got shape {list(q.shape)}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[2])
    if torch.compiler.is_compiling():
        out, _, _ = _hetero_attention(q, k, v, mu, *idx, float(scale))
        return out
    return _EagerAttention.apply(q, k, v, mu, *idx, float(scale))
