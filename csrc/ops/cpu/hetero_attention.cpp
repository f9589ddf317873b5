// CPU kernels of the fused heterogeneous attention.
//
// Forward: one destination row per task. Pass 1 computes the row's logits [deg, H] into a
// thread-local buffer and their max; pass 2 exponentiates and accumulates v. Per row we touch
// q once and each k/v row of a neighbour once; nothing of size [E, H, D] exists.
// When the caller passes p.saved ([E, 2, H]), the forward also stores each entry's raw q . k and
// its softmax weight alpha there, and pass A of the backward reads them instead of computing a
// dot product and an exp again.
// Rows of k and v (and of grad_k and grad_v) are p.kv_stride elements apart: H*D for separate
// arrays, 2*H*D when keys and values share one [M, 2, H, D] buffer (each source row's key and
// value then sit next to each other, and one GEMM per relation produces both).
// Backward: pass A walks destination rows (grad_q rows are disjoint) and stores per-entry
// alpha and dlogit [E, H] in transpose order; pass B walks the source-sorted transpose so each thread owns whole
// rows of grad_k/grad_v: no atomics anywhere. grad_mu [R, H] is reduced from per-thread copies.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "ops/hetero_attention.h"

// This file is compiled twice: as the baseline (x86-64 SSE2 or the target's default ISA) and,
// where the compiler can target it, again as cpu/isa/hetero_attention_avx2.cpp with AVX2+FMA
// (PYGAD_CPU_ISA=avx2). The baseline's entry points pick the AVX2 build at run time when the
// CPU has it, so one wheel runs everywhere and uses 256-bit FMA where available.
#ifndef PYGAD_CPU_ISA
#define PYGAD_CPU_ISA baseline
#endif

namespace pygad::cpu {

namespace PYGAD_CPU_ISA {

namespace {

// DC > 0: head width known at compile time (unrolled, vectorised); DC == 0: runtime width.
template <int DC>
struct Width {
  int64_t d;
  explicit Width(int64_t runtime) : d(DC > 0 ? DC : runtime) {}
  int64_t operator()() const { return DC > 0 ? DC : d; }
};

template <typename T, int DC>
inline T dot(const T* a, const T* b, Width<DC> w) {
  T s = 0;
  const int64_t D = w();
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < D; ++c) s += a[c] * b[c];
  return s;
}

template <typename T, int DC>
inline void axpy(T alpha, const T* x, T* y, Width<DC> w) {
  const int64_t D = w();
#pragma omp simd
  for (int64_t c = 0; c < D; ++c) y[c] += alpha * x[c];
}

// Prefetch one row of HD values (gathers of k/v/q rows are random; the next few entries'
// rows are requested while the current one is computed).
template <typename T>
inline void prefetch_row(const T* r, int64_t HD) {
  for (int64_t off = 0; off < HD * static_cast<int64_t>(sizeof(T)); off += 64)
    __builtin_prefetch(reinterpret_cast<const char*>(r) + off);
}
constexpr int64_t kAhead = 4;

template <typename T, int DC>
void forward_impl(const AttentionProblem<T>& p, T* out, T* lse, int threads) {
  const int64_t H = p.H, HD = p.H * p.D, KS = p.kv_stride;
  const Width<DC> w(p.D);
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> logits;  // [deg, H] of the current row
    std::vector<T> mx(H), sum(H);
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < p.N; ++i) {
      const int64_t b = p.rowptr[i], e = p.rowptr[i + 1], deg = e - b;
      T* o = out + i * HD;
      std::fill(o, o + HD, T(0));
      if (deg == 0) {
        std::fill(lse + i * H, lse + (i + 1) * H, -std::numeric_limits<T>::infinity());
        continue;
      }
      if (static_cast<int64_t>(logits.size()) < deg * H) logits.resize(deg * H);
      const T* qi = p.q + i * HD;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<T>::infinity());
      for (int64_t x = 0; x < deg; ++x) {
        // (past the row's end this requests the next row's first rows; with interleaved
        // keys and values it requests each value along with its key)
        if (b + x + kAhead < p.E) prefetch_row(p.k + p.col[b + x + kAhead] * KS, KS);
        const int64_t j = p.col[b + x];
        const T* kj = p.k + j * KS;
        const T* m = p.mu + p.rel[b + x] * H;
        for (int64_t h = 0; h < H; ++h) {
          const T qk = dot(qi + h * w(), kj + h * w(), w);
          if (p.saved) p.saved[(b + x) * 2 * H + h] = qk;
          const T l = qk * m[h] * p.scale;
          logits[x * H + h] = l;
          mx[h] = std::max(mx[h], l);
        }
      }
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t x = 0; x < deg; ++x) {
        if (KS == HD && x + kAhead < deg) prefetch_row(p.v + p.col[b + x + kAhead] * KS, HD);
        const T* vj = p.v + p.col[b + x] * KS;
        for (int64_t h = 0; h < H; ++h) {
          const T a = std::exp(logits[x * H + h] - mx[h]);
          logits[x * H + h] = a;
          sum[h] += a;
          axpy(a, vj + h * w(), o + h * w(), w);
        }
      }
      for (int64_t h = 0; h < H; ++h) {
        const T inv = T(1) / sum[h];
        T* oh = o + h * w();
        for (int64_t c = 0; c < w(); ++c) oh[c] *= inv;
        lse[i * H + h] = mx[h] + std::log(sum[h]);
        sum[h] = inv;
      }
      if (p.saved) {  // normalised weights, from the row's buffer while it is still in L1
        for (int64_t x = 0; x < deg; ++x)
          for (int64_t h = 0; h < H; ++h) p.saved[(b + x) * 2 * H + H + h] = logits[x * H + h] * sum[h];
      }
    }
  }
}

