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


def hetero_attention(q: Tensor, k: Tensor, v: Tensor | None, mu: Tensor, rowptr: Tensor, col: Tensor,
                     rel: Tensor, scale: float | None = None) -> Tensor:
    """Per-edge formulation of :func:`pygad.ops.hetero_attention` (materialises [E, H, D]).

    ``v=None`` takes keys and values interleaved in ``k`` [M, 2, H, D], as the op does.
    """
    if v is None:
        k, v = k[:, 0], k[:, 1]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[2])
    dst = segment_ids(rowptr, col.numel())
    logits = (q[dst] * k[col]).sum(-1) * mu[rel] * scale          # [E, H]
    alpha = segment_softmax(logits, rowptr)                        # [E, H]
    msg = alpha.unsqueeze(-1) * v[col]                             # [E, H, D]
    return q.new_zeros(q.shape).index_add(0, dst, msg)


# ---- EDM diffusion steps (twins of pygad.ops.diffusion_step) -------------------------------
# Torch-eager formulas in the kernels' operation order; ``out`` tuples are filled by copy.

def _edm_rows(sigma, like: Tensor) -> Tensor:
    if isinstance(sigma, (int, float)):
        return torch.full((like.shape[0],), float(sigma), dtype=like.dtype, device=like.device)
    return sigma


def _edm_fill(result: tuple, out) -> tuple:
    if out is None:
        return result
    out = (out,) if isinstance(out, Tensor) else tuple(out)
    for o, r in zip(out, result):
        o.copy_(r)
    return out


def edm_coefficients(sigma: Tensor, sigma_data: float = 0.5) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM preconditioning ``(c_skip, c_out, c_in, c_noise)`` per noise level [B]."""
    sd = float(sigma_data)
    v = sigma * sigma + sd * sd
    r = v.sqrt()
    return (sd * sd) / v, sigma * sd / r, 1 / r, sigma.log() / 4


def edm_loss_weight(sigma: Tensor, sigma_data: float = 0.5) -> Tensor:
    """EDM loss weight ``lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2``."""
    sd = float(sigma_data)
    ssd = sigma * sd
    return (sigma * sigma + sd * sd) / (ssd * ssd)


def edm_precondition(x: Tensor, sigma, sigma_data: float = 0.5, *, repeat: int = 1, sigma_hat=None, eps=None,
                     s_noise: float = 1.0, out=None):
    sigma = _edm_rows(sigma, x)
    if sigma_hat is not None:
        sigma_hat = _edm_rows(sigma_hat, x)
        scale = (sigma_hat * sigma_hat - sigma * sigma).clamp_min(0).sqrt() * float(s_noise)
        x_hat = x + scale[:, None] * eps
        _, _, c_in, c_noise = edm_coefficients(sigma_hat, sigma_data)
        net_in = (c_in[:, None] * x_hat).repeat(repeat, 1)
        return _edm_fill((x_hat, net_in, c_noise), out)
    _, _, c_in, c_noise = edm_coefficients(sigma, sigma_data)
    return _edm_fill(((c_in[:, None] * x).repeat(repeat, 1), c_noise), out)


def _edm_guided(f_cond: Tensor, f_uncond: Tensor | None, guidance: float) -> Tensor:
    return f_cond if f_uncond is None else f_uncond + float(guidance) * (f_cond - f_uncond)


def edm_step(x: Tensor, f_cond: Tensor, f_uncond: Tensor | None, sigma, sigma_next, guidance: float = 1.0,
             sigma_data: float = 0.5, *, repeat: int = 0, out=None):
    sigma, sigma_next = _edm_rows(sigma, x), _edm_rows(sigma_next, x)
    c_skip, c_out, _, _ = edm_coefficients(sigma, sigma_data)
    den = c_skip[:, None] * x + c_out[:, None] * _edm_guided(f_cond, f_uncond, guidance)
    deriv = (x - den) / sigma[:, None]
    x_next = x + (sigma_next - sigma)[:, None] * deriv
    if repeat > 0:
        c_in_next = edm_coefficients(sigma_next, sigma_data)[2]
        return _edm_fill((x_next, deriv, (c_in_next[:, None] * x_next).repeat(repeat, 1)), out)
    return _edm_fill((x_next, deriv), out)


def edm_heun(x_hat: Tensor, deriv: Tensor, x_next: Tensor, f_cond: Tensor, f_uncond: Tensor | None, sigma_hat,
             sigma_next, guidance: float = 1.0, sigma_data: float = 0.5, *, out=None) -> Tensor:
    sigma_hat, sigma_next = _edm_rows(sigma_hat, x_hat), _edm_rows(sigma_next, x_hat)
    last = sigma_next == 0
    s = torch.where(last, torch.ones_like(sigma_next), sigma_next)  # avoids 0/0 in rows that keep x_next
    c_skip, c_out, _, _ = edm_coefficients(s, sigma_data)
    den = c_skip[:, None] * x_next + c_out[:, None] * _edm_guided(f_cond, f_uncond, guidance)
    deriv2 = (x_next - den) / s[:, None]
    res = x_hat + (sigma_next - sigma_hat)[:, None] * (0.5 * deriv + 0.5 * deriv2)
    res = torch.where(last[:, None], x_next, res)
    return _edm_fill((res,), out)[0]


def edm_noise(z0: Tensor, eps: Tensor, sigma, sigma_data: float = 0.5) -> tuple[Tensor, Tensor]:
    sigma = _edm_rows(sigma, z0)
    _, _, c_in, c_noise = edm_coefficients(sigma, sigma_data)
    return c_in[:, None] * (z0 + sigma[:, None] * eps), c_noise


def edm_loss(f: Tensor, z0: Tensor, eps: Tensor, sigma, sigma_data: float = 0.5) -> Tensor:
    sigma = _edm_rows(sigma, f)
    c_skip, c_out, _, _ = edm_coefficients(sigma, sigma_data)
    z = z0 + sigma[:, None] * eps
    res = c_skip[:, None] * z + c_out[:, None] * f - z0
    return edm_loss_weight(sigma, sigma_data) * (res * res).mean(1)
