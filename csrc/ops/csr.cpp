// Argument checks and CPU/CUDA dispatch for CSR construction.
#include "ops/csr.h"

#include <cstdint>

#include "index_checks.h"

namespace pygad {

void hetero_csr(const std::vector<Array>& edge_index, const std::vector<int64_t>& src_offset,
                const std::vector<int64_t>& num_src, int64_t num_dst, const Array& rowptr, const Array& col,
                const Array& rel, const Array& eid, int threads, uintptr_t stream) {
  const size_t R = edge_index.size();
  if (src_offset.size() != R || num_src.size() != R)
    throw ValueError(cat("'src_offset' and 'num_src' must have one entry per relation (", R, "), got ",
                         src_offset.size(), " and ", num_src.size()));
  check_nonneg(num_dst, "num_dst");
  int64_t E = 0;
  std::vector<RelationEdges> rels;
  for (size_t r = 0; r < R; ++r) {
    const Array& ei = edge_index[r];
    check_dtype(ei, DType::i64);
    check_shape(ei, {2, -1});
    check_nonneg(num_src[r], "num_src");
    check_nonneg(src_offset[r], "src_offset");
    if (num_src[r] > INT64_MAX - src_offset[r])  // offset + source index must fit int64
      throw ValueError(cat("'src_offset' + 'num_src' of relation ", r, " overflows int64 (", src_offset[r],
                           " + ", num_src[r], ")"));
    check_same_device(rowptr, ei);
    const int64_t n = ei.size(1);
    rels.push_back({ei.ptr<int64_t>(), ei.ptr<int64_t>() + n, n, src_offset[r], num_src[r]});
    E += n;
  }
  check_dtype(rowptr, DType::i64);
  check_shape(rowptr, {num_dst + 1});
  for (const Array* a : {&col, &rel, &eid}) {
    check_dtype(*a, DType::i64);
    check_shape(*a, {E});
    check_same_device(rowptr, *a);
  }
  check_cuda_built(rowptr);
  if (rowptr.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
    for (size_t r = 0; r < R; ++r) {
      Array src = edge_index[r], dst = edge_index[r];
      src.shape = {rels[r].num_edges};
      dst.shape = {rels[r].num_edges};
      dst.data = const_cast<int64_t*>(rels[r].dst);
      src.name = cat(edge_index[r].name, " (source row)");
      dst.name = cat(edge_index[r].name, " (destination row)");
      check_index_range(src, rels[r].num_src, stream);
      check_index_range(dst, num_dst, stream);
    }
    cuda::hetero_csr(rels, num_dst, rowptr.ptr<int64_t>(), col.ptr<int64_t>(), rel.ptr<int64_t>(),
                     eid.ptr<int64_t>(), stream);
#endif
    return;
  }
  int64_t pos = 0, val = 0;
  int is_dst = 0;
  int64_t bad = cpu::hetero_csr(rels, num_dst, rowptr.ptr<int64_t>(), col.ptr<int64_t>(), rel.ptr<int64_t>(),
                                eid.ptr<int64_t>(), clamp_threads(threads), &pos, &val, &is_dst);
  if (bad >= 0) {
    const int64_t hi = is_dst ? num_dst : num_src[bad];
    throw ValueError(cat("'", edge_index[bad].name, "' has ", is_dst ? "destination" : "source", " index ", val,
                         " at edge ", pos, ", outside [0, ", hi, ")"));
  }
}

void csr_transpose(const Array& rowptr, const Array& col, int64_t num_cols, const Array& colptr,
                   const Array& row, const Array& perm, int threads, uintptr_t stream) {
  check_dtype(col, DType::i64);
  check_shape(col, {-1});
  const int64_t E = col.size(0);
  check_csr_ptr(rowptr, E, stream);
  check_nonneg(num_cols, "num_cols");
  check_index_range(col, num_cols, stream);
  check_dtype(colptr, DType::i64);
  check_shape(colptr, {num_cols + 1});
  for (const Array* a : {&row, &perm}) {
    check_dtype(*a, DType::i64);
    check_shape(*a, {E});
  }
  for (const Array* a : {&col, &colptr, &row, &perm}) check_same_device(rowptr, *a);
  check_cuda_built(rowptr);
  const int64_t N = rowptr.size(0) - 1;
  if (rowptr.is_cuda()) {
#ifdef PYGAD_WITH_CUDA
    cuda::csr_transpose(rowptr.ptr<int64_t>(), col.ptr<int64_t>(), N, E, num_cols, colptr.ptr<int64_t>(),
                        row.ptr<int64_t>(), perm.ptr<int64_t>(), stream);
#endif
    return;
  }
  cpu::csr_transpose(rowptr.ptr<int64_t>(), col.ptr<int64_t>(), N, num_cols, colptr.ptr<int64_t>(),
                     row.ptr<int64_t>(), perm.ptr<int64_t>(), clamp_threads(threads));
}

}  // namespace pygad
