// CUDA CSR construction: a stable sort of entry ids by row key.
//
// Both ops reduce to the same steps: (1) write key[g] (destination / column) and id[g] = g for
// every entry g in input order, (2) cub::DeviceRadixSort::SortPairs over the key bits that can
// be non-zero (LSD radix sort is stable, so equal keys keep input order: exactly the CPU
// counting sort's order), (3) pointers by binary search of each row's first key in the sorted
// keys (no atomics, no scan), (4) gather the per-entry outputs through the sorted ids.
// All indices were range-checked by the dispatch code before we get here.
#include <cub/device/device_radix_sort.cuh>

#include <vector>

#include "cuda_utils.cuh"
#include "ops/csr.h"

namespace pygad::cuda {

namespace {

using Key = unsigned long long;  // keys are validated non-negative int64 values

// Relation r's edges are global entries [start, start + num_edges).
struct DeviceRelation {
  const int64_t* src;
  const int64_t* dst;
  int64_t start;
  int64_t src_offset;
};

// The relation that holds global entry g: the last r with rels[r].start <= g (empty relations
// share their start with the next one and are skipped).
__device__ __forceinline__ int64_t locate(const DeviceRelation* rels, int64_t R, int64_t g) {
  int64_t lo = 0, hi = R;  // first r with start > g, in [0, R]
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (rels[mid].start <= g) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

// First position in sorted[0, n) whose value is >= v.
__device__ __forceinline__ int64_t lower_bound(const Key* sorted, int64_t n, Key v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

__global__ void relation_keys_kernel(const DeviceRelation* __restrict__ rels, int64_t R, int64_t E,
                                     Key* __restrict__ keys, int64_t* __restrict__ ids) {
  for (int64_t g = global_thread(); g < E; g += global_threads()) {
    const int64_t r = locate(rels, R, g);
    keys[g] = static_cast<Key>(rels[r].dst[g - rels[r].start]);
    ids[g] = g;
  }
}

__global__ void column_keys_kernel(const int64_t* __restrict__ col, int64_t E, Key* __restrict__ keys,
                                   int64_t* __restrict__ ids) {
  for (int64_t e = global_thread(); e < E; e += global_threads()) {
    keys[e] = static_cast<Key>(col[e]);
    ids[e] = e;
  }
}

// ptr[i] = first sorted position with key >= i, for i in [0, n]; ptr[n] = E as all keys < n.
__global__ void pointers_kernel(const Key* __restrict__ sorted, int64_t E, int64_t n, int64_t* __restrict__ ptr) {
  for (int64_t i = global_thread(); i <= n; i += global_threads()) ptr[i] = lower_bound(sorted, E, static_cast<Key>(i));
}

__global__ void hetero_gather_kernel(const DeviceRelation* __restrict__ rels, int64_t R, int64_t E,
                                     const int64_t* __restrict__ eid, int64_t* __restrict__ col,
                                     int64_t* __restrict__ rel) {
  for (int64_t at = global_thread(); at < E; at += global_threads()) {
    const int64_t g = eid[at];
    const int64_t r = locate(rels, R, g);
    col[at] = rels[r].src[g - rels[r].start] + rels[r].src_offset;
    rel[at] = r;
  }
}

// row[at] = the CSR row holding entry perm[at]: the last i with rowptr[i] <= perm[at].
__global__ void transpose_rows_kernel(const int64_t* __restrict__ rowptr, int64_t num_rows,
                                      const int64_t* __restrict__ perm, int64_t E, int64_t* __restrict__ row) {
  for (int64_t at = global_thread(); at < E; at += global_threads()) {
    const int64_t e = perm[at];
    int64_t lo = 0, hi = num_rows + 1;  // first i with rowptr[i] > e
    while (lo < hi) {
      const int64_t mid = (lo + hi) >> 1;
      if (rowptr[mid] <= e) lo = mid + 1;
      else hi = mid;
    }
    row[at] = lo - 1;
  }
}

// Number of low key bits that can be non-zero for keys in [0, n).
int key_bits(int64_t n) {
  int bits = 0;
  while (bits < 63 && (int64_t(1) << bits) < n) ++bits;
  return bits < 1 ? 1 : bits;
}

// Stable sort of (keys_in, ids_in) by key into (keys_out, ids_out), using scratch from `carve`.
struct SortBuffers {
  Key* keys_in;
  Key* keys_out;
  int64_t* ids_in;
  void* temp;
  size_t temp_bytes;
};

size_t sort_temp_bytes(int64_t E, int bits, cudaStream_t s) {
  size_t bytes = 0;
  PYGAD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const Key*>(nullptr),
                                                   static_cast<Key*>(nullptr), static_cast<const int64_t*>(nullptr),
                                                   static_cast<int64_t*>(nullptr), E, 0, bits, s));
  return bytes;
}

// Lays out keys_in, keys_out, ids_in and CUB's temp storage (plus `extra` bytes) in one allocation.
template <typename Extra>
void with_sort_buffers(int64_t E, int bits, cudaStream_t s, size_t extra_bytes, Extra&& body) {
  const size_t temp_bytes = sort_temp_bytes(E, bits, s);
  Carver sizing;
  sizing.take<Key>(E);
  sizing.take<Key>(E);
  sizing.take<int64_t>(E);
  sizing.take<char>(temp_bytes);
  sizing.take<char>(extra_bytes);
  Workspace ws(sizing.bytes(), s);
  Carver carve(ws.get());
  SortBuffers b;
  b.keys_in = carve.take<Key>(E);
  b.keys_out = carve.take<Key>(E);
  b.ids_in = carve.take<int64_t>(E);
  b.temp = carve.take<char>(temp_bytes);
  b.temp_bytes = temp_bytes;
  char* extra = carve.take<char>(extra_bytes);
  body(b, extra);
}

void sort_pairs(SortBuffers& b, int64_t* ids_out, int64_t E, int bits, cudaStream_t s) {
  size_t bytes = b.temp_bytes;
  PYGAD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(b.temp, bytes, static_cast<const Key*>(b.keys_in), b.keys_out,
                                                   static_cast<const int64_t*>(b.ids_in), ids_out, E, 0, bits, s));
}

}  // namespace

