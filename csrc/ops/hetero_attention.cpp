// Argument checks and CPU/CUDA dispatch for the fused heterogeneous attention.
#include "ops/hetero_attention.h"

#include "index_checks.h"

namespace pygad {

namespace {
template <typename T>
AttentionProblem<T> make_problem(const Array& q, const Array& k, const Array* v, const Array& mu,
                                 const Array& rowptr, const Array& col, const Array& rel, double scale) {
  AttentionProblem<T> p;
  const int64_t HD = q.size(1) * q.size(2);
  p.q = q.ptr<T>();
  p.k = k.ptr<T>();
  p.v = v ? v->ptr<T>() : k.ptr<T>() + HD;   // interleaved: a row's value follows its key
  p.kv_stride = v ? HD : 2 * HD;
  p.mu = mu.ptr<T>();
  p.rowptr = rowptr.ptr<int64_t>();
  p.col = col.ptr<int64_t>();
  p.rel = rel.ptr<int64_t>();
  p.N = q.size(0);
  p.H = q.size(1);
  p.D = q.size(2);
  p.M = k.size(0);
  p.R = mu.size(0);
  p.E = col.size(0);
  p.scale = static_cast<T>(scale);
  return p;
}

// Shapes, dtypes, devices and index ranges shared by forward and backward.
void check_problem(const Array& q, const Array& k, const Array* v, const Array& mu, const Array& rowptr,
                   const Array& col, const Array& rel, uintptr_t stream) {
  check_float(q);
  check_shape(q, {-1, -1, -1});
  const int64_t H = q.size(1), D = q.size(2);
  if (v) {
    check_shape(k, {-1, H, D});
    check_shape(*v, {k.size(0), H, D});
    check_same_dtype(q, *v);
    check_same_device(q, *v);
  } else {
    check_shape(k, {-1, 2, H, D});   // keys and values interleaved per source row
    if (q.is_cuda())
      throw ValueError("'k' with interleaved keys and values (v=None) is supported on the CPU only; "
                       "pass separate contiguous k and v for CUDA tensors");
  }
  check_shape(mu, {-1, H});
  for (const Array* a : {&k, &mu}) check_same_dtype(q, *a);
  check_dtype(col, DType::i64);
  check_shape(col, {-1});
  check_dtype(rel, DType::i64);
  check_shape(rel, {col.size(0)});
  for (const Array* a : {&k, &mu, &rowptr, &col, &rel}) check_same_device(q, *a);
  check_cuda_built(q);
  check_csr_ptr(rowptr, col.size(0), stream);
  if (rowptr.size(0) != q.size(0) + 1)
    throw ValueError(cat("'rowptr' must have length N+1 = ", q.size(0) + 1, " (q has N = ", q.size(0),
                         " rows), got ", rowptr.size(0)));
  check_index_range(col, k.size(0), stream);
  check_index_range(rel, mu.size(0), stream);
}

// The optional per-entry forward values kept for the backward: [E, 2, H], q's dtype, on the
// CPU (a CUDA call ignores it).
template <typename T>
T* saved_values(const Array* saved, const Array& q, const Array& col) {
  if (saved == nullptr || q.is_cuda()) return nullptr;
  check_same_dtype(q, *saved);
  check_shape(*saved, {col.size(0), 2, q.size(1)});
  check_same_device(q, *saved);
  return saved->ptr<T>();
}
}  // namespace

void hetero_attention_forward(const Array& q, const Array& k, const Array* v, const Array& mu,
                              const Array& rowptr, const Array& col, const Array& rel, double scale,
                              const Array& out, const Array& lse, const Array* saved, int threads,
                              uintptr_t stream) {
  check_problem(q, k, v, mu, rowptr, col, rel, stream);
  check_same_dtype(q, out);
  check_shape(out, {q.size(0), q.size(1), q.size(2)});
  check_same_dtype(q, lse);
  check_shape(lse, {q.size(0), q.size(1)});
  check_same_device(q, out);
  check_same_device(q, lse);
  dispatch_float(q, [&](auto t) {
    using T = decltype(t);
    auto p = make_problem<T>(q, k, v, mu, rowptr, col, rel, scale);
    p.saved = saved_values<T>(saved, q, col);
    if (q.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::hetero_attention_forward<T>(p, out.ptr<T>(), lse.ptr<T>(), stream);
#endif
    } else {
      cpu::hetero_attention_forward<T>(p, out.ptr<T>(), lse.ptr<T>(), clamp_threads(threads));
    }
  });
}

void hetero_attention_backward(const Array& grad_out, const Array& q, const Array& k, const Array* v,
                               const Array& mu, const Array& rowptr, const Array& col, const Array& rel,
                               const Array& colptr, const Array& row, const Array& perm, double scale,
                               const Array& out, const Array& lse, const Array* saved, const Array& grad_q,
                               const Array& grad_k, const Array* grad_v, const Array& grad_mu, int threads,
                               uintptr_t stream) {
  check_problem(q, k, v, mu, rowptr, col, rel, stream);
  for (const Array* a : {&grad_out, &out, &grad_q}) {
    check_same_dtype(q, *a);
    check_shape(*a, {q.size(0), q.size(1), q.size(2)});
    check_same_device(q, *a);
  }
  if ((grad_v == nullptr) != (v == nullptr))
    throw ValueError("'grad_v' must be given exactly when 'v' is (None: keys and values interleaved in 'k')");
  for (const Array* a : {&grad_k, grad_v}) {
    if (a == nullptr) continue;
    check_same_dtype(q, *a);
    if (v)
      check_shape(*a, {k.size(0), q.size(1), q.size(2)});
    else  // grad_k of interleaved k: the same [M, 2, H, D] layout
      check_shape(*a, {k.size(0), 2, q.size(1), q.size(2)});
    check_same_device(q, *a);
  }
  check_same_dtype(q, lse);
  check_shape(lse, {q.size(0), q.size(1)});
  check_same_dtype(q, grad_mu);
  check_shape(grad_mu, {mu.size(0), mu.size(1)});
  const int64_t E = col.size(0);
  check_csr_ptr(colptr, E, stream);
  if (colptr.size(0) != k.size(0) + 1)
    throw ValueError(cat("'colptr' must have length M+1 = ", k.size(0) + 1, ", got ", colptr.size(0)));
  for (const Array* a : {&row, &perm}) {
    check_dtype(*a, DType::i64);
    check_shape(*a, {E});
  }
  for (const Array* a : {&lse, &grad_mu, &colptr, &row, &perm}) check_same_device(q, *a);
  check_index_range(row, q.size(0), stream);
  check_index_range(perm, E, stream);
  check_transpose(rowptr, col, colptr, row, perm);
  dispatch_float(q, [&](auto t) {
    using T = decltype(t);
    auto p = make_problem<T>(q, k, v, mu, rowptr, col, rel, scale);
    p.saved = saved_values<T>(saved, q, col);
    if (q.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
      cuda::hetero_attention_backward<T>(p, colptr.ptr<int64_t>(), row.ptr<int64_t>(), perm.ptr<int64_t>(),
                                         grad_out.ptr<T>(), out.ptr<T>(), lse.ptr<T>(), grad_q.ptr<T>(),
                                         grad_k.ptr<T>(), grad_v->ptr<T>(), grad_mu.ptr<T>(), stream);
#endif
    } else {
      cpu::hetero_attention_backward<T>(p, colptr.ptr<int64_t>(), row.ptr<int64_t>(), perm.ptr<int64_t>(),
                                        grad_out.ptr<T>(), out.ptr<T>(), lse.ptr<T>(), grad_q.ptr<T>(),
                                        grad_k.ptr<T>(), grad_v ? grad_v->ptr<T>() : grad_k.ptr<T>() + p.H * p.D,
                                        grad_mu.ptr<T>(), clamp_threads(threads));
    }
  });
}

}  // namespace pygad
