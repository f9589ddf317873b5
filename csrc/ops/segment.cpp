// Argument checks and CPU/CUDA dispatch for the segment ops.
#include "ops/segment.h"

#include "index_checks.h"

namespace pygad {

namespace {
int reduce_code(const std::string& reduce) {
  if (reduce == "sum") return 0;
  if (reduce == "mean") return 1;
  if (reduce == "max") return 2;
  throw ValueError(cat("'reduce' must be one of sum, mean, max; got '", reduce, "'"));
}
}  // namespace

void segment_sum(const Array& src, const Array& ptr, const Array& out, int threads, uintptr_t stream) {
  check_float(src);
  check_shape(src, {-1, -1});
  check_csr_ptr(ptr, src.size(0), stream);
  const int64_t n = ptr.size(0) - 1, f = src.size(1);
  check_same_dtype(src, out);
  check_shape(out, {n, f});
  check_same_device(src, ptr);
  check_same_device(src, out);
  check_cuda_built(src);
  dispatch_float(src, [&](auto t) {
    using T = decltype(t);
    if (src.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::segment_sum<T>(src.ptr<T>(), ptr.ptr<int64_t>(), out.ptr<T>(), n, f, stream);
#endif
    } else {
      cpu::segment_sum<T>(src.ptr<T>(), ptr.ptr<int64_t>(), out.ptr<T>(), n, f, clamp_threads(threads));
    }
  });
}

void segment_softmax(const Array& src, const Array& ptr, const Array& out, int threads, uintptr_t stream) {
  check_float(src);
  check_shape(src, {-1, -1});
  check_csr_ptr(ptr, src.size(0), stream);
  const int64_t n = ptr.size(0) - 1, h = src.size(1);
  check_same_dtype(src, out);
  check_shape(out, {src.size(0), h});
  check_same_device(src, ptr);
  check_same_device(src, out);
  check_cuda_built(src);
  dispatch_float(src, [&](auto t) {
    using T = decltype(t);
    if (src.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::segment_softmax<T>(src.ptr<T>(), ptr.ptr<int64_t>(), out.ptr<T>(), n, h, stream);
#endif
    } else {
      cpu::segment_softmax<T>(src.ptr<T>(), ptr.ptr<int64_t>(), out.ptr<T>(), n, h, clamp_threads(threads));
    }
  });
}

void segment_softmax_backward(const Array& y, const Array& grad_y, const Array& ptr, const Array& grad_src,
                              int threads, uintptr_t stream) {
  check_float(y);
  check_shape(y, {-1, -1});
  check_csr_ptr(ptr, y.size(0), stream);
  const int64_t n = ptr.size(0) - 1, h = y.size(1);
  for (const Array* a : {&grad_y, &grad_src}) {
    check_same_dtype(y, *a);
    check_shape(*a, {y.size(0), h});
    check_same_device(y, *a);
  }
  check_same_device(y, ptr);
  check_cuda_built(y);
  dispatch_float(y, [&](auto t) {
    using T = decltype(t);
    if (y.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::segment_softmax_backward<T>(y.ptr<T>(), grad_y.ptr<T>(), ptr.ptr<int64_t>(), grad_src.ptr<T>(), n, h,
                                        stream);
#endif
    } else {
      cpu::segment_softmax_backward<T>(y.ptr<T>(), grad_y.ptr<T>(), ptr.ptr<int64_t>(), grad_src.ptr<T>(), n, h,
                                       clamp_threads(threads));
    }
  });
}

void neighbor_aggregate(const Array& x, const Array& rowptr, const Array& col, const Array& out,
                        const std::string& reduce, int threads, uintptr_t stream) {
  const int code = reduce_code(reduce);
  check_float(x);
  check_shape(x, {-1, -1});
  check_dtype(col, DType::i64);
  check_shape(col, {-1});
  check_csr_ptr(rowptr, col.size(0), stream);
  const int64_t n = rowptr.size(0) - 1, f = x.size(1);
  check_index_range(col, x.size(0), stream);
  check_same_dtype(x, out);
  check_shape(out, {n, f});
  for (const Array* a : {&rowptr, &col, &out}) check_same_device(x, *a);
  check_cuda_built(x);
  dispatch_float(x, [&](auto t) {
    using T = decltype(t);
    if (x.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::neighbor_aggregate<T>(x.ptr<T>(), rowptr.ptr<int64_t>(), col.ptr<int64_t>(), out.ptr<T>(), n, f, code,
                                  stream);
#endif
    } else {
      cpu::neighbor_aggregate<T>(x.ptr<T>(), rowptr.ptr<int64_t>(), col.ptr<int64_t>(), out.ptr<T>(), n, f, code,
                                 clamp_threads(threads));
    }
  });
}

}  // namespace pygad