// Backward scratch (alpha, dlogit [E, H], transpose positions [E]), kept per calling thread and
// reused while it is big enough. A fresh multi-MB allocation per call is a new mapping whose
// first-touch page faults (~4 KB each) cost more than a small graph's whole backward pass;
// buffers above kScratchKeepBytes are freed after the call instead of kept.
template <typename T>
struct BackwardScratch {
  static constexpr size_t kScratchKeepBytes = size_t(256) << 20;
  std::vector<T> alpha_buf, dlogit_buf;
  std::vector<int64_t> pos_buf;
  T* alpha = nullptr;
  T* dlogit = nullptr;
  int64_t* pos = nullptr;

  static BackwardScratch& acquire(int64_t E, int64_t H) {
    static thread_local BackwardScratch s;
    const size_t n = static_cast<size_t>(E * H);
    if (s.alpha_buf.size() < n) {
      s.alpha_buf.resize(n);
      s.dlogit_buf.resize(n);
    }
    if (s.pos_buf.size() < static_cast<size_t>(E)) s.pos_buf.resize(E);
    s.alpha = s.alpha_buf.data();
    s.dlogit = s.dlogit_buf.data();
    s.pos = s.pos_buf.data();
    return s;
  }
  // Drop buffers too large to keep around between calls.
  void release_if_large() {
    if ((alpha_buf.size() * 2 * sizeof(T) + pos_buf.size() * sizeof(int64_t)) > kScratchKeepBytes) {
      std::vector<T>().swap(alpha_buf);
      std::vector<T>().swap(dlogit_buf);
      std::vector<int64_t>().swap(pos_buf);
    }
  }
};

