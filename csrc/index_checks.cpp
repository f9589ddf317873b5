#include "index_checks.h"

#include <vector>

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

void check_transpose(const Array& rowptr, const Array& col, const Array& colptr, const Array& row,
                     const Array& perm) {
  if (perm.is_cuda()) return;
  const int64_t E = col.size(0), n_dst = rowptr.size(0) - 1, n_src = colptr.size(0) - 1;
  const int64_t *rp = rowptr.ptr<int64_t>(), *c = col.ptr<int64_t>(), *cp = colptr.ptr<int64_t>();
  const int64_t *r = row.ptr<int64_t>(), *pm = perm.ptr<int64_t>();
  std::vector<int64_t> dst_of(static_cast<size_t>(E));
  for (int64_t i = 0; i < n_dst; ++i)
    for (int64_t e = rp[i]; e < rp[i + 1]; ++e) dst_of[static_cast<size_t>(e)] = i;
  std::vector<bool> seen(static_cast<size_t>(E), false);
  for (int64_t j = 0; j < n_src; ++j)
    for (int64_t y = cp[j]; y < cp[j + 1]; ++y) {
      const int64_t e = pm[y];
      if (seen[static_cast<size_t>(e)])
        throw ValueError(cat("'", perm.name, "' is not a permutation: edge ", e, " appears twice (position ", y, ")"));
      seen[static_cast<size_t>(e)] = true;
      if (c[e] != j)
        throw ValueError(cat("'", perm.name, "' is not the transpose of '", rowptr.name, "'/'", col.name,
                             "': position ", y, " is in source column ", j, " but edge ", e, " has ",
                             col.name, " = ", c[e]));
      if (r[y] != dst_of[static_cast<size_t>(e)])
        throw ValueError(cat("'", row.name, "' is not the transpose of '", rowptr.name, "'/'", col.name,
                             "': position ", y, " has ", row.name, " = ", r[y], " but edge ", e,
                             " has destination ", dst_of[static_cast<size_t>(e)]));
    }
}

}  // namespace pygad
