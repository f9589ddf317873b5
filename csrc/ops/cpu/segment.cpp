// CPU segment kernels: one OpenMP task per segment (rows are disjoint, no atomics).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/segment.h"

namespace pygad::cpu {

template <typename T>
void segment_sum(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t f, int threads) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 256)
  for (int64_t i = 0; i < n; ++i) {
    T* o = out + i * f;
    std::fill(o, o + f, T(0));
    for (int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      const T* s = src + e * f;
      for (int64_t c = 0; c < f; ++c) o[c] += s[c];
    }
  }
}

template <typename T>
void segment_softmax(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t h, int threads) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> mx(h), sum(h);
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = ptr[i], e = ptr[i + 1];
      if (b == e) continue;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<T>::infinity());
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t j = b; j < e; ++j)
        for (int64_t c = 0; c < h; ++c) mx[c] = std::max(mx[c], src[j * h + c]);
      for (int64_t j = b; j < e; ++j)
        for (int64_t c = 0; c < h; ++c) {
          T v = std::exp(src[j * h + c] - mx[c]);
          out[j * h + c] = v;
          sum[c] += v;
        }
      for (int64_t j = b; j < e; ++j)
        for (int64_t c = 0; c < h; ++c) out[j * h + c] /= sum[c];
    }
  }
}

template <typename T>
void segment_softmax_backward(const T* y, const T* gy, const int64_t* ptr, T* gx, int64_t n, int64_t h,
                              int threads) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> dot(h);
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; ++i) {
      std::fill(dot.begin(), dot.end(), T(0));
      for (int64_t j = ptr[i]; j < ptr[i + 1]; ++j)
        for (int64_t c = 0; c < h; ++c) dot[c] += y[j * h + c] * gy[j * h + c];
      for (int64_t j = ptr[i]; j < ptr[i + 1]; ++j)
        for (int64_t c = 0; c < h; ++c) gx[j * h + c] = y[j * h + c] * (gy[j * h + c] - dot[c]);
    }
  }
}

namespace {
// FC > 0: feature width known at compile time, so the row loops unroll and vectorise fully.
template <typename T, int FC>
void neighbor_aggregate_impl(const T* x, const int64_t* rowptr, const int64_t* col, T* out, int64_t n,
                             int64_t f_runtime, int reduce, int threads) {
  const int64_t f = FC > 0 ? FC : f_runtime;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 256)
  for (int64_t i = 0; i < n; ++i) {
    T* o = out + i * f;
    const int64_t b = rowptr[i], e = rowptr[i + 1];
    if (b == e) {
      std::fill(o, o + f, T(0));
      continue;
    }
    if (reduce == 2) {
      std::copy(x + col[b] * f, x + col[b] * f + f, o);
      for (int64_t j = b + 1; j < e; ++j) {
        const T* s = x + col[j] * f;
        for (int64_t c = 0; c < f; ++c) o[c] = (o[c] < s[c] || s[c] != s[c]) ? s[c] : o[c];  // NaN propagates, as in torch
      }
    } else {
      std::fill(o, o + f, T(0));
      for (int64_t j = b; j < e; ++j) {
        const T* s = x + col[j] * f;
#pragma omp simd
        for (int64_t c = 0; c < f; ++c) o[c] += s[c];
      }
      if (reduce == 1) {
        const T inv = T(1) / T(e - b);
        for (int64_t c = 0; c < f; ++c) o[c] *= inv;
      }
    }
  }
}
}  // namespace

template <typename T>
void neighbor_aggregate(const T* x, const int64_t* rowptr, const int64_t* col, T* out, int64_t n, int64_t f,
                        int reduce, int threads) {
  switch (f) {
    case 16: return neighbor_aggregate_impl<T, 16>(x, rowptr, col, out, n, f, reduce, threads);
    case 32: return neighbor_aggregate_impl<T, 32>(x, rowptr, col, out, n, f, reduce, threads);
    case 64: return neighbor_aggregate_impl<T, 64>(x, rowptr, col, out, n, f, reduce, threads);
    default: return neighbor_aggregate_impl<T, 0>(x, rowptr, col, out, n, f, reduce, threads);
  }
}

#define PYGAD_INSTANTIATE(T)                                                                          \
  template void segment_sum<T>(const T*, const int64_t*, T*, int64_t, int64_t, int);                 \
  template void segment_softmax<T>(const T*, const int64_t*, T*, int64_t, int64_t, int);             \
  template void segment_softmax_backward<T>(const T*, const T*, const int64_t*, T*, int64_t, int64_t, \
                                            int);                                                     \
  template void neighbor_aggregate<T>(const T*, const int64_t*, const int64_t*, T*, int64_t, int64_t, int, int);
PYGAD_INSTANTIATE(float)
PYGAD_INSTANTIATE(double)
#undef PYGAD_INSTANTIATE

}  // namespace pygad::cpu
