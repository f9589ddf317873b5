// CUDA kernels of the fused heterogeneous attention (see ops/hetero_attention.h for the math).
//
// Work split: a group of G lanes (G a power of two <= 32, lanes of one warp) owns one
// (row, head) pair; lane l of the group holds columns l, l + G, ... of that head. Dot products
// are partial sums per lane followed by a butterfly over the group (every lane ends with the
// bitwise-same value, so branches on it are uniform). Groups of one warp usually work on
// different heads of the same row, so they read neighbouring k/v memory.
//   D <= 32: G = next power of two >= D, one column per lane (VPT = 1)
//   D <= 64: G = 32, two columns per lane;  D <= 128: G = 32, four columns per lane
//   D > 128: G = 32, accumulators live in the output row itself (VPT = 0, "generic")
// Both paths are one code path: LaneIn/LaneAcc hold the lane's columns in registers or point
// at the row, for_lane_cols visits them in the same order, so the arithmetic is the same.
//
// Forward: one pass over the row's entries with an online softmax (running max m and sum s;
// when a bigger logit arrives the accumulators are rescaled by exp(m_old - m_new)).
// Writes out [N, H, D] and lse [N, H] = m + log(s) (-inf and out = 0 on empty rows).
//
// Backward, three deterministic steps, no atomics (float64 gradcheck needs bitwise-repeatable
// gradients):
//   A. destination rows (CSR): recompute alpha = exp(logit - lse) and
//      dlogit = alpha * (g_i . v_j - g_i . out_i); accumulate grad_q in registers; store
//      alpha, dlogit and the grad_mu term dlogit * (q.k) * scale per entry and head ([E, H] each)
//      in a stream-ordered workspace.
//   B. source rows (transposed CSR, colptr/row/perm): grad_k[j] = sum dlogit * mu * scale * q_i,
//      grad_v[j] = sum alpha * grad_out_i, in ascending destination order.
//   C. grad_mu [R, H]: fixed-size chunks of entries -> per-chunk partial sums per (relation, head)
//      (a fixed-order tree in shared memory), then one thread per (relation, head) adds its
//      chunk partials in order.
// Every output element is written (the caller passes uninitialised tensors).
#include <type_traits>

#include "cuda_utils.cuh"
#include "ops/hetero_attention.h"

namespace pygad::cuda {

namespace {

struct Layout {
  int g;    // lanes per (row, head) pair
  int vpt;  // columns per lane held in registers; 0 = generic path
};

Layout choose_layout(int64_t D) {
  if (D <= 32) {
    int g = 1;
    while (g < D) g <<= 1;
    return {g, 1};
  }
  if (D <= 64) return {32, 2};
  if (D <= 128) return {32, 4};
  return {32, 0};
}

// ---- the lane's columns: registers or memory, one code path -------------------------------
// Lane gl of a group owns columns gl, gl + G, ... (below D) of one (row, head). for_lane_cols
// calls fn(t, c) for each of them in ascending order (t = the lane's t-th column, c its index
// in the head); VPT > 0 unrolls over VPT register slots, VPT == 0 strides through the row.
template <int VPT, typename Fn>
__device__ __forceinline__ void for_lane_cols(int gl, int G, int64_t D, Fn&& fn) {
  if constexpr (VPT > 0) {
#pragma unroll
    for (int t = 0; t < VPT; ++t) {
      const int64_t c = gl + t * G;
      if (c < D) fn(t, c);
    }
  } else {
    for (int64_t c = gl; c < D; c += G) fn(0, c);
  }
}

// A read-only row of the lane: copied into VPT registers (0 past D), or (VPT == 0) read in place.
template <typename T, int VPT>
struct LaneIn {
  T r[VPT];
  __device__ __forceinline__ LaneIn(const T* __restrict__ row, int gl, int G, int64_t D) {
#pragma unroll
    for (int t = 0; t < VPT; ++t) {
      const int64_t c = gl + t * G;
      r[t] = c < D ? row[c] : T(0);
    }
  }
  __device__ __forceinline__ T operator()(int t, int64_t) const { return r[t]; }
};
template <typename T>
struct LaneIn<T, 0> {
  const T* __restrict__ row;
  __device__ __forceinline__ LaneIn(const T* __restrict__ p, int, int, int64_t) : row(p) {}
  __device__ __forceinline__ T operator()(int, int64_t c) const { return row[c]; }
};

// An accumulator over the lane's columns that ends up in `dst` (the output row): VPT registers
// written to dst by store(), or (VPT == 0) dst itself, accumulated in place. Starts at 0.
template <typename T, int VPT>
struct LaneAcc {
  T r[VPT];
  T* __restrict__ dst;
  __device__ __forceinline__ LaneAcc(T* __restrict__ p, int, int, int64_t) : dst(p) {
#pragma unroll
    for (int t = 0; t < VPT; ++t) r[t] = 0;
  }
  __device__ __forceinline__ T& operator()(int t, int64_t) { return r[t]; }
  __device__ __forceinline__ void store(int gl, int G, int64_t D) {
    for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) { dst[c] = r[t]; });
  }
};
template <typename T>
struct LaneAcc<T, 0> {
  T* __restrict__ dst;
  __device__ __forceinline__ LaneAcc(T* __restrict__ p, int gl, int G, int64_t D) : dst(p) {
    for_lane_cols<0>(gl, G, D, [&](int, int64_t c) { dst[c] = 0; });
  }
  __device__ __forceinline__ T& operator()(int, int64_t c) { return dst[c]; }
  __device__ __forceinline__ void store(int, int, int64_t) {}
};

