// CPU neighbour sampler. Per hop, over all relations at once: one parallel pass counts how many
// neighbours each frontier node keeps, a prefix sum gives every node its output slot, a second
// parallel pass draws and writes them. Numbering the newly reached sources is one serial pass in edge
// order (a hash map global id -> local id per node type), which keeps the output independent
// of the thread count; the sampled subgraphs are small, so that pass is cheap.
#include <algorithm>
#include <atomic>
#include <string>

#include "ops/sampling.h"

namespace pygad::cpu {

namespace {

// Open addressing (linear probing) int64 -> int64; keys are non-negative node ids.
class IdMap {
 public:
  explicit IdMap(int64_t expected = 16) { rehash(capacity_for(expected)); }

  // The local id of `key`, inserting `next` when absent; `fresh` says which.
  int64_t insert(int64_t key, int64_t next, bool& fresh) {
    if (2 * (size_ + 1) > static_cast<int64_t>(keys_.size())) rehash(keys_.size() * 2);
    size_t i = slot(key);
    while (keys_[i] >= 0) {
      if (keys_[i] == key) {
        fresh = false;
        return vals_[i];
      }
      i = (i + 1) & mask_;
    }
    keys_[i] = key;
    vals_[i] = next;
    ++size_;
    fresh = true;
    return next;
  }
  int64_t find(int64_t key) const {
    size_t i = slot(key);
    while (keys_[i] >= 0) {
      if (keys_[i] == key) return vals_[i];
      i = (i + 1) & mask_;
    }
    return -1;
  }

 private:
  static size_t capacity_for(int64_t n) {
    size_t c = 16;
    while (static_cast<int64_t>(c) < 2 * n) c *= 2;
    return c;
  }
  size_t slot(int64_t key) const { return static_cast<size_t>(mix64(static_cast<uint64_t>(key))) & mask_; }
  void rehash(size_t cap) {
    std::vector<int64_t> ok = std::move(keys_), ov = std::move(vals_);
    keys_.assign(cap, -1);
    vals_.assign(cap, 0);
    mask_ = cap - 1;
    for (size_t j = 0; j < ok.size(); ++j) {
      if (ok[j] < 0) continue;
      size_t i = slot(ok[j]);
      while (keys_[i] >= 0) i = (i + 1) & mask_;
      keys_[i] = ok[j];
      vals_[i] = ov[j];
    }
  }
  std::vector<int64_t> keys_, vals_;
  size_t mask_ = 0;
  int64_t size_ = 0;
};

// Robert Floyd's algorithm: k distinct positions in [0, deg), uniformly over k-subsets, with k
// random draws; returned sorted (CSR order). `pos` has room for k entries.
void floyd_sample(SplitMix64& rng, int64_t deg, int64_t k, int64_t* pos) {
  int64_t n = 0;
  for (int64_t j = deg - k; j < deg; ++j) {
    const int64_t t = static_cast<int64_t>(rng.below(static_cast<uint64_t>(j + 1)));
    bool seen = false;
    for (int64_t i = 0; i < n && !seen; ++i) seen = pos[i] == t;
    pos[n++] = seen ? j : t;
  }
  std::sort(pos, pos + k);
}

// Floyd's membership test is a linear scan: fine for the usual fanouts (tens). Large fanouts
// use a sorted insert instead (same set, same draws, O(k log k) lookups).
void floyd_sample_large(SplitMix64& rng, int64_t deg, int64_t k, int64_t* pos) {
  int64_t n = 0;
  for (int64_t j = deg - k; j < deg; ++j) {
    const int64_t t = static_cast<int64_t>(rng.below(static_cast<uint64_t>(j + 1)));
    const bool seen = std::binary_search(pos, pos + n, t);
    // j is larger than every value drawn so far, so it goes at the end.
    if (seen) {
      pos[n++] = j;
    } else {
      int64_t* at = std::upper_bound(pos, pos + n, t);
      std::copy_backward(at, pos + n, pos + n + 1);
      *at = t;
      ++n;
    }
  }
}

}  // namespace

std::string neighbor_sample(const std::vector<RelationCSR>& rels, const std::vector<int64_t>& num_nodes,
                            const std::vector<const int64_t*>& seeds, const std::vector<int64_t>& num_seeds,
                            const std::vector<int64_t>& fanouts, uint64_t seed, int threads, SampleResult& out) {
  const int64_t T = static_cast<int64_t>(num_nodes.size());
  const int64_t R = static_cast<int64_t>(rels.size());
  const int64_t L = static_cast<int64_t>(fanouts.size());
  out.nodes.assign(T, {});
  out.node_counts.assign(T, {});
  out.edges.assign(R, {});
  out.edge_counts.assign(R, std::vector<int64_t>(1, 0));
  std::vector<std::vector<int64_t>> esrc(R), edst(R);  // src global (then local) / dst local

  std::vector<IdMap> ids;
  ids.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    ids.emplace_back(num_seeds[t] * 8);
    auto& nodes = out.nodes[t];
    nodes.reserve(num_seeds[t]);
    for (int64_t i = 0; i < num_seeds[t]; ++i) {
      bool fresh;
      ids[t].insert(seeds[t][i], i, fresh);
      if (!fresh)
        return cat("'seeds[", t, "]' has node ", seeds[t][i], " twice (second at position ", i,
                   "); seeds must be unique");
      nodes.push_back(seeds[t][i]);
    }
    out.node_counts[t].push_back(num_seeds[t]);
  }

