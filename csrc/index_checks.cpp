#include "index_checks.h"

#include "ops/segment.h"

namespace pygad {

void check_csr_ptr(const Array& ptr, int64_t e, uintptr_t stream) {
  check_cuda_built(ptr);
  check_dtype(ptr, DType::i64);
  if (ptr.ndim() != 1 || ptr.size(0) < 1)
    throw ValueError(cat("'", ptr.name, "' must be a 1-D pointer array of length N+1, got shape ",
                         shape_str(ptr.shape)));
  const int64_t n = ptr.size(0) - 1;
  if (ptr.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
    if (cuda::check_ptr(ptr.ptr<int64_t>(), n, e, stream) != 0)
      throw ValueError(cat("'", ptr.name, "' is not a valid CSR pointer over ", e,
                           " entries (must start at 0, never decrease, and end at ", e, ")"));
#else
    (void)stream;
#endif
    return;
  }
  const int64_t* p = ptr.ptr<int64_t>();
  if (p[0] != 0) throw ValueError(cat("'", ptr.name, "'[0] must be 0, got ", p[0]));
  for (int64_t i = 0; i < n; ++i)
    if (p[i + 1] < p[i])
      throw ValueError(cat("'", ptr.name, "' decreases at position ", i + 1, " (", p[i], " -> ", p[i + 1], ")"));
  if (p[n] != e) throw ValueError(cat("'", ptr.name, "'[-1] must equal ", e, " (the number of entries), got ", p[n]));
}

void check_index_range(const Array& idx, int64_t hi, uintptr_t stream) {
  check_cuda_built(idx);
  check_dtype(idx, DType::i64);
  const int64_t n = idx.numel();
  if (idx.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
    int64_t bad = cuda::count_out_of_range(idx.ptr<int64_t>(), n, 0, hi, stream);
    if (bad) throw ValueError(cat("'", idx.name, "' has ", bad, " indices outside [0, ", hi, ")"));
#else
    (void)stream;
#endif
    return;
  }
  const int64_t* p = idx.ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    if (p[i] < 0 || p[i] >= hi)
      throw ValueError(cat("'", idx.name, "' has index ", p[i], " at position ", i, ", outside [0, ", hi, ")"));
}

}  // namespace pygad