// ---- forward -------------------------------------------------------------------------------
template <typename T, int VPT>
__global__ void __launch_bounds__(kBlock)
    attention_forward_kernel(const AttentionProblem<T> p, T* __restrict__ out, T* __restrict__ lse, int G) {
  const T* __restrict__ q = p.q;
  const T* __restrict__ k = p.k;
  const T* __restrict__ v = p.v;
  const T* __restrict__ mu = p.mu;
  const int64_t* __restrict__ rowptr = p.rowptr;
  const int64_t* __restrict__ col = p.col;
  const int64_t* __restrict__ rel = p.rel;
  const int64_t H = p.H, D = p.D, HD = p.H * p.D;
  const T scale = p.scale;
  const unsigned mask = group_mask(G);
  const int gl = threadIdx.x & (G - 1);
  const int64_t pairs = p.N * H, stride = global_threads() / G;

  for (int64_t pr = global_thread() / G; pr < pairs; pr += stride) {
    const int64_t i = pr / H, h = pr - i * H;
    const int64_t b = rowptr[i], end = rowptr[i + 1];
    const int64_t base = i * HD + h * D;
    T* o = out + base;
    T m = neg_inf<T>(), s = 0;
    const LaneIn<T, VPT> qr(q + base, gl, G, D);
    LaneAcc<T, VPT> acc(o, gl, G, D);
    for (int64_t x = b; x < end; ++x) {
      const int64_t off = col[x] * HD + h * D;
      T dot = 0;
      for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) { dot += qr(t, c) * k[off + c]; });
      dot = group_sum(dot, mask, G);
      const T logit = dot * mu[rel[x] * H + h] * scale;
      T corr = 1, a;
      if (logit > m) {
        corr = exp_(m - logit);
        a = 1;
        m = logit;
      } else {
        a = exp_(logit - m);
      }
      s = s * corr + a;
      for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) { acc(t, c) = acc(t, c) * corr + a * v[off + c]; });
    }
    const T inv = end > b ? T(1) / s : T(0);
    for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) { acc(t, c) = end > b ? acc(t, c) * inv : T(0); });
    acc.store(gl, G, D);
    if (gl == 0) lse[pr] = end > b ? m + log_(s) : neg_inf<T>();
  }
}

// ---- backward A: destination rows ----------------------------------------------------------
template <typename T, int VPT>
__global__ void __launch_bounds__(kBlock)
    attention_backward_rows_kernel(const AttentionProblem<T> p, const T* __restrict__ grad_out,
                                   const T* __restrict__ out, const T* __restrict__ lse, T* __restrict__ grad_q,
                                   T* __restrict__ alpha_ws, T* __restrict__ dlogit_ws, T* __restrict__ gmu_ws,
                                   int G) {
  const T* __restrict__ q = p.q;
  const T* __restrict__ k = p.k;
  const T* __restrict__ v = p.v;
  const T* __restrict__ mu = p.mu;
  const int64_t* __restrict__ rowptr = p.rowptr;
  const int64_t* __restrict__ col = p.col;
  const int64_t* __restrict__ rel = p.rel;
  const int64_t H = p.H, D = p.D, HD = p.H * p.D;
  const T scale = p.scale;
  const unsigned mask = group_mask(G);
  const int gl = threadIdx.x & (G - 1);
  const int64_t pairs = p.N * H, stride = global_threads() / G;

  for (int64_t pr = global_thread() / G; pr < pairs; pr += stride) {
    const int64_t i = pr / H, h = pr - i * H;
    const int64_t b = rowptr[i], end = rowptr[i + 1];
    const int64_t base = i * HD + h * D;
    const LaneIn<T, VPT> qr(q + base, gl, G, D), gr(grad_out + base, gl, G, D);
    LaneAcc<T, VPT> acc(grad_q + base, gl, G, D);
    T delta = 0;
    for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) { delta += gr(t, c) * out[base + c]; });
    delta = group_sum(delta, mask, G);
    const T l = lse[pr];
    for (int64_t x = b; x < end; ++x) {
      const int64_t off = col[x] * HD + h * D;
      T qk = 0, gv = 0;
      for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) {
        qk += qr(t, c) * k[off + c];
        gv += gr(t, c) * v[off + c];
      });
      qk = group_sum(qk, mask, G);
      gv = group_sum(gv, mask, G);
      const T ms = mu[rel[x] * H + h] * scale;
      const T a = exp_(qk * ms - l);
      const T ds = a * (gv - delta);
      for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) { acc(t, c) += ds * ms * k[off + c]; });
      if (gl == 0) {
        alpha_ws[x * H + h] = a;
        dlogit_ws[x * H + h] = ds;
        gmu_ws[x * H + h] = ds * qk * scale;
      }
    }
    acc.store(gl, G, D);
  }
}

