"""Autograd blocks around the fused attention op in an HGT layer (:class:`pygad.nn.HGTConv`).

* :class:`KeyValueProjection` writes the keys and values of all relations into one
  destination type straight into the interleaved ``[M, 2F]`` buffer that
  :func:`pygad.ops.hetero_attention` takes with ``v=None``.
* :class:`GatedOutput` is the layer's output block (gelu, output projection, gated skip) as
  one autograd node.

Both are plain torch arithmetic with hand-written backwards that make fewer passes over
memory than the autograd graph of the same expression.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


# ---- key/value projection ---------------------------------------------------------------------
class KeyValueProjection(torch.autograd.Function):
    """Keys and values of all relations into one destination type, in one [M, 2F] buffer.

    Keys and values of all relations into one destination type, in one [M, 2F] buffer in the
    kernel's concatenated source order: row block r is ``x_{s_r}[rows_r] @ [Wk_r | Wv_r] + [bk_r | bv_r]``,
    so each source row's key sits next to its value (the attention op's interleaved layout).

    One GEMM per relation writes straight into its rows (no ``torch.cat``; x is read once for
    both keys and values), and the backward reads the gradient's rows as views: one GEMM for the
    input gradient and one for the weight gradient per relation, and one input gradient per
    distinct source tensor (relations sharing a source type, or using a compacted subset
    ``rows_r`` of it, accumulate into it in place instead of each returning a full-size gradient
    for autograd to add up).

    Called as ``apply(src, rows, x_1..x_S, w_1..w_n, b_1..b_n)``: ``src[r]`` is the index of
    relation r's source tensor among the S tensors ``x``, ``rows[r]`` its source rows (int64) or
    None for all; weights [in, 2F], biases [2F].
    """

    @staticmethod
    def forward(ctx, src, rows, *args):
        """The stacked ``[M, 2F]`` key/value buffer of the relations ``src`` (rows ``rows``)."""
        n = len(src)
        S = len(args) - 2 * n
        xs, ws, bs = args[:S], args[S:S + n], args[S + n:]
        counts = [xs[src[r]].shape[0] if rows[r] is None else rows[r].numel() for r in range(n)]
        kv = xs[0].new_empty((sum(counts), ws[0].shape[1]))
        o = 0
        for r, m in enumerate(counts):
            x = xs[src[r]] if rows[r] is None else xs[src[r]].index_select(0, rows[r])
            torch.addmm(bs[r], x, ws[r], out=kv[o:o + m])
            o += m
        ctx.src, ctx.rows, ctx.counts, ctx.S = src, rows, counts, S
        ctx.save_for_backward(*xs, *ws)
        return kv

    @staticmethod
    def backward(ctx, grad_kv):
        """Gradients of the inputs, weights and biases from the gradient of the key/value buffer."""
        src, rows, counts, S = ctx.src, ctx.rows, ctx.counts, ctx.S
        n = len(src)
        saved = ctx.saved_tensors
        xs, ws = saved[:S], saved[S:]
        need = ctx.needs_input_grad[2:]
        gx = [None] * S
        gw, gb = [None] * n, [None] * n
        g_all = grad_kv.contiguous()
        o = 0
        for r, m in enumerate(counts):
            g = g_all[o:o + m]
            o += m
            s = src[r]
            if need[s]:
                if rows[r] is None:       # accumulate straight into the source's gradient
                    if gx[s] is None:
                        gx[s] = g @ ws[r].t()
                    else:
                        gx[s].addmm_(g, ws[r].t())
                else:                     # a compacted subset: scatter its rows in place
                    if gx[s] is None:
                        gx[s] = torch.zeros_like(xs[s])
                    gx[s].index_add_(0, rows[r], g @ ws[r].t())
            if need[S + r]:
                x = xs[s] if rows[r] is None else xs[s].index_select(0, rows[r])
                gw[r] = x.t() @ g
            if need[S + n + r]:
                gb[r] = g.sum(0)
        return (None, None, *gx, *gw, *gb)


# ---- output block: gelu, output projection and gated skip in one autograd node ---------------
class GatedOutput(torch.autograd.Function):
    """``out = s * (gelu(agg) W^T + b) + (1 - s) * x`` with ``s = sigmoid(gate)``.

    The same value as ``torch.lerp(x, linear(gelu(agg)), s)``, computed with fewer passes over
    [N, F] memory (on small graphs an HGT step is bound by memory traffic, not FLOPs): the
    forward writes ``(1 - s) x + s b`` once and lets the GEMM accumulate into it; the backward
    needs no ``y - x`` tensor because ``sum(grad * (y - x)) = <W, grad^T h> + <b, colsum(grad)>
    - <grad, x>``, and ``grad^T h`` is the weight gradient's GEMM anyway.
    """

    @staticmethod
    def forward(ctx, agg, x, weight, bias, gate):
        """``lerp(x, bias, s) + s * gelu(agg) @ W^T`` with the skip gate ``s = sigmoid(gate)``."""
        s = torch.sigmoid(gate)
        h = F.gelu(agg)
        out = torch.lerp(x, bias, s)                 # (1 - s) x + s b
        out.addmm_(h, (weight * s).t())              # + s h W^T
        ctx.save_for_backward(agg, h, x, weight, bias, s)
        return out

    @staticmethod
    def backward(ctx, grad):
        """Gradients of ``agg``, ``x``, ``weight``, ``bias`` and ``gate`` from the output gradient."""
        agg, h, x, weight, bias, s = ctx.saved_tensors
        need_agg, need_x, need_w, need_b, need_gate = ctx.needs_input_grad
        grad = grad.contiguous()
        g_agg = g_x = g_w = g_b = g_gate = None
        if need_agg:
            g_agg = torch.ops.aten.gelu_backward(grad @ (weight * s), agg)
        if need_x:
            g_x = grad * (1 - s)
        if need_w or need_b or need_gate:
            colsum = grad.sum(0)
            prod = grad.t() @ h                      # [F_out, F_in]: grad^T h
            g_w = prod * s if need_w else None
            g_b = colsum * s if need_b else None
            if need_gate:
                g_s = (weight * prod).sum() + torch.dot(bias, colsum) - torch.dot(grad.view(-1), x.reshape(-1))
                g_gate = g_s * s * (1 - s)
        return g_agg, g_x, g_w, g_b, g_gate


__all__ = ["GatedOutput", "KeyValueProjection"]
