// Data checks on index arrays (CPU scans; CUDA arrays are checked by small device kernels),
// shared by every op that takes CSR pointers or indices.
#pragma once
#include "common.h"

namespace pygad {

// A valid CSR pointer over e entries: ptr[0] == 0, non-decreasing, ptr[n] == e.
// CUDA arrays are checked on `stream` (the stream the op's kernels will run on; 0 = default).
void check_csr_ptr(const Array& ptr, int64_t e, uintptr_t stream = 0);
// Every index in [0, hi).
void check_index_range(const Array& idx, int64_t hi, uintptr_t stream = 0);
// `colptr/row/perm` are exactly the transpose of `rowptr/col`: `perm` is a permutation of the
// E edges, edge perm[y] lies in source column j for y in [colptr[j], colptr[j+1]) (col[perm[y]]
// == j), and row[y] is that edge's destination row. One O(E) pass (CPU arrays; CUDA arrays are
// only range-checked). Ranges must have been checked before.
void check_transpose(const Array& rowptr, const Array& col, const Array& colptr, const Array& row,
                     const Array& perm);

#ifdef PYGAD_WITH_CUDA
namespace cuda {
// Device kernels behind the checks above (csrc/ops/cuda/index_checks.cu); both synchronise
// `stream`. The count of entries of idx[0:n] outside [lo, hi):
int64_t count_out_of_range(const int64_t* idx, int64_t n, int64_t lo, int64_t hi, uintptr_t stream);
// 0 when ptr[0:n+1] is a valid CSR pointer (ptr[0]==0, non-decreasing, ptr[n]==e), else 1.
int64_t check_ptr(const int64_t* ptr, int64_t n, int64_t e, uintptr_t stream);
}  // namespace cuda
#endif

}  // namespace pygad