// ---- backward B: source rows of the transpose ------------------------------------------------
template <typename T, int VPT>
__global__ void __launch_bounds__(kBlock)
    attention_backward_cols_kernel(const AttentionProblem<T> p, const int64_t* __restrict__ colptr,
                                   const int64_t* __restrict__ row, const int64_t* __restrict__ perm,
                                   const T* __restrict__ grad_out, const T* __restrict__ alpha_ws,
                                   const T* __restrict__ dlogit_ws, T* __restrict__ grad_k, T* __restrict__ grad_v,
                                   int G) {
  const T* __restrict__ q = p.q;
  const T* __restrict__ mu = p.mu;
  const int64_t* __restrict__ rel = p.rel;
  const int64_t H = p.H, D = p.D, HD = p.H * p.D;
  const T scale = p.scale;
  const int gl = threadIdx.x & (G - 1);
  const int64_t pairs = p.M * H, stride = global_threads() / G;

  for (int64_t pr = global_thread() / G; pr < pairs; pr += stride) {
    const int64_t j = pr / H, h = pr - j * H;
    const int64_t b = colptr[j], end = colptr[j + 1];
    const int64_t base = j * HD + h * D;
    LaneAcc<T, VPT> ak(grad_k + base, gl, G, D), av(grad_v + base, gl, G, D);
    for (int64_t y = b; y < end; ++y) {
      const int64_t x = perm[y], off = row[y] * HD + h * D;
      const T coef = dlogit_ws[x * H + h] * mu[rel[x] * H + h] * scale;
      const T a = alpha_ws[x * H + h];
      for_lane_cols<VPT>(gl, G, D, [&](int t, int64_t c) {
        ak(t, c) += coef * q[off + c];
        av(t, c) += a * grad_out[off + c];
      });
    }
    ak.store(gl, G, D);
    av.store(gl, G, D);
  }
}

// ---- backward C: grad_mu ---------------------------------------------------------------------
// Block (c, r): entries [c * chunk, (c + 1) * chunk) of relation r. Thread t takes head column
// h0 + t % HT and entry lane t / HT; lanes are then added in order. blockDim must be kBlock.
template <typename T>
__global__ void __launch_bounds__(kBlock)
    mu_partial_kernel(const T* __restrict__ gmu_ws, const int64_t* __restrict__ rel, int64_t E, int64_t H,
                      int64_t R, int64_t chunk, T* __restrict__ partial) {
  __shared__ T sm[kBlock];
  const int64_t nchunks = gridDim.x, c = blockIdx.x;
  const int64_t lo = c * chunk, hi = (lo + chunk < E) ? lo + chunk : E;
  const int HT = static_cast<int>(H < kBlock ? H : kBlock);
  const int lanes = kBlock / HT;
  const int t = threadIdx.x, hc = t % HT, lane = t / HT;
  for (int64_t r = blockIdx.y; r < R; r += gridDim.y) {
    for (int64_t h0 = 0; h0 < H; h0 += HT) {
      const int64_t h = h0 + hc;
      T acc = 0;
      if (lane < lanes && h < H)
        for (int64_t x = lo + lane; x < hi; x += lanes)
          if (rel[x] == r) acc += gmu_ws[x * H + h];
      sm[t] = acc;
      __syncthreads();
      if (t < HT && h0 + t < H) {
        T sum = 0;
        for (int l = 0; l < lanes; ++l) sum += sm[l * HT + t];
        partial[(r * H + h0 + t) * nchunks + c] = sum;
      }
      __syncthreads();
    }
  }
}

template <typename T>
__global__ void mu_final_kernel(const T* __restrict__ partial, int64_t nchunks, int64_t RH, T* __restrict__ grad_mu) {
  for (int64_t t = global_thread(); t < RH; t += global_threads()) {
    T sum = 0;
    for (int64_t c = 0; c < nchunks; ++c) sum += partial[t * nchunks + c];
    grad_mu[t] = sum;
  }
}