  std::vector<int64_t> lo(T, 0), hi(T);  // frontier of each type: nodes[t][lo:hi]
  for (int64_t t = 0; t < T; ++t) hi[t] = num_seeds[t];
  // Work of one hop as chunks (relation, frontier range): two parallel loops per hop over all
  // relations at once, so a call has few fork/join barriers (they are costly on a busy machine).
  struct Chunk {
    int64_t r, begin, end;
  };
  constexpr int64_t kChunk = 512;
  std::vector<std::vector<int64_t>> counts(R);
  std::vector<Chunk> chunks;
  for (int64_t h = 0; h < L; ++h) {
    const int64_t fan = fanouts[h];
    chunks.clear();
    int64_t work = 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t t = rels[r].dst_type, n = hi[t] - lo[t];
      counts[r].assign(n + 1, 0);
      for (int64_t i = 0; i < n; i += kChunk) chunks.push_back({r, i, std::min(n, i + kChunk)});
      work += n;
    }
    const int64_t C = static_cast<int64_t>(chunks.size());
    const int nt = work > 8 * kChunk ? threads : 1;
    std::atomic<int> bad{0};
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t c = 0; c < C; ++c) {
      const Chunk ch = chunks[c];
      const RelationCSR& re = rels[ch.r];
      const int64_t* front = out.nodes[re.dst_type].data() + lo[re.dst_type];
      int64_t* cnt = counts[ch.r].data();
      for (int64_t i = ch.begin; i < ch.end; ++i) {
        const int64_t v = front[i], a = re.rowptr[v], b = re.rowptr[v + 1];
        if (a < 0 || b < a || b > re.num_edges) {
          bad.store(1, std::memory_order_relaxed);
          continue;
        }
        cnt[i + 1] = fan < 0 ? b - a : std::min(b - a, fan);
      }
    }
    if (bad.load()) {
      for (int64_t r = 0; r < R; ++r) {
        const RelationCSR& re = rels[r];
        const int64_t t = re.dst_type;
        for (int64_t i = lo[t]; i < hi[t]; ++i) {
          const int64_t v = out.nodes[t][i], a = re.rowptr[v], b = re.rowptr[v + 1];
          if (a < 0 || b < a || b > re.num_edges)
            return cat("'rowptr[", r, "]' is not a valid CSR pointer at node ", v, " (", a, " -> ", b, ", ",
                       re.num_edges, " entries)");
        }
      }
    }
    std::vector<int64_t> base(R);
    for (int64_t r = 0; r < R; ++r) {
      auto& cnt = counts[r];
      for (size_t i = 1; i < cnt.size(); ++i) cnt[i] += cnt[i - 1];
      base[r] = static_cast<int64_t>(esrc[r].size());
      esrc[r].resize(base[r] + cnt.back());
      edst[r].resize(base[r] + cnt.back());
    }
#pragma omp parallel num_threads(nt)
    {
      std::vector<int64_t> pos;
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < C; ++c) {
        const Chunk ch = chunks[c];
        const RelationCSR& re = rels[ch.r];
        const int64_t t = re.dst_type, ns = num_nodes[re.src_type];
        const int64_t* front = out.nodes[t].data() + lo[t];
        const int64_t* cnt = counts[ch.r].data();
        int64_t* es = esrc[ch.r].data() + base[ch.r];
        int64_t* ed = edst[ch.r].data() + base[ch.r];
        for (int64_t i = ch.begin; i < ch.end; ++i) {
          const int64_t v = front[i], a = re.rowptr[v], deg = re.rowptr[v + 1] - a;
          const int64_t k = cnt[i + 1] - cnt[i], o = cnt[i];
          if (k == 0) continue;
          if (k == deg) {
            for (int64_t j = 0; j < k; ++j) es[o + j] = re.col[a + j];
          } else {
            pos.resize(k);
            SplitMix64 rng{sample_key(seed, h, ch.r, v)};
            if (k <= 64)
              floyd_sample(rng, deg, k, pos.data());
            else
              floyd_sample_large(rng, deg, k, pos.data());
            for (int64_t j = 0; j < k; ++j) es[o + j] = re.col[a + pos[j]];
          }
          for (int64_t j = 0; j < k; ++j) {
            ed[o + j] = lo[t] + i;
            if (es[o + j] < 0 || es[o + j] >= ns) bad.store(1, std::memory_order_relaxed);
          }
        }
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      if (bad.load()) {
        const int64_t ns = num_nodes[rels[r].src_type];
        for (int64_t j = base[r]; j < static_cast<int64_t>(esrc[r].size()); ++j)
          if (esrc[r][j] < 0 || esrc[r][j] >= ns)
            return cat("'col[", r, "]' has source id ", esrc[r][j], ", outside [0, ", ns, ")");
      }
      out.edge_counts[r].push_back(static_cast<int64_t>(esrc[r].size()));
    }
    // Number the sources first reached at this hop (relation order, then edge order); they are
    // the next frontier.
    for (int64_t t = 0; t < T; ++t) lo[t] = hi[t];
    for (int64_t r = 0; r < R; ++r) {
      const int64_t s = rels[r].src_type;
      auto& nodes = out.nodes[s];
      IdMap& map = ids[s];
      const int64_t from = out.edge_counts[r][h], to = out.edge_counts[r][h + 1];
      for (int64_t j = from; j < to; ++j) {
        const int64_t g = esrc[r][j];
        bool fresh;
        esrc[r][j] = map.insert(g, static_cast<int64_t>(nodes.size()), fresh);
        if (fresh) nodes.push_back(g);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      hi[t] = static_cast<int64_t>(out.nodes[t].size());
      out.node_counts[t].push_back(hi[t]);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    const size_t m = esrc[r].size();
    auto& e = out.edges[r];
    e.resize(2 * m);
    std::copy(esrc[r].begin(), esrc[r].end(), e.begin());
    std::copy(edst[r].begin(), edst[r].end(), e.begin() + m);
  }
  return std::string();
}

}  // namespace pygad::cpu
