// CPU counting sorts: each thread counts a contiguous chunk of entries into its own histogram,
// a prefix sum turns histograms into per-thread write cursors, and each thread scatters its
// chunk. Chunks are in input order, so the sort is stable.
#include <algorithm>
#include <vector>

#include "ops/csr.h"

namespace pygad::cpu {

namespace {
// Keep per-thread histograms (threads x bins) within a few times the size of the input.
int histogram_threads(int threads, int64_t entries, int64_t bins) {
  int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, entries / 32768));
  while (t > 1 && t * (bins + 1) > 4 * entries + (1 << 20)) --t;
  return static_cast<int>(t);
}

// counts [T][bins] -> ptr [bins+1] and cursors (overwrites counts with each thread's start).
void histograms_to_cursors(std::vector<int64_t>& counts, int T, int64_t bins, int64_t* ptr) {
  ptr[0] = 0;
  int64_t run = 0;
  for (int64_t b = 0; b < bins; ++b) {
    for (int t = 0; t < T; ++t) {
      const int64_t c = counts[t * bins + b];
      counts[t * bins + b] = run;
      run += c;
    }
    ptr[b + 1] = run;
  }
}
}  // namespace

int64_t hetero_csr(const std::vector<RelationEdges>& rels, int64_t num_dst, int64_t* rowptr, int64_t* col,
                   int64_t* rel, int64_t* eid, int threads, int64_t* bad_pos, int64_t* bad_val, int* bad_row) {
  // Global edge g lives in relation r at position g - start[r].
  const int64_t R = static_cast<int64_t>(rels.size());
  std::vector<int64_t> start(R + 1, 0);
  for (int64_t r = 0; r < R; ++r) start[r + 1] = start[r] + rels[r].num_edges;
  const int64_t E = start[R];
  const int T = histogram_threads(threads, E, num_dst);
  std::vector<int64_t> counts(static_cast<size_t>(T) * num_dst, 0);
  std::vector<int64_t> first_bad(T, -1);

  auto chunk = [&](int t, int64_t& lo, int64_t& hi) {
    lo = E * t / T;
    hi = E * (t + 1) / T;
  };
  auto locate = [&](int64_t g) {  // relation of global edge g
    return static_cast<int64_t>(std::upper_bound(start.begin(), start.end(), g) - start.begin()) - 1;
  };

#pragma omp parallel num_threads(T)
  {
    const int t = thread_id();
    int64_t lo, hi;
    chunk(t, lo, hi);
    int64_t* cnt = counts.data() + static_cast<size_t>(t) * num_dst;
    int64_t g = lo;
    while (g < hi && first_bad[t] < 0) {
      const int64_t r = locate(g);
      const RelationEdges& re = rels[r];
      const int64_t end = std::min(hi, start[r + 1]);
      for (; g < end; ++g) {
        const int64_t p = g - start[r];
        const int64_t d = re.dst[p], s = re.src[p];
        if (d < 0 || d >= num_dst || s < 0 || s >= re.num_src) {
          first_bad[t] = g;
          break;
        }
        ++cnt[d];
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    if (first_bad[t] >= 0) {
      const int64_t g = first_bad[t], r = locate(g), p = g - start[r];
      const int64_t d = rels[r].dst[p];
      *bad_row = (d < 0 || d >= num_dst) ? 1 : 0;
      *bad_val = *bad_row ? d : rels[r].src[p];
      *bad_pos = p;
      return r;
    }
  }
  histograms_to_cursors(counts, T, num_dst, rowptr);

#pragma omp parallel num_threads(T)
  {
    const int t = thread_id();
    int64_t lo, hi;
    chunk(t, lo, hi);
    int64_t* cur = counts.data() + static_cast<size_t>(t) * num_dst;
    int64_t g = lo;
    while (g < hi) {
      const int64_t r = locate(g);
      const RelationEdges& re = rels[r];
      const int64_t end = std::min(hi, start[r + 1]);
      for (; g < end; ++g) {
        const int64_t p = g - start[r];
        const int64_t at = cur[re.dst[p]]++;
        col[at] = re.src[p] + re.src_offset;
        rel[at] = r;
        eid[at] = g;
      }
    }
  }
  return -1;
}

void csr_transpose(const int64_t* rowptr, const int64_t* col, int64_t num_rows, int64_t num_cols, int64_t* colptr,
                   int64_t* row, int64_t* perm, int threads) {
  const int64_t E = rowptr[num_rows];
  const int T = histogram_threads(threads, E, num_cols);
  std::vector<int64_t> counts(static_cast<size_t>(T) * num_cols, 0);
  // Thread t owns the rows whose entries fall in [E*t/T, E*(t+1)/T): contiguous in entry order.
  std::vector<int64_t> row_lo(T + 1);
  for (int t = 0; t <= T; ++t)
    row_lo[t] = std::upper_bound(rowptr, rowptr + num_rows + 1, E * t / T) - rowptr - 1;
  row_lo[0] = 0;
  row_lo[T] = num_rows;

#pragma omp parallel num_threads(T)
  {
    const int t = thread_id();
    int64_t* cnt = counts.data() + static_cast<size_t>(t) * num_cols;
    for (int64_t e = rowptr[row_lo[t]]; e < rowptr[row_lo[t + 1]]; ++e) ++cnt[col[e]];
  }
  histograms_to_cursors(counts, T, num_cols, colptr);
#pragma omp parallel num_threads(T)
  {
    const int t = thread_id();
    int64_t* cur = counts.data() + static_cast<size_t>(t) * num_cols;
    for (int64_t i = row_lo[t]; i < row_lo[t + 1]; ++i)
      for (int64_t e = rowptr[i]; e < rowptr[i + 1]; ++e) {
        const int64_t at = cur[col[e]]++;
        row[at] = i;
        perm[at] = e;
      }
  }
}

}  // namespace pygad::cpu