void hetero_csr(const std::vector<RelationEdges>& rels, int64_t num_dst, int64_t* rowptr, int64_t* col,
                int64_t* rel, int64_t* eid, uintptr_t stream) {
  const cudaStream_t s = as_stream(stream);
  DeviceGuard guard(rowptr);
  const int64_t R = static_cast<int64_t>(rels.size());
  std::vector<DeviceRelation> host(rels.size());
  int64_t E = 0;
  for (int64_t r = 0; r < R; ++r) {
    host[r] = {rels[r].src, rels[r].dst, E, rels[r].src_offset};
    E += rels[r].num_edges;
  }
  if (E == 0) {
    PYGAD_CUDA_CHECK(cudaMemsetAsync(rowptr, 0, sizeof(int64_t) * (num_dst + 1), s));
    return;
  }
  const int bits = key_bits(num_dst);
  with_sort_buffers(E, bits, s, sizeof(DeviceRelation) * R, [&](SortBuffers& b, char* extra) {
    auto* drels = reinterpret_cast<DeviceRelation*>(extra);
    // Pageable source: cudaMemcpyAsync returns once `host` has been staged, so it may die after.
    PYGAD_CUDA_CHECK(cudaMemcpyAsync(drels, host.data(), sizeof(DeviceRelation) * R, cudaMemcpyHostToDevice, s));
    relation_keys_kernel<<<grid_for(E), kBlock, 0, s>>>(drels, R, E, b.keys_in, b.ids_in);
    PYGAD_CUDA_CHECK_LAUNCH("relation_keys_kernel");
    sort_pairs(b, eid, E, bits, s);
    pointers_kernel<<<grid_for(num_dst + 1), kBlock, 0, s>>>(b.keys_out, E, num_dst, rowptr);
    PYGAD_CUDA_CHECK_LAUNCH("pointers_kernel");
    hetero_gather_kernel<<<grid_for(E), kBlock, 0, s>>>(drels, R, E, eid, col, rel);
    PYGAD_CUDA_CHECK_LAUNCH("hetero_gather_kernel");
  });
}

void csr_transpose(const int64_t* rowptr, const int64_t* col, int64_t num_rows, int64_t num_edges, int64_t num_cols,
                   int64_t* colptr, int64_t* row, int64_t* perm, uintptr_t stream) {
  const cudaStream_t s = as_stream(stream);
  DeviceGuard guard(colptr);
  const int64_t E = num_edges;
  if (E == 0) {
    PYGAD_CUDA_CHECK(cudaMemsetAsync(colptr, 0, sizeof(int64_t) * (num_cols + 1), s));
    return;
  }
  const int bits = key_bits(num_cols);
  with_sort_buffers(E, bits, s, 0, [&](SortBuffers& b, char*) {
    column_keys_kernel<<<grid_for(E), kBlock, 0, s>>>(col, E, b.keys_in, b.ids_in);
    PYGAD_CUDA_CHECK_LAUNCH("column_keys_kernel");
    sort_pairs(b, perm, E, bits, s);
    pointers_kernel<<<grid_for(num_cols + 1), kBlock, 0, s>>>(b.keys_out, E, num_cols, colptr);
    PYGAD_CUDA_CHECK_LAUNCH("pointers_kernel");
    transpose_rows_kernel<<<grid_for(E), kBlock, 0, s>>>(rowptr, num_rows, perm, E, row);
    PYGAD_CUDA_CHECK_LAUNCH("transpose_rows_kernel");
  });
}

}  // namespace pygad::cuda