// The one switch from a layout's VPT to the kernel instantiation: fn(std::integral_constant<int, VPT>).
template <typename Fn>
void dispatch_vpt(int vpt, Fn&& fn) {
  switch (vpt) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 4: fn(std::integral_constant<int, 4>{}); break;
    default: fn(std::integral_constant<int, 0>{}); break;
  }
}

}  // namespace

template <typename T>
void hetero_attention_forward(const AttentionProblem<T>& p, T* out, T* lse, uintptr_t stream) {
  if (p.N * p.H == 0) return;  // out and lse are empty
  DeviceGuard guard(p.rowptr);
  const Layout L = choose_layout(p.D);
  const cudaStream_t s = as_stream(stream);
  const unsigned grid = grid_for(p.N * p.H * L.g);
  dispatch_vpt(L.vpt, [&](auto V) {
    attention_forward_kernel<T, decltype(V)::value><<<grid, kBlock, 0, s>>>(p, out, lse, L.g);
  });
  PYGAD_CUDA_CHECK_LAUNCH("attention_forward_kernel");
}

template <typename T>
void hetero_attention_backward(const AttentionProblem<T>& p, const int64_t* colptr, const int64_t* row,
                               const int64_t* perm, const T* grad_out, const T* out, const T* lse, T* grad_q,
                               T* grad_k, T* grad_v, T* grad_mu, uintptr_t stream) {
  const cudaStream_t s = as_stream(stream);
  DeviceGuard guard(p.rowptr);
  const int64_t H = p.H, E = p.E, R = p.R, EH = p.E * p.H, RH = p.R * p.H;
  // Chunks of >= 2048 entries, at most ~1024 of them: few partials, enough blocks.
  int64_t chunk = (E + 1023) / 1024;
  if (chunk < 2048) chunk = 2048;
  const int64_t nchunks = EH > 0 ? (E + chunk - 1) / chunk : 0;

  Carver sizing;
  sizing.take<T>(EH);
  sizing.take<T>(EH);
  sizing.take<T>(EH);
  sizing.take<T>(RH * nchunks);
  Workspace ws(sizing.bytes(), s);
  Carver carve(ws.get());
  T* alpha = carve.take<T>(EH);
  T* dlogit = carve.take<T>(EH);
  T* gmu = carve.take<T>(EH);
  T* partial = carve.take<T>(RH * nchunks);

  const Layout L = choose_layout(p.D);
  if (p.N * H > 0) {
    const unsigned grid = grid_for(p.N * H * L.g);
    dispatch_vpt(L.vpt, [&](auto V) {
      attention_backward_rows_kernel<T, decltype(V)::value>
          <<<grid, kBlock, 0, s>>>(p, grad_out, out, lse, grad_q, alpha, dlogit, gmu, L.g);
    });
    PYGAD_CUDA_CHECK_LAUNCH("attention_backward_rows_kernel");
  }
  if (p.M * H > 0) {
    const unsigned grid = grid_for(p.M * H * L.g);
    dispatch_vpt(L.vpt, [&](auto V) {
      attention_backward_cols_kernel<T, decltype(V)::value>
          <<<grid, kBlock, 0, s>>>(p, colptr, row, perm, grad_out, alpha, dlogit, grad_k, grad_v, L.g);
    });
    PYGAD_CUDA_CHECK_LAUNCH("attention_backward_cols_kernel");
  }
  if (RH > 0) {
    if (nchunks > 0) {
      const dim3 grid(static_cast<unsigned>(nchunks), static_cast<unsigned>(R < 65535 ? R : 65535));
      mu_partial_kernel<T><<<grid, kBlock, 0, s>>>(gmu, p.rel, E, H, R, chunk, partial);
      PYGAD_CUDA_CHECK_LAUNCH("mu_partial_kernel");
    }
    mu_final_kernel<T><<<grid_for(RH), kBlock, 0, s>>>(partial, nchunks, RH, grad_mu);
    PYGAD_CUDA_CHECK_LAUNCH("mu_final_kernel");
  }
}

template void hetero_attention_forward<float>(const AttentionProblem<float>&, float*, float*, uintptr_t);
template void hetero_attention_forward<double>(const AttentionProblem<double>&, double*, double*, uintptr_t);
template void hetero_attention_backward<float>(const AttentionProblem<float>&, const int64_t*, const int64_t*,
                                               const int64_t*, const float*, const float*, const float*, float*,
                                               float*, float*, float*, uintptr_t);
template void hetero_attention_backward<double>(const AttentionProblem<double>&, const int64_t*, const int64_t*,
                                                const int64_t*, const double*, const double*, const double*,
                                                double*, double*, double*, double*, uintptr_t);

}  // namespace pygad::cuda
