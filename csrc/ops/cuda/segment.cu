// CUDA segment kernels (the device-side index checks are in index_checks.cu).
//
// Segment ops: one thread per (segment, column). Consecutive threads take consecutive columns
// of one segment, so reads of a row are coalesced; each thread reduces its segment in entry
// order, so results are deterministic and match the CPU loops operation for operation.
#include "cuda_utils.cuh"
#include "ops/segment.h"

namespace pygad::cuda {

namespace {

template <typename T>
__global__ void segment_sum_kernel(const T* __restrict__ src, const int64_t* __restrict__ ptr, T* __restrict__ out,
                                   int64_t n, int64_t f) {
  for (int64_t t = global_thread(); t < n * f; t += global_threads()) {
    const int64_t i = t / f, c = t - i * f;
    T s = 0;
    for (int64_t e = ptr[i], end = ptr[i + 1]; e < end; ++e) s += src[e * f + c];
    out[t] = s;
  }
}

template <typename T>
__global__ void segment_softmax_kernel(const T* __restrict__ src, const int64_t* __restrict__ ptr,
                                       T* __restrict__ out, int64_t n, int64_t h) {
  for (int64_t t = global_thread(); t < n * h; t += global_threads()) {
    const int64_t i = t / h, c = t - i * h;
    const int64_t b = ptr[i], end = ptr[i + 1];
    T mx = neg_inf<T>();
    for (int64_t e = b; e < end; ++e) {
      const T x = src[e * h + c];
      mx = (mx < x) ? x : mx;  // std::max semantics, as on the CPU
    }
    T sum = 0;
    for (int64_t e = b; e < end; ++e) sum += exp_(src[e * h + c] - mx);
    for (int64_t e = b; e < end; ++e) out[e * h + c] = exp_(src[e * h + c] - mx) / sum;
  }
}

template <typename T>
__global__ void segment_softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ gy,
                                                const int64_t* __restrict__ ptr, T* __restrict__ gx, int64_t n,
                                                int64_t h) {
  for (int64_t t = global_thread(); t < n * h; t += global_threads()) {
    const int64_t i = t / h, c = t - i * h;
    const int64_t b = ptr[i], end = ptr[i + 1];
    T dot = 0;
    for (int64_t e = b; e < end; ++e) dot += y[e * h + c] * gy[e * h + c];
    for (int64_t e = b; e < end; ++e) gx[e * h + c] = y[e * h + c] * (gy[e * h + c] - dot);
  }
}

template <typename T>
__global__ void neighbor_aggregate_kernel(const T* __restrict__ x, const int64_t* __restrict__ rowptr,
                                          const int64_t* __restrict__ col, T* __restrict__ out, int64_t n,
                                          int64_t f, int reduce) {
  for (int64_t t = global_thread(); t < n * f; t += global_threads()) {
    const int64_t i = t / f, c = t - i * f;
    const int64_t b = rowptr[i], end = rowptr[i + 1];
    T acc = 0;
    if (b < end) {
      if (reduce == 2) {
        acc = x[col[b] * f + c];
        for (int64_t e = b + 1; e < end; ++e) {
          const T v = x[col[e] * f + c];
          acc = (acc < v || v != v) ? v : acc;  // NaN propagates, as on the CPU and in torch
        }
      } else {
        for (int64_t e = b; e < end; ++e) acc += x[col[e] * f + c];
        if (reduce == 1) acc *= T(1) / static_cast<T>(end - b);
      }
    }
    out[t] = acc;
  }
}

}  // namespace

template <typename T>
void segment_sum(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t f, uintptr_t stream) {
  if (n * f == 0) return;
  DeviceGuard guard(ptr);
  segment_sum_kernel<T><<<grid_for(n * f), kBlock, 0, as_stream(stream)>>>(src, ptr, out, n, f);
  PYGAD_CUDA_CHECK_LAUNCH("segment_sum_kernel");
}

template <typename T>
void segment_softmax(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t h, uintptr_t stream) {
  if (n * h == 0) return;
  DeviceGuard guard(ptr);
  segment_softmax_kernel<T><<<grid_for(n * h), kBlock, 0, as_stream(stream)>>>(src, ptr, out, n, h);
  PYGAD_CUDA_CHECK_LAUNCH("segment_softmax_kernel");
}

template <typename T>
void segment_softmax_backward(const T* y, const T* gy, const int64_t* ptr, T* gx, int64_t n, int64_t h,
                              uintptr_t stream) {
  if (n * h == 0) return;
  DeviceGuard guard(ptr);
  segment_softmax_backward_kernel<T><<<grid_for(n * h), kBlock, 0, as_stream(stream)>>>(y, gy, ptr, gx, n, h);
  PYGAD_CUDA_CHECK_LAUNCH("segment_softmax_backward_kernel");
}

template <typename T>
void neighbor_aggregate(const T* x, const int64_t* rowptr, const int64_t* col, T* out, int64_t n, int64_t f,
                        int reduce, uintptr_t stream) {
  if (n * f == 0) return;
  DeviceGuard guard(rowptr);
  neighbor_aggregate_kernel<T><<<grid_for(n * f), kBlock, 0, as_stream(stream)>>>(x, rowptr, col, out, n, f, reduce);
  PYGAD_CUDA_CHECK_LAUNCH("neighbor_aggregate_kernel");
}

#define PYGAD_INSTANTIATE(T)                                                                                 \
  template void segment_sum<T>(const T*, const int64_t*, T*, int64_t, int64_t, uintptr_t);                  \
  template void segment_softmax<T>(const T*, const int64_t*, T*, int64_t, int64_t, uintptr_t);              \
  template void segment_softmax_backward<T>(const T*, const T*, const int64_t*, T*, int64_t, int64_t,        \
                                            uintptr_t);                                                      \
  template void neighbor_aggregate<T>(const T*, const int64_t*, const int64_t*, T*, int64_t, int64_t, int, \
                                      uintptr_t);
PYGAD_INSTANTIATE(float)
PYGAD_INSTANTIATE(double)
#undef PYGAD_INSTANTIATE

}  // namespace pygad::cuda