template <typename T, int DC>
void backward_impl(const AttentionProblem<T>& p, const int64_t* colptr, const int64_t* row, const int64_t* perm,
                   const T* grad_out, const T* out, const T* lse, T* grad_q, T* grad_k, T* grad_v, T* grad_mu,
                   int threads) {
  const int64_t H = p.H, HD = p.H * p.D, R = p.R, KS = p.kv_stride;
  const Width<DC> w(p.D);
  // Per-entry softmax weight and scaled logit gradient ([E, H] each), stored in the order of
  // the source-sorted transpose: pass A scatters them (stores are cheap), so pass B reads them
  // sequentially instead of chasing perm (dependent random loads are what this pass waits on).
  BackwardScratch<T>& scratch = BackwardScratch<T>::acquire(p.E, H);
  T* alpha = scratch.alpha;
  T* dlogit = scratch.dlogit;   // dlogit * mu[r, h] * scale
  int64_t* csc_pos = scratch.pos;
  std::vector<T> mu_partial(static_cast<size_t>(threads) * R * H, T(0));

#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t y = 0; y < p.E; ++y) csc_pos[perm[y]] = y;

  // Pass A: destination rows.
#pragma omp parallel num_threads(threads)
  {
    T* gmu = mu_partial.data() + static_cast<size_t>(thread_id()) * R * H;
    std::vector<T> delta(H);
    // Static round-robin chunks: each thread always sums the same rows into its grad_mu
    // partial, so the reduced grad_mu is bitwise repeatable (gradcheck requires it).
#pragma omp for schedule(static, 64)
    for (int64_t i = 0; i < p.N; ++i) {
      const int64_t b = p.rowptr[i], e = p.rowptr[i + 1];
      T* gq = grad_q + i * HD;
      std::fill(gq, gq + HD, T(0));
      if (b == e) continue;
      const T* qi = p.q + i * HD;
      const T* gi = grad_out + i * HD;
      const T* oi = out + i * HD;
      for (int64_t h = 0; h < H; ++h) delta[h] = dot(gi + h * w(), oi + h * w(), w);
      for (int64_t x = b; x < e; ++x) {
        if (x + kAhead < p.E) {   // entries of the following rows too: rows are short
          prefetch_row(p.k + p.col[x + kAhead] * KS, HD);
          prefetch_row(p.v + p.col[x + kAhead] * KS, HD);
        }
        const int64_t j = p.col[x], r = p.rel[x], y = csc_pos[x];
        const T* kj = p.k + j * KS;
        const T* vj = p.v + j * KS;
        const T* kept = p.saved ? p.saved + x * 2 * H : nullptr;  // the forward's q . k and alpha
        for (int64_t h = 0; h < H; ++h) {
          const T ms = p.mu[r * H + h] * p.scale;
          const T qk = kept ? kept[h] : dot(qi + h * w(), kj + h * w(), w);
          const T a = kept ? kept[H + h] : std::exp(qk * ms - lse[i * H + h]);
          const T ds = a * (dot(gi + h * w(), vj + h * w(), w) - delta[h]);
          alpha[y * H + h] = a;
          dlogit[y * H + h] = ds * ms;
          axpy(ds * ms, kj + h * w(), gq + h * w(), w);
          gmu[r * H + h] += ds * qk * p.scale;
        }
      }
    }
  }
  std::fill(grad_mu, grad_mu + R * H, T(0));
  for (int t = 0; t < threads; ++t)
    for (int64_t c = 0; c < R * H; ++c) grad_mu[c] += mu_partial[static_cast<size_t>(t) * R * H + c];

  // Pass B: source rows of the transpose; each thread owns whole rows of grad_k and grad_v.
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
  for (int64_t j = 0; j < p.M; ++j) {
    T* gk = grad_k + j * KS;
    T* gv = grad_v + j * KS;
    std::fill(gk, gk + HD, T(0));
    std::fill(gv, gv + HD, T(0));
    for (int64_t y = colptr[j]; y < colptr[j + 1]; ++y) {
      if (y + kAhead < p.E) {   // across row ends too: a source row has few entries
        prefetch_row(p.q + row[y + kAhead] * HD, HD);
        prefetch_row(grad_out + row[y + kAhead] * HD, HD);
      }
      const int64_t i = row[y];
      const T* qi = p.q + i * HD;
      const T* gi = grad_out + i * HD;
      for (int64_t h = 0; h < H; ++h) {
        axpy(dlogit[y * H + h], qi + h * w(), gk + h * w(), w);
        axpy(alpha[y * H + h], gi + h * w(), gv + h * w(), w);
      }
    }
  }
  scratch.release_if_large();
}

}  // namespace

