"""Type stub of pygad's native extension (csrc/bindings.cpp). Use :mod:`pygad.ops`, not this module.

Arrays cross the boundary as descriptors ``(data_ptr, dtype, shape, device)`` (device -1 = CPU,
dtype one of float32, float64, int64, int32, uint8); outputs are preallocated by the caller.
``threads`` is the CPU thread count (<= 0: OpenMP's default), ``stream`` a CUDA stream handle
(0 = default). Errors are :class:`pygad.errors.PygadValueError` / ``PygadTypeError``.
"""
from typing import Any, Optional

import numpy as np

ArrayDesc = tuple[int, str, tuple[int, ...], int]

def build_info() -> dict[str, Any]: ...

# ---- segment ops (csrc/ops/segment.h)
def segment_sum(src: ArrayDesc, ptr: ArrayDesc, out: ArrayDesc, threads: int, stream: int) -> None: ...
def segment_softmax(src: ArrayDesc, ptr: ArrayDesc, out: ArrayDesc, threads: int, stream: int) -> None: ...
def segment_softmax_backward(y: ArrayDesc, grad_y: ArrayDesc, ptr: ArrayDesc, grad_src: ArrayDesc, threads: int,
                             stream: int) -> None: ...
def neighbor_aggregate(x: ArrayDesc, rowptr: ArrayDesc, col: ArrayDesc, out: ArrayDesc, reduce: str, threads: int,
                       stream: int) -> None: ...

# ---- heterogeneous CSR/CSC (csrc/ops/csr.h)
def hetero_csr(edge_index: list[ArrayDesc], src_offset: list[int], num_src: list[int], num_dst: int,
               rowptr: ArrayDesc, col: ArrayDesc, rel: ArrayDesc, eid: ArrayDesc, threads: int,
               stream: int) -> None: ...
def csr_transpose(rowptr: ArrayDesc, col: ArrayDesc, num_cols: int, colptr: ArrayDesc, row: ArrayDesc,
                  perm: ArrayDesc, threads: int, stream: int) -> None: ...

# ---- fused heterogeneous attention (csrc/ops/hetero_attention.h)
def hetero_attention_forward(q: ArrayDesc, k: ArrayDesc, v: Optional[ArrayDesc], mu: ArrayDesc, rowptr: ArrayDesc,
                             col: ArrayDesc, rel: ArrayDesc, scale: float, out: ArrayDesc, lse: ArrayDesc,
                             saved: Optional[ArrayDesc], threads: int, stream: int) -> None: ...
def hetero_attention_backward(grad_out: ArrayDesc, q: ArrayDesc, k: ArrayDesc, v: Optional[ArrayDesc],
                              mu: ArrayDesc, rowptr: ArrayDesc, col: ArrayDesc, rel: ArrayDesc, colptr: ArrayDesc,
                              row: ArrayDesc, perm: ArrayDesc, scale: float, out: ArrayDesc, lse: ArrayDesc,
                              saved: Optional[ArrayDesc], grad_q: ArrayDesc, grad_k: ArrayDesc,
                              grad_v: Optional[ArrayDesc], grad_mu: ArrayDesc, threads: int, stream: int) -> None: ...

# ---- fused EDM diffusion steps (csrc/ops/diffusion_step.h)
def edm_precondition(x: ArrayDesc, sigma: ArrayDesc, sigma_hat: Optional[ArrayDesc], eps: Optional[ArrayDesc],
                     s_noise: float, sigma_data: float, repeat: int, x_hat: Optional[ArrayDesc], net_in: ArrayDesc,
                     c_noise: ArrayDesc, threads: int, stream: int) -> None: ...
def edm_step(x: ArrayDesc, f_cond: ArrayDesc, f_uncond: Optional[ArrayDesc], sigma: ArrayDesc,
             sigma_next: ArrayDesc, guidance: float, sigma_data: float, repeat: int, x_next: ArrayDesc,
             deriv: ArrayDesc, net_in_next: Optional[ArrayDesc], threads: int, stream: int) -> None: ...
def edm_heun(x_hat: ArrayDesc, deriv: ArrayDesc, x_next: ArrayDesc, f_cond: ArrayDesc,
             f_uncond: Optional[ArrayDesc], sigma_hat: ArrayDesc, sigma_next: ArrayDesc, guidance: float,
             sigma_data: float, out: ArrayDesc, threads: int, stream: int) -> None: ...
def edm_noise(z0: ArrayDesc, eps: ArrayDesc, sigma: ArrayDesc, sigma_data: float, net_in: ArrayDesc,
              c_noise: ArrayDesc, threads: int, stream: int) -> None: ...
def edm_loss(f: ArrayDesc, z0: ArrayDesc, eps: ArrayDesc, sigma: ArrayDesc, sigma_data: float, loss: ArrayDesc,
             threads: int, stream: int) -> None: ...
def edm_loss_backward(grad_loss: ArrayDesc, f: ArrayDesc, z0: ArrayDesc, eps: ArrayDesc, sigma: ArrayDesc,
                      sigma_data: float, grad_f: ArrayDesc, threads: int, stream: int) -> None: ...

# ---- neighbour sampling (csrc/ops/sampling.h): (nodes, node_counts, edges [2, E'], edge_counts) per type/relation
def neighbor_sample(rowptr: list[ArrayDesc], col: list[ArrayDesc], src_type: list[int], dst_type: list[int],
                    num_nodes: list[int], seeds: list[ArrayDesc], fanouts: list[int], seed: int,
                    threads: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray],
                                           list[np.ndarray]]: ...
