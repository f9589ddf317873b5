// Segment reductions over CSR-ordered rows: rows [ptr[i], ptr[i+1]) form segment i.
#pragma once
#include <string>
#include "common.h"

namespace pygad {

// src [E, F], ptr [N+1] int64 -> out [N, F]: out[i] = sum of src rows in segment i.
void segment_sum(const Array& src, const Array& ptr, const Array& out, int threads, uintptr_t stream);
// src [E, H], ptr [N+1] -> out [E, H]: softmax within each segment, per column.
void segment_softmax(const Array& src, const Array& ptr, const Array& out, int threads, uintptr_t stream);
// y = softmax output [E, H], grad_y [E, H] -> grad_src [E, H] = y * (grad_y - segsum(y * grad_y)).
void segment_softmax_backward(const Array& y, const Array& grad_y, const Array& ptr, const Array& grad_src,
                              int threads, uintptr_t stream);
// x [M, F], rowptr [N+1], col [E] -> out [N, F] = reduce_{e in row i} x[col[e]]; reduce in sum|mean|max
// (empty rows give 0). A gather-reduce: x[col] is never materialised.
void neighbor_aggregate(const Array& x, const Array& rowptr, const Array& col, const Array& out,
                        const std::string& reduce, int threads, uintptr_t stream);

namespace cpu {
template <typename T>
void segment_sum(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t f, int threads);
template <typename T>
void segment_softmax(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t h, int threads);
template <typename T>
void segment_softmax_backward(const T* y, const T* gy, const int64_t* ptr, T* gx, int64_t n, int64_t h,
                              int threads);
template <typename T>
void neighbor_aggregate(const T* x, const int64_t* rowptr, const int64_t* col, T* out, int64_t n, int64_t f,
                        int reduce, int threads);
}  // namespace cpu

namespace cuda {
template <typename T>
void segment_sum(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t f, uintptr_t stream);
template <typename T>
void segment_softmax(const T* src, const int64_t* ptr, T* out, int64_t n, int64_t h, uintptr_t stream);
template <typename T>
void segment_softmax_backward(const T* y, const T* gy, const int64_t* ptr, T* gx, int64_t n, int64_t h,
                              uintptr_t stream);
template <typename T>
void neighbor_aggregate(const T* x, const int64_t* rowptr, const int64_t* col, T* out, int64_t n, int64_t f,
                        int reduce, uintptr_t stream);
}  // namespace cuda

}  // namespace pygad