template <typename T>
void forward(const AttentionProblem<T>& p, T* out, T* lse, int threads) {
  switch (p.D) {
    case 8: return forward_impl<T, 8>(p, out, lse, threads);
    case 16: return forward_impl<T, 16>(p, out, lse, threads);
    case 32: return forward_impl<T, 32>(p, out, lse, threads);
    case 64: return forward_impl<T, 64>(p, out, lse, threads);
    default: return forward_impl<T, 0>(p, out, lse, threads);
  }
}

template <typename T>
void backward(const AttentionProblem<T>& p, const int64_t* colptr, const int64_t* row, const int64_t* perm,
              const T* grad_out, const T* out, const T* lse, T* grad_q, T* grad_k, T* grad_v, T* grad_mu,
              int threads) {
#define PYGAD_BWD(DC) \
  backward_impl<T, DC>(p, colptr, row, perm, grad_out, out, lse, grad_q, grad_k, grad_v, grad_mu, threads)
  switch (p.D) {
    case 8: PYGAD_BWD(8); break;
    case 16: PYGAD_BWD(16); break;
    case 32: PYGAD_BWD(32); break;
    case 64: PYGAD_BWD(64); break;
    default: PYGAD_BWD(0); break;
  }
#undef PYGAD_BWD
}

#define PYGAD_INSTANTIATE(T)                                                                                \
  template void forward<T>(const AttentionProblem<T>&, T*, T*, int);                                      \
  template void backward<T>(const AttentionProblem<T>&, const int64_t*, const int64_t*, const int64_t*,   \
                            const T*, const T*, const T*, T*, T*, T*, T*, int);
PYGAD_INSTANTIATE(float)
PYGAD_INSTANTIATE(double)
#undef PYGAD_INSTANTIATE

}  // namespace PYGAD_CPU_ISA

#ifndef PYGAD_CPU_ISA_VARIANT
// ---- run-time dispatch (baseline build only) ----------------------------------------------------
#ifdef PYGAD_HAVE_AVX2_VARIANT
namespace avx2 {
template <typename T>
void forward(const AttentionProblem<T>&, T*, T*, int);
template <typename T>
void backward(const AttentionProblem<T>&, const int64_t*, const int64_t*, const int64_t*, const T*, const T*,
              const T*, T*, T*, T*, T*, int);
}  // namespace avx2

static bool use_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

const char* attention_kernel_isa() {
#ifdef PYGAD_HAVE_AVX2_VARIANT
  if (use_avx2()) return "avx2";
#endif
  return "baseline";
}

template <typename T>
void hetero_attention_forward(const AttentionProblem<T>& p, T* out, T* lse, int threads) {
#ifdef PYGAD_HAVE_AVX2_VARIANT
  if (use_avx2()) return avx2::forward<T>(p, out, lse, threads);
#endif
  baseline::forward<T>(p, out, lse, threads);
}

template <typename T>
void hetero_attention_backward(const AttentionProblem<T>& p, const int64_t* colptr, const int64_t* row,
                               const int64_t* perm, const T* grad_out, const T* out, const T* lse, T* grad_q,
                               T* grad_k, T* grad_v, T* grad_mu, int threads) {
#ifdef PYGAD_HAVE_AVX2_VARIANT
  if (use_avx2())
    return avx2::backward<T>(p, colptr, row, perm, grad_out, out, lse, grad_q, grad_k, grad_v, grad_mu, threads);
#endif
  baseline::backward<T>(p, colptr, row, perm, grad_out, out, lse, grad_q, grad_k, grad_v, grad_mu, threads);
}

template void hetero_attention_forward<float>(const AttentionProblem<float>&, float*, float*, int);
template void hetero_attention_forward<double>(const AttentionProblem<double>&, double*, double*, int);
template void hetero_attention_backward<float>(const AttentionProblem<float>&, const int64_t*, const int64_t*,
                                               const int64_t*, const float*, const float*, const float*, float*,
                                               float*, float*, float*, int);
template void hetero_attention_backward<double>(const AttentionProblem<double>&, const int64_t*, const int64_t*,
                                                const int64_t*, const double*, const double*, const double*,
                                                double*, double*, double*, double*, int);
#endif  // PYGAD_CPU_ISA_VARIANT

}  // namespace pygad::cpu
