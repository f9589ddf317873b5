// Heterogeneous CSR construction: all relations that end in one destination node type are
// merged into one destination-sorted CSR whose column indices live in a concatenated source
// space (relation r's sources start at src_offset[r]); each entry keeps its relation id.
#pragma once
#include <vector>
#include "common.h"

namespace pygad {

// edge_index[r]: [2, E_r] int64 (row 0 = source in [0, num_src[r]), row 1 = destination in
// [0, num_dst)). Outputs (E = sum E_r): rowptr [num_dst+1], col [E] (= src + src_offset[r]),
// rel [E] (r), eid [E] (position of the edge in the relation-major concatenation).
// Stable: within a row, entries keep relation-major input order.
void hetero_csr(const std::vector<Array>& edge_index, const std::vector<int64_t>& src_offset,
                const std::vector<int64_t>& num_src, int64_t num_dst, const Array& rowptr, const Array& col,
                const Array& rel, const Array& eid, int threads, uintptr_t stream);

// The transpose of a CSR with num_cols columns: colptr [num_cols+1], row [E] (the CSR row of each
// entry), perm [E] (its CSR position). Stable: within a column, entries are in ascending row order.
void csr_transpose(const Array& rowptr, const Array& col, int64_t num_cols, const Array& colptr,
                   const Array& row, const Array& perm, int threads, uintptr_t stream);

// One relation's edges as raw pointers (the kernels' view of edge_index[r]).
struct RelationEdges {
  const int64_t* src;
  const int64_t* dst;
  int64_t num_edges;
  int64_t src_offset;
  int64_t num_src;
};

namespace cpu {
// Returns -1 when all indices are valid, else the relation of the first bad edge; bad_pos/bad_val
// then say where and what.
int64_t hetero_csr(const std::vector<RelationEdges>& rels, int64_t num_dst, int64_t* rowptr, int64_t* col,
                   int64_t* rel, int64_t* eid, int threads, int64_t* bad_pos, int64_t* bad_val, int* bad_row);
void csr_transpose(const int64_t* rowptr, const int64_t* col, int64_t num_rows, int64_t num_cols, int64_t* colptr,
                   int64_t* row, int64_t* perm, int threads);
}  // namespace cpu

namespace cuda {
void hetero_csr(const std::vector<RelationEdges>& rels, int64_t num_dst, int64_t* rowptr, int64_t* col,
                int64_t* rel, int64_t* eid, uintptr_t stream);
void csr_transpose(const int64_t* rowptr, const int64_t* col, int64_t num_rows, int64_t num_edges, int64_t num_cols,
                   int64_t* colptr, int64_t* row, int64_t* perm, uintptr_t stream);
}  // namespace cuda

}  // namespace pygad
