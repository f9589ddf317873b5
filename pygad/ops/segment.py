"""Segment reductions over CSR-ordered rows (native kernels as torch custom ops)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pygad.errors import PygadTypeError

from ._native import _C, as_tensor, check_ndim, desc, stream, threads


# ---- segment_sum ---------------------------------------------------------------------------
@torch.library.custom_op("pygad::segment_sum", mutates_args=())
def _segment_sum(src: Tensor, ptr: Tensor) -> Tensor:
    out = src.new_empty((ptr.shape[0] - 1, src.shape[1]))
    _C.segment_sum(desc(src), desc(ptr), desc(out), threads(), stream(src))
    return out


@_segment_sum.register_fake
def _(src, ptr):
    return src.new_empty((ptr.shape[0] - 1, src.shape[1]))


def _segment_sum_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.num_rows = inputs[0].shape[0]


def _segment_sum_backward(ctx, grad):
    (ptr,) = ctx.saved_tensors
    counts = ptr[1:] - ptr[:-1]
    return grad.repeat_interleave(counts, dim=0, output_size=ctx.num_rows), None


_segment_sum.register_autograd(_segment_sum_backward, setup_context=_segment_sum_setup)


def segment_sum(src, ptr):
    """Sum rows of ``src`` within each CSR segment.

    Args:
        src: float tensor [E, F]; rows ``ptr[i]:ptr[i+1]`` form segment i.
        ptr: int64 CSR pointer [N + 1] (starts at 0, non-decreasing, ends at E).

    Returns:
        [N, F] tensor (NumPy array for NumPy input); empty segments give 0.
    """
    is_np = isinstance(src, np.ndarray)
    src, ptr = as_tensor(src, "src", floating=True), as_tensor(ptr, "ptr", dtype=torch.int64)
    check_ndim(src, "src", 2, "[E, F]")
    check_ndim(ptr, "ptr", 1, "[N + 1]", min_rows=1)
    out = _segment_sum(src, ptr)
    return out.numpy() if is_np else out


# ---- segment_softmax -----------------------------------------------------------------------
@torch.library.custom_op("pygad::segment_softmax", mutates_args=())
def _segment_softmax(src: Tensor, ptr: Tensor) -> Tensor:
    out = torch.empty_like(src)
    _C.segment_softmax(desc(src), desc(ptr), desc(out), threads(), stream(src))
    return out


@_segment_softmax.register_fake
def _(src, ptr):
    return torch.empty_like(src)


@torch.library.custom_op("pygad::segment_softmax_backward", mutates_args=())
def _segment_softmax_backward(y: Tensor, grad_y: Tensor, ptr: Tensor) -> Tensor:
    grad = torch.empty_like(y)
    _C.segment_softmax_backward(desc(y), desc(grad_y.contiguous()), desc(ptr), desc(grad), threads(), stream(y))
    return grad


@_segment_softmax_backward.register_fake
def _(y, grad_y, ptr):
    return torch.empty_like(y)


def _segment_softmax_setup(ctx, inputs, output):
    ctx.save_for_backward(output, inputs[1])


def _segment_softmax_grad(ctx, grad):
    y, ptr = ctx.saved_tensors
    return _segment_softmax_backward(y, grad.contiguous(), ptr), None


_segment_softmax.register_autograd(_segment_softmax_grad, setup_context=_segment_softmax_setup)


def _ss_backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], inputs[1], inputs[2])


def _ss_backward_grad(ctx, gg):
    # Double backward, for gradcheck of the backward op itself: grad_src = y * (g - sum(y g)).
    y, g, ptr = ctx.saved_tensors
    gg = gg.contiguous()
    s_yg = _segment_sum(y * g, ptr)
    s_ygg = _segment_sum(y * gg, ptr)
    counts = ptr[1:] - ptr[:-1]
    rep = lambda t: t.repeat_interleave(counts, dim=0, output_size=y.shape[0])  # noqa: E731
    d_y = gg * (g - rep(s_yg)) - g * rep(s_ygg)
    d_g = y * (gg - rep(s_ygg))
    return d_y, d_g, None


_segment_softmax_backward.register_autograd(_ss_backward_grad, setup_context=_ss_backward_setup)


def segment_softmax(src, ptr):
    """Softmax of ``src`` within each CSR segment, column by column.

    Args:
        src: float tensor [E, H] (e.g. attention logits per edge and head).
        ptr: int64 CSR pointer [N + 1] over the E rows.

    Returns:
        [E, H] tensor whose rows in every segment sum to 1 per column.
    """
    is_np = isinstance(src, np.ndarray)
    src, ptr = as_tensor(src, "src", floating=True), as_tensor(ptr, "ptr", dtype=torch.int64)
    check_ndim(src, "src", 2, "[E, H]")
    check_ndim(ptr, "ptr", 1, "[N + 1]", min_rows=1)
    out = _segment_softmax(src, ptr)
    return out.numpy() if is_np else out


# ---- neighbor_aggregate --------------------------------------------------------------------
@torch.library.custom_op("pygad::neighbor_aggregate", mutates_args=())
def _neighbor_aggregate(x: Tensor, rowptr: Tensor, col: Tensor, reduce: str) -> Tensor:
    out = x.new_empty((rowptr.shape[0] - 1, x.shape[1]))
    _C.neighbor_aggregate(desc(x), desc(rowptr), desc(col), desc(out), reduce, threads(), stream(x))
    return out


@_neighbor_aggregate.register_fake
def _(x, rowptr, col, reduce):
    return x.new_empty((rowptr.shape[0] - 1, x.shape[1]))


def neighbor_aggregate(x, rowptr, col, reduce: str = "mean"):
    """Reduce neighbours' feature rows without materialising ``x[col]``.

    Args:
        x: float tensor [M, F] of source-node features.
        rowptr: int64 CSR pointer [N + 1]; row i's neighbours are ``col[rowptr[i]:rowptr[i+1]]``.
        col: int64 [E] source indices in [0, M).
        reduce: ``"sum"``, ``"mean"`` or ``"max"``; rows without neighbours give 0.

    Returns:
        [N, F] tensor (NumPy array for NumPy input). Not differentiable (feature engineering).
    """
    is_np = isinstance(x, np.ndarray)
    x, rowptr = as_tensor(x, "x", floating=True), as_tensor(rowptr, "rowptr", dtype=torch.int64)
    col = as_tensor(col, "col", dtype=torch.int64)
    check_ndim(x, "x", 2, "[M, F]")
    check_ndim(rowptr, "rowptr", 1, "[N + 1]", min_rows=1)
    if not isinstance(reduce, str):
        raise PygadTypeError(f"'reduce' must be one of 'sum', 'mean', 'max', got {reduce!r}")
    out = _neighbor_aggregate(x, rowptr, col, reduce)
    return out.numpy() if is_np else out
