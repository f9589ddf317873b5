// Fused heterogeneous attention (the message-passing core of an HGT layer).
//
// For destination i and each incoming entry e = (j -> i) of relation r = rel[e] in a
// destination-sorted CSR over a concatenated source space:
//   logit[e, h] = (q[i, h] . k[j, h]) * mu[r, h] * scale
//   alpha[e, h] = softmax of logit over ALL entries of row i (all relations together)
//   out[i, h]   = sum_e alpha[e, h] * v[j, h]
// k and v already carry the per-relation transforms (K_s W_att_r, V_s W_msg_r), computed per
// node, never per edge. No [E, H, D] tensor is ever built: the forward keeps only
// lse[i, h] = log sum_e exp(logit) for the backward.
#pragma once
#include "common.h"

namespace pygad {

// q [N, H, D], k/v [M, H, D], mu [R, H], rowptr [N+1], col [E] in [0, M), rel [E] in [0, R)
// -> out [N, H, D], lse [N, H] (-inf on rows without entries, whose out is 0).
// v == nullptr: k is [M, 2, H, D] holding each source row's key and then its value (the layout
// HGTConv's projection writes with one GEMM per relation); grad_k then has that shape too and
// grad_v is nullptr. CPU only: the CUDA kernels take separate arrays.
// saved (optional, CPU only): [E, 2, H] receives each entry's raw q . k and softmax weight alpha,
// which the CPU backward then reads instead of recomputing (a dot product and an exp per entry
// and head).
void hetero_attention_forward(const Array& q, const Array& k, const Array* v, const Array& mu,
                              const Array& rowptr, const Array& col, const Array& rel, double scale,
                              const Array& out, const Array& lse, const Array* saved, int threads,
                              uintptr_t stream);

// Gradients of the forward for grad_out [N, H, D]. colptr [M+1], row [E], perm [E] are the
// transposed (source-sorted) CSR (see csr_transpose): on the CPU each thread then writes
// disjoint rows of grad_k/grad_v, no atomics. grad_mu [R, H] is reduced over threads.
void hetero_attention_backward(const Array& grad_out, const Array& q, const Array& k, const Array* v,
                               const Array& mu, const Array& rowptr, const Array& col, const Array& rel,
                               const Array& colptr, const Array& row, const Array& perm, double scale,
                               const Array& out, const Array& lse, const Array* saved, const Array& grad_q,
                               const Array& grad_k, const Array* grad_v, const Array& grad_mu, int threads,
                               uintptr_t stream);

// Raw-pointer view shared by the CPU and CUDA kernels.
template <typename T>
struct AttentionProblem {
  const T* q;              // [N, H, D]
  const T* k;              // [M, H, D]
  const T* v;              // [M, H, D]
  const T* mu;             // [R, H]
  const int64_t* rowptr;   // [N+1]
  const int64_t* col;      // [E]
  const int64_t* rel;      // [E]
  int64_t N, M, R, E, H, D;
  int64_t kv_stride;       // elements between rows of k, v, grad_k, grad_v: H*D, or 2*H*D interleaved
  T scale;
  T* saved = nullptr;      // [E, 2, H]: q . k and alpha per entry (CPU only; see hetero_attention_forward)
};

namespace cpu {
// Which build of the CPU attention kernels runs on this machine: "avx2" or "baseline".
const char* attention_kernel_isa();
template <typename T>
void hetero_attention_forward(const AttentionProblem<T>& p, T* out, T* lse, int threads);
template <typename T>
void hetero_attention_backward(const AttentionProblem<T>& p, const int64_t* colptr, const int64_t* row,
                               const int64_t* perm, const T* grad_out, const T* out, const T* lse, T* grad_q,
                               T* grad_k, T* grad_v, T* grad_mu, int threads);
}  // namespace cpu

namespace cuda {
template <typename T>
void hetero_attention_forward(const AttentionProblem<T>& p, T* out, T* lse, uintptr_t stream);
template <typename T>
void hetero_attention_backward(const AttentionProblem<T>& p, const int64_t* colptr, const int64_t* row,
                               const int64_t* perm, const T* grad_out, const T* out, const T* lse, T* grad_q,
                               T* grad_k, T* grad_v, T* grad_mu, uintptr_t stream);
}  // namespace cuda

}  // namespace pygad
